"""Helpers of the comfy tier: boot ComfyUI with the test pack, run nodes by id, record model calls, sample on the
tiny models.

ComfyUI is imported inside the functions: it is on sys.path only once ``boot`` has run.
"""

import harness

TESTING_PACK = harness.PACK_ROOT / "tests" / "support" / "testing_pack"
PACK_NODES = [  # every node id of the pack, in the order it registers them
    "NegativeGuidanceGuider", "NegativeGuidanceCFG", "NegativeTerm", "AttentionNegativeTerm", "AttentionCapture",
    "AttentionRt", "ToyConceptModelLoader"]


def boot(workdir, cpu: bool = True):
    """ComfyUI in this process with this pack and the test-only loader pack; outputs go to workdir."""
    return harness.boot(workdir, {"negative_guidance_testing": TESTING_PACK}, cpu=cpu)


def call_node(name: str, **inputs):
    """Run one registered node (V1 or V3) by its id and return its outputs as a tuple."""
    import nodes
    from comfy_api.latest import io

    cls = nodes.NODE_CLASS_MAPPINGS[name]
    if issubclass(cls, io.ComfyNode):
        return cls.execute(**inputs).args
    return getattr(cls(), cls.FUNCTION)(**inputs)


class Recorder:
    """A unet function wrapper that records every model call: (σ, conds in the batch, batch rows)."""

    def __init__(self):
        self.calls = []

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: stay one recorder
        return self

    def __call__(self, apply_model, args):
        rows = args["input"].shape[0]
        self.calls.append((float(args["timestep"][0]), len(args["cond_or_uncond"]), rows))
        return apply_model(args["input"], args["timestep"], **args["c"])

    def conds_per_call(self):
        return [conds for _, conds, _ in self.calls]




def sample(t, model, steps=4, cfg=7.0, sampler="euler", negative=None, callback=None, denoise=1.0):
    """The KSampler path (comfy.sample.sample) on the tiny models."""
    import comfy.sample

    negative = t.n if negative is None else negative
    return comfy.sample.sample(model, t.noise, steps, cfg, sampler, "normal", t.p, negative, t.latent,
                               denoise=denoise, callback=callback, disable_pbar=True, seed=42)


def noise_per_seed(latent, seeds):
    """Noise for a batch whose row b is what a batch-1 run with seeds[b] would draw (comfy.sample.prepare_noise)."""
    import torch

    import comfy.sample

    return torch.cat([comfy.sample.prepare_noise(latent[:1], seed) for seed in seeds])


def patched(t, model, **inputs):
    settings = dict(mode="independent", neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant", empty=t.u) | inputs
    return call_node("NegativeGuidanceCFG", model=model, **settings)[0]


pack_module = harness.module  # a submodule of the pack as ComfyUI loaded it, e.g. pack_module("nodes.capture")


def rss_bytes() -> int:
    """This process's resident memory (Linux), after glibc has handed its freed heap pages back (malloc_trim), so
    that what is counted is what is still held."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm", encoding="utf-8") as statm:
        return int(statm.read().split()[1]) * 4096


def assert_memory_stays_flat(capture_once, runs: int = 4) -> None:
    """``capture_once()`` samples one captured run and returns its AttentionCapture handle: after ``runs`` of them,
    every recorder is gone (the leak check), and the process holds at most about one run's maps more than halfway
    (after the warm-up's first-time allocations; 16 MB of slack for the allocator's own variation)."""
    import gc
    import weakref

    recorders, sizes, baseline = [], [], None
    for i in range(runs):
        handle = capture_once()
        sizes.append(handle.recorder.finished.nbytes)
        recorders.append(weakref.ref(handle.recorder))
        del handle
        gc.collect()
        if i == runs // 2:
            baseline = rss_bytes()
    assert all(ref() is None for ref in recorders)
    growth = rss_bytes() - baseline
    assert growth < 3 * max(sizes) + 16 * 2**20, f"RSS grew {growth / 2**20:.1f} MB over the second half's runs"
