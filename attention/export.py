"""r_t exports: the report as JSON and CSV, the maps as safetensors. UTF-8 text, never pickle."""

from __future__ import annotations

import csv
import io
import json

import safetensors.torch
import torch

from .store import AttentionStore


def curves_csv(data: dict) -> str:
    """One row per negative word, image ('mean' or its index in the batch) and step: word, related, image, step,
    sigma, r (empty where the negative was off)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["word", "related", "image", "step", "sigma", "r"])
    for word, curve in data["curves"].items():
        for image, values in [("mean", curve["r"]), *enumerate(curve["per_image"])]:
            for step, sigma, r in zip(data["steps"], data["sigmas"], values, strict=True):
                writer.writerow([word, curve["related"], image, step, sigma, "" if r is None else r])
    return out.getvalue()


def map_tensors(store: AttentionStore) -> dict[str, torch.Tensor]:
    """'<branch>/<layer>' → maps (steps, B, words, *grid) and 'effect/<term>' → (steps, B, *latent grid), fp16;
    zeros at steps where the branch or term was off."""
    keys = sorted({(branch, layer) for (_, layer, branch) in store.records}, key=str)
    tensors = {f"{branch}/{layer.name}": store.series(lambda t, k=(layer, branch): store.records.get((t, *k)))
               for branch, layer in keys}
    for term in sorted({term for _, term in store.effects}):
        tensors[f"effect/{term}"] = store.series(lambda t, term=term: store.effects.get((t, term)))
    return tensors


def write_exports(base: str, data: dict, store: AttentionStore) -> list[str]:
    """Write base + '.json', '.csv' and '.safetensors' (suffixes appended, so a dotted prefix keeps its name)."""
    paths = [base + suffix for suffix in (".json", ".csv", ".safetensors")]
    with open(paths[0], "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
    with open(paths[1], "w", encoding="utf-8", newline="") as f:
        f.write(curves_csv(data))
    safetensors.torch.save_file(map_tensors(store), paths[2], metadata={"steps": json.dumps(store.steps())})
    return paths
