"""python scripts/study.py --template T.json --pairs P.csv --seeds 1-10 --grid delay=0,0.1 --server URL [--server …]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .client import Comfy
from .jobs import StudyError, expand, load_pairs, load_template, parse_assignments
from .report import write_report
from .runner import read_manifest, run

HERE = Path(__file__).parent


def parse_seeds(text: str) -> list[int]:
    """'1-3,7' → [1, 2, 3, 7]."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.strip().isdigit() or (high and not high.strip().isdigit()):
            raise StudyError(f"--seeds {text!r}: write numbers and ranges, e.g. 1-10,42")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/study.py", description=__doc__)
    parser.add_argument("--template", type=Path, default=HERE / "templates" / "rt_study_sd15.json",
                        help="API-format workflow with {{positive}}, {{negative}}, {{seed}} and grid placeholders")
    parser.add_argument("--pairs", type=Path, default=HERE / "prompts" / "ban_et_al_pairs.csv",
                        help="CSV or JSON of positive, negative, type (noun or adjective)")
    parser.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,2,3")
    parser.add_argument("--grid", action="append", default=[], help="name=v1,v2 (repeatable): delay, neg_scale, cfg")
    parser.add_argument("--set", action="append", default=[], help="name=value constants: checkpoint=x.safetensors")
    parser.add_argument("--server", action="append", default=[], help="ComfyUI URL (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("rt_study"), help="results folder; rerun to resume")
    args = parser.parse_args(argv)
    try:
        template = load_template(args.template)
        grid = parse_assignments(args.grid, "--grid")
        constants = {k: v[0] for k, v in parse_assignments(args.set, "--set", split=False).items()}
        jobs = expand(template, load_pairs(args.pairs), parse_seeds(args.seeds), grid, constants)
        servers = [Comfy(url) for url in args.server or ["http://127.0.0.1:8188"]]
        for server in servers:
            server.check({node["class_type"] for node in template.values()})
        stats = run(template, jobs, servers, args.out)
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = write_report(list(read_manifest(args.out / "manifest.jsonl").values()), list(grid), args.out)
    print(f"{len(jobs)} jobs: {stats['submitted']} run now, {stats['skipped']} already done, "
          f"{stats['retried']} retried after a server dropped; wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
