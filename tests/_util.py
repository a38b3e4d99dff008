"""Shared helpers for the tests: batch shapes, random rotations and poses, crashes, untrained
checkpoints and the one-line CLI error check."""

from __future__ import annotations

from pathlib import Path

import torch

from unrender.engine import config_to_json
from unrender.engine.checkpoint import save_checkpoint
from unrender.geometry import axis_angle_to_matrix, make_rigid
from unrender.methods import get_method

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


def untrained_checkpoint(name: str, preset: str, root: Path) -> Path:
    """A checkpoint of a preset's architecture with its initial weights (what these tests check is the
    files and their geometry, not accuracy)."""
    method = get_method(name)
    cfg = method.make_config(preset)
    torch.manual_seed(0)
    save_checkpoint(root / "checkpoints", 1, method.build_model(cfg), config_json=config_to_json(cfg),
                    state={"method": name}, train_state={"optimizer": {}, "scheduler": {}, "rng": []})  # fmt: skip
    return root


def one_line_error(code: int, err: str, *needles: str) -> None:
    """The CLI failed with exit code 2 and exactly one ``unrender: ...`` line holding every needle."""
    assert code == 2 and "Traceback" not in err, err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("unrender:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
