"""Which run AttentionRt analyses, on a live server: with ComfyUI's LRU cache reusing a sampler's result, and after
an interrupted run."""

import time

import live_server
import pytest
from graphs import Graph, ksampler


@pytest.fixture(scope="module")
def lru_server(tmp_path_factory):
    base = live_server.make_base(tmp_path_factory.mktemp("lru_base"))
    yield from live_server.serve(base, extra=("--cache-lru", "10"))


def rt_graph(seed: int, gate_fraction: float = 0.5, steps: int = 6, size: int = 64) -> tuple[dict, str]:
    """Tiny model → AttentionCapture → KSampler → AttentionRt; returns the prompt and the AttentionRt node id."""
    g = Graph()
    loader = g.node("NegativeGuidanceTestTinySD1", seed=0)
    capture = g.node("AttentionCapture", model=loader, clip=g.out(loader, 1), positive_text="professional office "
                     "woman", negative_text="glasses", positive_words="", negative_words="", special_tokens=False,
                     max_mb=50.0, over_cap="downsample")
    latent = g.node("EmptyLatentImage", width=size, height=size, batch_size=1)
    samples = ksampler(g, capture, g.out(capture, 2), g.out(capture, 3), latent, steps=steps, seed=seed)
    rt = g.node("AttentionRt", capture=g.out(capture, 1), samples=samples, score="frobenius",
                gate_fraction=gate_fraction, related="", filename_prefix="lru/rt")
    return g.prompt, rt[0]


def report(entry: dict, rt: str) -> dict:
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry["outputs"][rt]["negative_guidance_rt"][0]


def test_a_cached_samplers_result_is_analysed_with_its_own_runs_maps(lru_server):
    """seed 500, seed 501, then seed 500 with only gate_fraction changed: the KSampler's result comes from the cache,
    and AttentionRt shows seed 500's curves, not 501's."""
    first_prompt, rt = rt_graph(500)
    first = report(lru_server.run(first_prompt), rt)
    other = report(lru_server.run(rt_graph(501)[0]), rt)
    assert other["r"] != first["r"]
    again_prompt, rt = rt_graph(500, gate_fraction=0.9)
    again = report(lru_server.run(again_prompt), rt)
    assert again["r"] == first["r"] and again["words"] == first["words"]


def test_after_an_interrupted_run_the_next_run_shows_its_own_steps(lru_server):
    long_prompt, _ = rt_graph(7, steps=1000, size=256)
    long_id = lru_server.submit(long_prompt)
    deadline = time.monotonic() + 60
    while not lru_server.running():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.5)
    lru_server.interrupt()
    assert lru_server.wait(long_id)["status"]["status_str"] == "error"  # interrupted
    short_prompt, rt = rt_graph(8, steps=8)
    entry = lru_server.run(short_prompt)
    assert len(report(entry, rt)["r"][0]) == 8
