"""A bounded store of captured cross-attention maps, one record per (step, layer, branch)."""

from __future__ import annotations

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
        self.sigmas: dict[int, float] = {}

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.records.values())

    def add(self, step: int, sigma: float, layer: LayerId, branch: str, maps: torch.Tensor) -> None:
        """Store maps (B, words, h, w) of one call; a later call at the same step replaces them."""
        key = (step, layer, branch)
        stored = maps.detach().to("cpu", torch.float16)
        old = self.records.get(key)
        growth = stored.numel() * 2 - (old.numel() * 2 if old is not None else 0)
        if self.nbytes + growth > self.max_bytes:
            raise MemoryError(
                f"the attention capture would exceed its cap of {self.max_bytes / 2**20:.1f} MB at step {step}: "
                "raise max_mb, capture fewer words, or sample fewer steps"
            )
        self.records[key] = stored
        self.sigmas[step] = sigma

    def reset(self) -> None:
        self.records.clear()
        self.sigmas.clear()

    def steps(self) -> list[int]:
        return sorted(self.sigmas)

    def layers(self, step: int, branch: str) -> dict[LayerId, torch.Tensor]:
        """The maps of every layer of one branch at one step."""
        return {layer: maps for (s, layer, b), maps in self.records.items() if s == step and b == branch}
