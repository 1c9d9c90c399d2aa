"""API-format prompt builders for the tests: the tiny models or a checkpoint, text encoders, samplers."""

from __future__ import annotations

import itertools


class Graph:
    """An API-format prompt under construction: ``node(class_type, **inputs)`` returns a link to output 0."""

    def __init__(self):
        self.prompt: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def node(self, class_type: str, **inputs) -> list:
        node_id = str(next(self._ids))
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        return [node_id, 0]

    @staticmethod
    def out(link: list, index: int) -> list:
        return [link[0], index]


def tiny_graph(texts: dict[str, str]):
    """A graph with the tiny loader and one CLIPTextEncode per named text; returns (graph, model, vae, conds)."""
    g = Graph()
    loader = g.node("NegativeGuidanceTestTinySD1", seed=0)
    clip = g.out(loader, 1)
    conds = {name: g.node("CLIPTextEncode", text=text, clip=clip) for name, text in texts.items()}
    return g, loader, g.out(loader, 2), conds


def ksampler(g: Graph, model, positive, negative, latent, cfg=7.0, steps=4, sampler="euler", seed=42, denoise=1.0,
             scheduler="normal"):
    return g.node("KSampler", model=model, positive=positive, negative=negative, latent_image=latent, seed=seed,
                  steps=steps, cfg=cfg, sampler_name=sampler, scheduler=scheduler, denoise=denoise)


def custom_sample(g: Graph, model, guider, latent, steps=4, sampler="euler", seed=42, denoise=1.0,
                  scheduler="normal"):
    """SamplerCustomAdvanced with RandomNoise, KSamplerSelect and BasicScheduler: the GUIDER path."""
    noise = g.node("RandomNoise", noise_seed=seed)
    select = g.node("KSamplerSelect", sampler_name=sampler)
    sigmas = g.node("BasicScheduler", model=model, scheduler=scheduler, steps=steps, denoise=denoise)
    return g.node("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=select, sigmas=sigmas,
                  latent_image=latent)


def save_latent(g: Graph, samples, prefix: str):
    return g.node("SaveLatent", samples=samples, filename_prefix=prefix)
