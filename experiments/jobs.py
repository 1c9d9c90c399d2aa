"""Jobs of a study: a template (API-format prompt with {{placeholders}}), prompt pairs, seeds and a grid."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
PAIR_FIELDS = ("positive", "negative", "type")
WORD_TYPES = ("noun", "adjective")
REQUIRED = ("positive", "negative", "seed")


class StudyError(ValueError):
    """Bad study input, reported before any job is sent."""


@dataclass(frozen=True)
class Job:
    """One generation: its placeholder values; ``id`` is stable across runs, for the manifest."""

    values: tuple[tuple[str, object], ...]

    @property
    def params(self) -> dict:
        return dict(self.values)

    @property
    def id(self) -> str:
        return hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:16]


def load_template(path: Path) -> dict:
    """An API-format prompt ('Save (API)' in ComfyUI) with at least one AttentionRt node."""
    try:
        template = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise StudyError(f"template {path}: cannot read it as JSON: {error}") from None
    if not isinstance(template, dict) or not all(
        isinstance(node, dict) and "class_type" in node and isinstance(node.get("inputs"), dict)
        for node in template.values()
    ):
        raise StudyError(f"template {path}: not an API-format prompt ({{id: {{class_type, inputs}}}}); in ComfyUI "
                         "use Workflow → Export (API)")
    if not any(node["class_type"] == "AttentionRt" for node in template.values()):
        raise StudyError(f"template {path}: has no AttentionRt node, so no r_t would come back")
    return template


def placeholders(template: dict) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(template)))


def load_pairs(path: Path) -> list[dict]:
    """Rows of positive, negative, type (noun or adjective), from CSV (with a header) or a JSON list."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        else:
            with path.open(encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f))
    except (OSError, json.JSONDecodeError) as error:
        raise StudyError(f"pairs {path}: cannot read it: {error}") from None
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or any(not str(row.get(f, "")).strip() for f in PAIR_FIELDS):
            raise StudyError(f"pairs {path}: row {i} needs {', '.join(PAIR_FIELDS)}: {row}")
        if row["type"] not in WORD_TYPES:
            raise StudyError(f"pairs {path}: row {i}: type must be one of {WORD_TYPES}, got {row['type']!r}")
    if not rows:
        raise StudyError(f"pairs {path}: no pairs")
    return [{f: row[f].strip() for f in PAIR_FIELDS} for row in rows]


def parse_value(text: str):
    """'7' → 7, '0.1' → 0.1, anything else stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str], what: str, split: bool = True) -> dict[str, list]:
    """['delay=0,0.1', 'cfg=7'] → {'delay': [0, 0.1], 'cfg': [7]}; split=False keeps commas in the one value."""
    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.isidentifier() or not values:
            raise StudyError(f"{what} {item!r}: write name=value[,value…]")
        out[name] = [parse_value(v.strip()) for v in (values.split(",") if split else [values])]
    return out


def expand(template: dict, pairs: list[dict], seeds: list[int], grid: dict[str, list], constants: dict) -> list[Job]:
    """Every pair × seed × grid point, after checking that the template and the values match one to one."""
    used, given = placeholders(template), {*PAIR_FIELDS, "seed", *grid, *constants}
    if missing := sorted(set(REQUIRED) - used):
        raise StudyError(f"template: no {{{{{missing[0]}}}}} placeholder, so every job would be the same prompt")
    if missing := sorted(used - given):
        raise StudyError(f"template uses {{{{{missing[0]}}}}} but no value is given: add --grid {missing[0]}=… "
                         f"or --set {missing[0]}=…")
    if unused := sorted((set(grid) | set(constants)) - used):
        raise StudyError(f"--grid/--set {unused[0]} has no {{{{{unused[0]}}}}} placeholder in the template")
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return [Job(tuple({**pair, "seed": seed, **point, **constants}.items()))
            for pair in pairs for seed in seeds for point in points]


def fill(template: dict, params: dict) -> dict:
    """The template with each placeholder replaced: a whole-string placeholder takes the value's own type."""

    def sub(value):
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                return params[whole.group(1)]
            return PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), value)
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    return sub(template)
