"""r_t exports: the curves as JSON and CSV, the maps as safetensors [step, word, H, W]. Never pickle."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import safetensors.torch
import torch

from .store import AttentionStore


def curves_csv(data: dict) -> str:
    """One row per negative word and step: word, related, step, sigma, r."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["word", "related", "step", "sigma", "r"])
    for word, curve in data["curves"].items():
        for step, sigma, r in zip(data["steps"], data["sigmas"], curve["r"], strict=True):
            writer.writerow([word, curve["related"], step, sigma, r])
    return out.getvalue()


def map_tensors(store: AttentionStore) -> dict[str, torch.Tensor]:
    """'<branch>/<block>.<number>.<index>' → the first sample's maps over the steps, (steps, words, H, W), fp16."""
    keys = sorted({(branch, layer) for (_, layer, branch) in store.records}, key=str)
    return {
        f"{branch}/{layer.block[0]}.{layer.block[1]}.{layer.index}": store.series(
            lambda t, layer=layer, branch=branch: store.records.get((t, layer, branch))
        )
        for branch, layer in keys
    }


def write_exports(base: Path, data: dict, store: AttentionStore) -> list[Path]:
    """Write base + .json, .csv and .safetensors; return their paths."""
    paths = [base.with_suffix(suffix) for suffix in (".json", ".csv", ".safetensors")]
    paths[0].write_text(json.dumps(data, indent=1))
    paths[1].write_text(curves_csv(data))
    safetensors.torch.save_file(map_tensors(store), str(paths[2]), metadata={"steps": json.dumps(store.steps())})
    return paths
