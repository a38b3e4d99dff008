"""Shared helpers for the tests: batch shapes, random rotations and poses."""

from __future__ import annotations

import torch

from unrender.geometry import axis_angle_to_matrix, make_rigid

BATCHES = [(), (1,), (2, 3)]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_rot(batch: tuple[int, ...], dtype=torch.float64, seed: int = 0, max_angle: float = 3.0) -> torch.Tensor:
    g = gen(seed)
    axis = torch.randn(*batch, 3, generator=g, dtype=dtype)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.rand(*batch, 1, generator=g, dtype=dtype) * max_angle
    return axis_angle_to_matrix(axis * angle)


def rand_rigid(batch: tuple[int, ...], dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    t = torch.randn(*batch, 3, generator=gen(seed + 1), dtype=dtype)
    return make_rigid(rand_rot(batch, dtype, seed), t)


class Crash(Exception):
    """Raised by :func:`crash_at` to simulate a crash in the middle of training."""


def crash_at(step: int):
    """A trainer hook that raises :class:`Crash` right after optimiser step ``step``."""

    def hook(trainer, s: int) -> None:
        if s == step:
            raise Crash

    return hook
