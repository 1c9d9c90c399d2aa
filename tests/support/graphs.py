"""API-format prompt builders for the tests: the tiny models or a checkpoint, text encoders, samplers."""

from __future__ import annotations

import harness as headless

Graph, ksampler, custom_sample = headless.Graph, headless.ksampler, headless.custom_sample


def tiny_graph(texts: dict[str, str]):
    """A graph with the tiny loader and one CLIPTextEncode per named text; returns (graph, model, vae, conds)."""
    g = Graph()
    loader = g.node("NegativeGuidanceTestTinySD1", seed=0)
    clip = g.out(loader, 1)
    conds = {name: g.node("CLIPTextEncode", text=text, clip=clip) for name, text in texts.items()}
    return g, loader, g.out(loader, 2), conds


def save_latent(g: Graph, samples, prefix: str):
    return g.node("SaveLatent", samples=samples, filename_prefix=prefix)
