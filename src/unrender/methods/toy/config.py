"""Config and presets of the ``toy`` method: an MLP that learns the depth along camera rays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...engine.config import TrainConfig


@dataclass
class ToyConfig:
    """Learn ray -> distance to the first surface of a small analytic scene (ground + spheres).

    A smoke-test method for the engine and the geometry core: rays come from
    :func:`unrender.geometry.camera_rays`, inputs are Plücker coordinates plus
    the ray origin, and evaluation uses :mod:`unrender.metrics`.
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    height: int = 12
    width: int = 16
    eval_height: int = 48
    eval_width: int = 64
    num_train: int = 512
    num_eval: int = 8
    hidden: int = 128
    layers: int = 3
    frequencies: int = 6
    data_seed: int = 0


def tiny() -> ToyConfig:
    return ToyConfig(
        train=TrainConfig(
            max_steps=30, batch_size=4, lr=3e-3, ckpt_every=10, log_every=5, out_dir=Path("runs/toy-tiny")
        ),
        height=6, width=8, eval_height=12, eval_width=16, num_train=64, num_eval=2, hidden=32, layers=2, frequencies=3,
    )  # fmt: skip


def cpu() -> ToyConfig:
    return ToyConfig(train=TrainConfig(max_steps=1500, batch_size=8, lr=3e-3, ckpt_every=500, out_dir=Path("runs/toy")))


def gpu() -> ToyConfig:
    return ToyConfig(
        train=TrainConfig(
            max_steps=5000, batch_size=64, lr=2e-3, ckpt_every=1000, precision="bf16", out_dir=Path("runs/toy-gpu")
        ),
        height=32, width=48, hidden=256, layers=4, num_train=4096,
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
