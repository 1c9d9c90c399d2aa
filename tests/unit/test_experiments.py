"""The study runner's pure parts: jobs from pairs × seeds × grid, placeholders, the manifest."""

import json
from operator import attrgetter

import pack
import pytest

names = ("Job", "StudyError", "expand", "fill", "parse_assignments")
Job, StudyError, expand, fill, parse_assignments = attrgetter(*names)(pack.module("experiments.jobs"))
read_manifest = pack.module("experiments.runner").read_manifest

TEMPLATE = {"1": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "cfg": "{{cfg}}"}},
            "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a photo, {{positive}}"}},
            "3": {"class_type": "AttentionRt", "inputs": {"related": "{{negative}}"}}}
PAIRS = [{"positive": "woman", "negative": "glasses", "type": "noun"},
         {"positive": "fruit", "negative": "red", "type": "adjective"}]


def test_every_pair_seed_and_grid_point_is_one_job_with_a_stable_id():
    jobs = expand(TEMPLATE, PAIRS, [1, 2, 3], parse_assignments(["cfg=5,7.5"], "--grid"), {})
    assert len(jobs) == 2 * 3 * 2 and len({job.id for job in jobs}) == 12
    assert Job(tuple(jobs[0].params.items())).id == jobs[0].id
    filled = fill(TEMPLATE, jobs[-1].params)
    assert filled["1"]["inputs"] == {"seed": 3, "cfg": 7.5}  # whole-string placeholders keep their type
    assert filled["2"]["inputs"]["text"] == "a photo, fruit"


@pytest.mark.parametrize(("grid", "message"), [({}, "uses {{cfg}} but no value"),
                                               ({"cfg": [7], "delay": [0]}, "delay has no {{delay}}")])
def test_placeholders_and_values_must_match(grid, message):
    with pytest.raises(StudyError, match=message):
        expand(TEMPLATE, PAIRS, [1], grid, {})


def test_a_manifest_line_cut_short_is_ignored(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"id": "a", "status": "success"}) + "\n{\"id\": \"b\", \"sta", encoding="utf-8")
    assert list(read_manifest(path)) == ["a"]
