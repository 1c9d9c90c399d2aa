"""A bounded store of one run's captured attention maps, one record per (step, layer, branch).

Maps arrive on the model's device during a step and stay there until the step ends; then the step's maps, their
scores and the effect maps move to the CPU in one transfer. Attention calls therefore never wait for the host.
"""

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
    """One attention layer: its block (('input', 4), ('double_block', 3)), its index inside the block and the grid of
    its image queries, (H, W) or for video (frames, H, W)."""

    block: tuple[str, int]
    index: int
    grid: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.block[0]}.{self.block[1]}.{self.index}"


def pooled_grid(grid: tuple[int, ...], factor: int) -> tuple[int, ...]:
    """The grid after ``factor``× average pooling of its last two (spatial) dims; partial windows are kept."""
    return (*grid[:-2], *(math.ceil(s / factor) for s in grid[-2:]))


def pooled_pixels(layer: LayerId, factor: int) -> int:
    return math.prod(pooled_grid(layer.grid, factor))


def pool(maps: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool the spatial dims of maps (B, words, *grid) by ``factor``."""
    if factor == 1:
        return maps
    lead, spatial = maps.shape[:-2], maps.shape[-2:]
    pooled = F.avg_pool2d(maps.reshape(-1, 1, *spatial).float(), factor, ceil_mode=True)
    return pooled.reshape(*lead, *pooled.shape[-2:])


def pooling_plan(layers: Sequence[LayerId], bytes_per_pixel: int, max_bytes: int) -> dict[LayerId, int]:
    """The pooling factor of each layer so that Σ_k bytes_per_pixel·pixels_k ≤ max_bytes: the largest stored map is
    halved, one layer at a time, until the run fits (an empty plan when it fits at native resolution)."""
    factor = dict.fromkeys(layers, 1)
    size = lambda layer: pooled_pixels(layer, factor[layer])  # noqa: E731
    while bytes_per_pixel * sum(map(size, layers)) > max_bytes:
        largest = max(layers, key=size)
        if size(largest) == math.prod(largest.grid[:-2]):
            raise MemoryError(f"even 1×1 maps need {bytes_per_pixel * sum(map(size, layers)) / 2**20:.1f} MiB")
        factor[largest] *= 2
    return {layer: f for layer, f in factor.items() if f > 1}


class AttentionStore:
    """Head-averaged word maps in fp16 keyed (step, layer, branch), each map's scores taken before storage, and
    where each negative term acted (its effect map, |w⁻·(n − u)| per latent pixel).

    ``plan`` fixes, before sampling, which layers are average-pooled so that the maps and the effect maps of the
    whole run fit ``max_bytes`` (native resolution whenever it fits). The scores (‖A‖_F, mean A²) are always those of
    the native fp32 maps, so r_t does not depend on the pooling. Within a step a later call replaces an earlier one
    (Heun's predictor at σ_i follows the previous step's corrector there).
    """

    def __init__(self, max_bytes: int, downsample: bool = True):
        self.max_bytes = max_bytes
        self.downsample = downsample
        self.pool: dict[LayerId, int] = {}
        self.records: dict[tuple[int, LayerId, str], torch.Tensor] = {}
        self.scores: dict[tuple[int, LayerId, str], torch.Tensor] = {}
        self.effects: dict[tuple[int, str], torch.Tensor] = {}
        self.sigmas: dict[int, float] = {}
        self.nbytes = 0
        self.step: int | None = None
        self.pending_maps: dict[tuple[LayerId, str], torch.Tensor] = {}
        self.pending_effects: dict[str, torch.Tensor] = {}
        self.planned = 0  # bytes the planned run will hold
        self.fingerprint: str | None = None  # the run's output latent, once it has finished

    def plan(self, layers: Sequence[LayerId], maps_per_step: int, steps: int, effect_pixels: int = 0) -> None:
        """Choose the pooling for ``steps`` steps of ``maps_per_step`` maps per layer and ``effect_pixels`` effect-map
        pixels per step (the effect maps are never pooled)."""
        budget = self.max_bytes - MAP_BYTES * effect_pixels * steps
        bytes_per_pixel = MAP_BYTES * maps_per_step * steps
        native = bytes_per_pixel * sum(pooled_pixels(layer, 1) for layer in layers)
        if budget < 0 or (native > budget and not self.downsample):
            need = native + MAP_BYTES * effect_pixels * steps
            raise MemoryError(f"the maps of this run need {need / 2**20:.1f} MiB at native resolution, over the cap "
                              f"of {self.max_bytes / 2**20:.1f} MiB: raise it, allow downsampling, or capture fewer "
                              "words or steps")
        self.pool = pooling_plan(layers, bytes_per_pixel, budget)
        self.planned = (bytes_per_pixel * sum(pooled_pixels(layer, self.pool.get(layer, 1)) for layer in layers)
                        + MAP_BYTES * effect_pixels * steps)

    def begin_step(self, step: int, sigma: float) -> None:
        """Calls at ``step`` follow: the previous step's maps move to the CPU."""
        if step != self.step:
            self.flush()
            self.step = step
        self.sigmas[step] = sigma

    def add(self, layer: LayerId, branch: str, maps: torch.Tensor) -> None:
        """Maps (B, words, *grid) of the current step, on the model's device."""
        self.pending_maps[(layer, branch)] = maps

    def add_effect(self, term: str, effect: torch.Tensor) -> None:
        """Where a negative term acted at the current step: |w⁻·(n − u)| over the latent, (B, *latent grid)."""
        self.pending_effects[term] = effect

    def flush(self) -> None:
        """Pool and score the current step's maps on their device, then move them and the effects in one transfer."""
        maps = {key: m.detach().float() for key, m in self.pending_maps.items()}
        parts = [t for key, m in maps.items() for t in (pool(m, self.pool.get(key[0], 1)), map_scores(m))]
        parts += [e.detach().float() for e in self.pending_effects.values()]
        if not parts:
            return
        flat = torch.cat([p.flatten() for p in parts]).cpu()
        host = iter(piece.view(p.shape) for piece, p in zip(flat.split([p.numel() for p in parts]), parts, strict=True))
        for layer, branch in maps:
            self.records[(self.step, layer, branch)] = stored = next(host).half()
            self.scores[(self.step, layer, branch)] = next(host)
            self.nbytes += stored.numel() * MAP_BYTES
        for term in self.pending_effects:
            self.effects[(self.step, term)] = stored = next(host).half()
            self.nbytes += stored.numel() * MAP_BYTES
        self.pending_maps.clear()
        self.pending_effects.clear()
        if self.nbytes > self.max_bytes:
            raise MemoryError(f"the attention capture passed its cap of {self.max_bytes / 2**20:.1f} MiB at step "
                              f"{self.step}")

    def reset(self) -> None:
        for table in (self.records, self.scores, self.effects, self.sigmas, self.pending_maps, self.pending_effects):
            table.clear()
        self.nbytes, self.step = 0, None

    def steps(self) -> list[int]:
        return sorted(self.sigmas)

    def series(self, lookup: Callable[[int], torch.Tensor | None]) -> torch.Tensor:
        """``lookup(step)`` at every step, stacked on a new first dim; zeros where it gives None (a gated negative)."""
        found = [lookup(t) for t in self.steps()]
        zero = torch.zeros_like(next(m for m in found if m is not None))
        return torch.stack([zero if m is None else m for m in found])

    def layers(self, step: int, branch: str, table: str = "records") -> dict[LayerId, torch.Tensor]:
        """The maps (or, with table='scores', the scores) of every layer of one branch at one step."""
        return {layer: v for (s, layer, b), v in getattr(self, table).items() if s == step and b == branch}

    def branches(self) -> set[str]:
        return {branch for _, _, branch in self.records}
