"""Config and presets of learned-energy single-view voxel reconstruction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ....engine.config import TrainConfig


@dataclass
class VoxelData:
    """One rendered view of a generated object (the ``objects`` world: one compound object of at most
    1 m at the origin, cameras 2.2-2.8 m away) and its exact occupancy on a grid tied to the camera."""

    num_train: int = 2000
    """Training scenes (the same generated objects as ``nvs``; each gives ``views_per_scene`` items)."""
    num_val: int = 32
    views: int = 8
    """Rendered views per scene."""
    views_per_scene: int = 8
    """Items per scene (each one view)."""
    height: int = 64
    width: int = 64
    seed: int = 0
    root: Path = Path("runs/data")
    resolution: int = 32
    """Voxels per side of the grid (32 or 64 in the docs' table)."""
    grid: Literal["frustum", "metric"] = "frustum"
    """``frustum``: X and Y follow the image columns and rows (``resolution`` cells across the image)
    and Z the z-depth planes from ``near`` to ``far``: every voxel column is one pixel block's ray
    segment. ``metric``: the same region as a Euclidean grid in the camera's axes (x, y in
    [-half_width, half_width], z in [near, far]), the "world coordinates" variant: its columns do not
    follow the rays."""
    near: float = 1.2
    far: float = 3.8
    half_width: float = 1.2


@dataclass
class VoxelModel:
    kind: Literal["energy", "encdec"] = "energy"
    """``energy``: initial network + learned energy minimised by unrolled steps. ``encdec``: a plain
    2D encoder-decoder that outputs the depth axis as channels (the baseline)."""
    width: int = 16
    """Channels of the image encoder's first scale (doubled at each of the next two)."""
    decoder_width: int = 16
    """Channels of the decoder of the initial network / the baseline (the baseline's is widened to
    match the energy model's size)."""
    energy_width: int = 24
    """Hidden channels of the per-scale 2D CNNs that score the concatenated [voxel columns ; image features]."""
    steps: int = 4
    """Inner steps in training."""
    eval_steps: tuple[int, ...] = (0, 1, 2, 4, 8)
    alpha: float = 1.0
    """Initial step size on the occupancy logits (one learned per depth plane)."""
    momentum: float = 0.5
    max_grad_norm: float = 100.0
    step_growth: float = 1.0


@dataclass
class EnergyVoxelsConfig:
    """Learned-energy single-view voxel reconstruction: image (+ K) -> occupancy on a grid tied to the
    camera, by unrolled gradient steps on a learned energy that compares voxel columns with image features."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: VoxelData = field(default_factory=VoxelData)
    model: VoxelModel = field(default_factory=VoxelModel)


def _train(**kw) -> TrainConfig:
    base = dict(weight_decay=1e-4, schedule="cosine", grad_clip=1.0, warmup_steps=50, log_every=25)
    return TrainConfig(**{**base, **kw})


def tiny() -> EnergyVoxelsConfig:
    return EnergyVoxelsConfig(
        train=_train(max_steps=10, batch_size=2, lr=1e-3, warmup_steps=2, ckpt_every=5, log_every=5,
                     out_dir=Path("runs/energy-voxels-tiny")),
        data=VoxelData(num_train=4, num_val=2, views=2, views_per_scene=2, height=32, width=32, resolution=16),
        model=VoxelModel(width=4, decoder_width=4, energy_width=4, steps=2, eval_steps=(0, 1, 2)),
    )  # fmt: skip


def cpu() -> EnergyVoxelsConfig:
    return EnergyVoxelsConfig(
        train=_train(max_steps=1500, batch_size=8, lr=2e-3, ckpt_every=250, out_dir=Path("runs/energy-voxels"),
                     time_limit_min=12.0),
    )  # fmt: skip


def gpu() -> EnergyVoxelsConfig:
    return EnergyVoxelsConfig(
        train=_train(max_steps=30_000, batch_size=32, lr=1e-3, ckpt_every=5000, warmup_steps=500, num_workers=4,
                     out_dir=Path("runs/energy-voxels-gpu")),
        data=VoxelData(num_train=20_000, num_val=200, height=128, width=128, resolution=64),
        model=VoxelModel(width=32, decoder_width=64, energy_width=64),
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
