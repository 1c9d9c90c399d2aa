"""A bounded store of captured cross-attention maps, one record per (step, layer, branch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LayerId:
    """One cross-attention layer: the UNet block (e.g. ('input', 4)), its transformer index and its resolution."""

    block: tuple[str, int]
    index: int
    height: int
    width: int


class AttentionStore:
    """Head-averaged word maps in fp16 at native resolution, keyed (step, layer, branch).

    One record per step: a step keeps the maps of the last model call made exactly at its own σ_i (Heun's next
    predictor, not the corrector of the step before it); calls at intermediate sigmas are not stored. Adding past
    ``max_bytes`` raises, before the memory is used.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.records: dict[tuple[int, LayerId, str], torch.Tensor] = {}
        self.effects: dict[tuple[int, str], torch.Tensor] = {}
        self.sigmas: dict[int, float] = {}

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: every clone shares one store
        return self

    @property
    def nbytes(self) -> int:
        tensors = [*self.records.values(), *self.effects.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def add(self, step: int, sigma: float, layer: LayerId, branch: str, maps: torch.Tensor) -> None:
        """Store maps (B, words, h, w) of one call; a later call at the same step replaces them."""
        self._put(self.records, (step, layer, branch), step, sigma, maps)

    def add_effect(self, step: int, sigma: float, term: str, effect: torch.Tensor) -> None:
        """Store where a negative term acted at one step: |w⁻·(n − u)| over the latent, (B, H, W)."""
        self._put(self.effects, (step, term), step, sigma, effect)

    def _put(self, table: dict, key: tuple, step: int, sigma: float, tensor: torch.Tensor) -> None:
        stored = tensor.detach().to("cpu", torch.float16)
        old = table.get(key)
        growth = stored.numel() * 2 - (old.numel() * 2 if old is not None else 0)
        if self.nbytes + growth > self.max_bytes:
            raise MemoryError(
                f"the attention capture would exceed its cap of {self.max_bytes / 2**20:.1f} MB at step {step}: "
                "raise max_mb, capture fewer words, or sample fewer steps"
            )
        table[key] = stored
        self.sigmas[step] = sigma

    def reset(self) -> None:
        self.records.clear()
        self.effects.clear()
        self.sigmas.clear()

    def steps(self) -> list[int]:
        return sorted(self.sigmas)

    def series(self, lookup: Callable[[int], torch.Tensor | None]) -> torch.Tensor:
        """The first sample of ``lookup(step)`` at every step, zeros where it gives None (e.g. a gated negative)."""
        found = [lookup(t) for t in self.steps()]
        zero = torch.zeros_like(next(m for m in found if m is not None)[0])
        return torch.stack([zero if m is None else m[0] for m in found])

    def layers(self, step: int, branch: str) -> dict[LayerId, torch.Tensor]:
        """The maps of every layer of one branch at one step."""
        return {layer: maps for (s, layer, b), maps in self.records.items() if s == step and b == branch}
