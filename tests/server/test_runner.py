"""The study runner (python scripts/study.py) against two real ComfyUI servers with the tiny test model."""

import csv
import json
import subprocess
import sys
import time

import examples
import harness
import live_server
import pytest

GRID = ["--grid", "delay=0,0.5", "--grid", "neg_scale=3", "--grid", "cfg=7"]
STEPS = 6


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    """Two servers for the module; the last test stops the second one."""
    generators = [live_server.serve(live_server.make_base(tmp_path_factory.mktemp(f"base{i}"))) for i in range(2)]
    servers = [next(g) for g in generators]
    yield servers
    for g in generators:
        g.close()


@pytest.fixture
def study(tmp_path):
    """The shipped SD1.5 template on the tiny model (64×64, 6 steps), and a 3-pair prompt file."""
    shipped = harness.PACK_ROOT / "experiments" / "templates" / "rt_study_sd15.json"
    template = json.loads(shipped.read_text(encoding="utf-8"))
    template = examples.on_test_models(template)
    next(n for n in template.values() if n["class_type"] == "KSampler")["inputs"]["steps"] = STEPS
    (tmp_path / "template.json").write_text(json.dumps(template), encoding="utf-8")
    pairs = "positive,negative,type\nprofessional office woman,glasses,noun\na man in a park,hat,noun\n" \
            "a bowl of fruit,red,adjective\n"
    (tmp_path / "pairs.csv").write_text(pairs, encoding="utf-8")
    return tmp_path


def runner(study, servers, *extra, seeds="1-4"):
    """Start python scripts/study.py on the study; the process (stdout and stderr piped)."""
    urls = [arg for s in servers for arg in ("--server", s if isinstance(s, str) else s.url)]
    command = [sys.executable, str(harness.PACK_ROOT / "scripts" / "study.py"), "--template",
               str(study / "template.json"), "--pairs",
               str(study / "pairs.csv"), "--seeds", seeds, *GRID, *urls, "--out", str(study / "out"), *extra]
    return subprocess.Popen(command, cwd=harness.PACK_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, timeout=300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    return out


def manifest(study) -> list[dict]:
    return [json.loads(line) for line in (study / "out" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_bad_inputs_stop_before_any_job_is_sent(two_servers, study):
    (study / "broken.json").write_text("{not json", encoding="utf-8")
    seedless = json.loads((study / "template.json").read_text(encoding="utf-8").replace('"{{seed}}"', "1"))
    (study / "seedless.json").write_text(json.dumps(seedless), encoding="utf-8")
    cases = [(["--template", str(study / "broken.json")], "cannot read it as JSON"),
             (["--template", str(study / "seedless.json")], "no {{seed}} placeholder"),
             (["--grid", "scale=1"], "--grid/--set scale has no {{scale}} placeholder"),
             (["--server", "http://127.0.0.1:9"], "server http://127.0.0.1:9 is unreachable")]
    for extra, message in cases:
        process = runner(study, two_servers, *extra)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 2 and message in err, err
    for server in two_servers:
        assert server.get("/history") == {}


def test_jobs_spread_over_both_servers_and_a_rerun_resumes(two_servers, study):
    out = finish(runner(study, two_servers))
    jobs = 3 * 4 * 2
    assert out.startswith(f"{jobs} jobs: {jobs} run now, 0 already done")
    records = manifest(study)
    assert len(records) == jobs and all(r["status"] == "success" for r in records)
    assert {r["server"] for r in records} == {s.url for s in two_servers}
    with (study / "out" / "results.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == jobs * STEPS
    assert {(r["job"], r["step"]) for r in rows} == {(r["id"], str(t)) for r in records for t in range(STEPS)}
    with (study / "out" / "groups.csv").open(encoding="utf-8") as f:
        groups = {row["group"] for row in csv.DictReader(f)}
    assert groups == {"noun, delay=0", "noun, delay=0.5", "adjective, delay=0", "adjective, delay=0.5"}
    assert (study / "out" / "rt_by_group.png").read_bytes().startswith(b"\x89PNG")
    assert finish(runner(study, two_servers)).startswith(f"{jobs} jobs: 0 run now, {jobs} already done")
    assert len(manifest(study)) == jobs


def test_a_server_stopped_mid_run_loses_no_job(two_servers, study):
    """Runs last: it stops the second server while that server holds jobs (40 steps each, about 1 s)."""
    template = json.loads((study / "template.json").read_text(encoding="utf-8"))
    next(n for n in template.values() if n["class_type"] == "KSampler")["inputs"]["steps"] = 40
    (study / "template.json").write_text(json.dumps(template), encoding="utf-8")
    process = runner(study, two_servers, seeds="1-6")
    log = study / "out" / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text(encoding="utf-8").count("\n") >= 2):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    two_servers[1].process.terminate()
    out = finish(process)
    records = manifest(study)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 3 * 6 * 2  # every job exactly once
    assert all(r["status"] == "success" for r in records)
    assert "retried after a server dropped" in out and " 0 retried" not in out
