"""A bounded store of captured cross-attention maps, one record per (step, layer, branch)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .metrics import map_scores

MAP_BYTES = 2  # fp16


@dataclass(frozen=True)
class LayerId:
    """One cross-attention layer: the UNet block (e.g. ('input', 4)), its transformer index and its resolution."""

    block: tuple[str, int]
    index: int
    height: int
    width: int


def pooled_pixels(layer: LayerId, factor: int) -> int:
    """Pixels of a layer's map after ``factor``× average pooling (partial windows at the edge are kept)."""
    return math.ceil(layer.height / factor) * math.ceil(layer.width / factor)


def pooling_plan(layers: Sequence[LayerId], bytes_per_pixel: int, max_bytes: int) -> dict[LayerId, int]:
    """The pooling factor of each layer so that Σ_k bytes_per_pixel·pixels_k ≤ max_bytes: the largest stored map is
    halved, one layer at a time, until the run fits (an empty plan when it fits at native resolution)."""
    factor = dict.fromkeys(layers, 1)
    size = lambda layer: pooled_pixels(layer, factor[layer])  # noqa: E731
    while bytes_per_pixel * sum(map(size, layers)) > max_bytes:
        largest = max(layers, key=size)
        if size(largest) == 1:
            raise MemoryError(f"even 1×1 maps need {bytes_per_pixel * len(layers) / 2**20:.1f} MB")
        factor[largest] *= 2
    return {layer: f for layer, f in factor.items() if f > 1}


class AttentionStore:
    """Head-averaged word maps in fp16, keyed (step, layer, branch), with each map's scores taken before storage.

    One record per step: a step keeps the maps of the last model call made exactly at its own σ_i (Heun's next
    predictor, not the corrector of the step before it); calls at intermediate sigmas are not stored. ``plan`` fixes,
    before sampling, which layers are average-pooled so that the whole run fits ``max_bytes`` (native resolution
    whenever it fits); adding past the cap still raises, before the memory is used. The scores (‖A‖_F, mean A²) are
    always those of the native fp32 maps, so r_t does not depend on the pooling.
    """

    def __init__(self, max_bytes: int, downsample: bool = True):
        self.max_bytes = max_bytes
        self.downsample = downsample
        self.pool: dict[LayerId, int] = {}
        self.records: dict[tuple[int, LayerId, str], torch.Tensor] = {}
        self.scores: dict[tuple[int, LayerId, str], torch.Tensor] = {}
        self.effects: dict[tuple[int, str], torch.Tensor] = {}
        self.sigmas: dict[int, float] = {}
        self.nbytes = 0  # held by the maps (the effects, one latent-size map per negative and step, are not capped)

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: every clone shares one store
        return self

    def plan(self, layers: Sequence[LayerId], maps_per_step: int, steps: int) -> None:
        """Choose the pooling for a run of ``steps`` that stores ``maps_per_step`` maps per layer at each step."""
        bytes_per_pixel = MAP_BYTES * maps_per_step * steps
        native = bytes_per_pixel * sum(pooled_pixels(layer, 1) for layer in layers)
        if native > self.max_bytes and not self.downsample:
            raise MemoryError(f"the maps of this run need {native / 2**20:.1f} MB at native resolution, over the cap "
                              f"of {self.max_bytes / 2**20:.1f} MB: raise it, allow downsampling, or capture fewer "
                              "words or steps")
        self.pool = pooling_plan(layers, bytes_per_pixel, self.max_bytes)

    def add(self, step: int, sigma: float, layer: LayerId, branch: str, maps: torch.Tensor) -> None:
        """Store maps (B, words, h, w) of one call, pooled as planned; a later call at the same step replaces them."""
        key = (step, layer, branch)
        factor = self.pool.get(layer, 1)
        stored = (F.avg_pool2d(maps.float(), factor, ceil_mode=True) if factor > 1 else maps).detach()
        stored = stored.to("cpu", torch.float16)
        old = self.records.get(key)
        growth = stored.numel() * MAP_BYTES - (old.numel() * MAP_BYTES if old is not None else 0)
        if self.nbytes + growth > self.max_bytes:
            raise MemoryError(
                f"the attention capture would exceed its cap of {self.max_bytes / 2**20:.1f} MB at step {step}: "
                "raise max_mb, capture fewer words, or sample fewer steps"
            )
        self.records[key], self.scores[key] = stored, map_scores(maps).cpu()
        self.nbytes += growth
        self.sigmas[step] = sigma

    def add_effect(self, step: int, sigma: float, term: str, effect: torch.Tensor) -> None:
        """Store where a negative term acted at one step: |w⁻·(n − u)| over the latent, (B, H, W)."""
        self.effects[(step, term)] = effect.detach().to("cpu", torch.float16)
        self.sigmas[step] = sigma

    def reset(self) -> None:
        for table in (self.records, self.scores, self.effects, self.sigmas):
            table.clear()
        self.nbytes = 0

    def steps(self) -> list[int]:
        return sorted(self.sigmas)

    def series(self, lookup: Callable[[int], torch.Tensor | None]) -> torch.Tensor:
        """The first sample of ``lookup(step)`` at every step, zeros where it gives None (e.g. a gated negative)."""
        found = [lookup(t) for t in self.steps()]
        zero = torch.zeros_like(next(m for m in found if m is not None)[0])
        return torch.stack([zero if m is None else m[0] for m in found])

    def layers(self, step: int, branch: str, table: str = "records") -> dict[LayerId, torch.Tensor]:
        """The maps (or, with table='scores', the scores) of every layer of one branch at one step."""
        return {layer: v for (s, layer, b), v in getattr(self, table).items() if s == step and b == branch}
