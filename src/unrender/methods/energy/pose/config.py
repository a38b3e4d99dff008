"""Config and presets of learned-energy 3D human pose lifting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ....engine.config import TrainConfig


@dataclass
class PoseData:
    """Synthetic-world skeletons (Human3.6M 17-joint order) projected through random cameras: yaw all
    around the person, elevation -25..5 degrees, 3.5-6.5 m away, an H36M-like pinhole (f 1145 px,
    1000 x 1000 px image). 2D noise is Gaussian in pixels."""

    num_train: int = 100_000
    num_val: int = 2000
    seed: int = 0
    train_noise_px: tuple[float, ...] = (0.0, 5.0)
    """Each training sample's 2D noise level is drawn from these (pixels, std per coordinate)."""
    eval_noise_px: tuple[float, ...] = (0.0, 5.0)
    """The held-out set is scored once per level: 0 px is "ground-truth 2D", 5 px "detected-like"."""
    h36m: Path | None = Path("../shared/data/h36m")
    """Folder with ``test_h36m_body3d.npz`` + ``cameras.json`` scored after training (skipped with a
    message when absent)."""


@dataclass
class PoseModel:
    kind: Literal["energy", "mlp"] = "energy"
    """``energy``: initial network + learned energy minimised by unrolled steps. ``mlp``: the
    Martinez et al. (2017) residual MLP baseline (``width`` units x ``blocks`` residual blocks)."""
    width: int = 128
    """Hidden units of the MLP baseline, or of the energy model's initial network."""
    blocks: int = 1
    """Residual blocks (two linear layers each) of the MLP baseline / the initial network."""
    dropout: float = 0.1
    """Dropout of the MLP blocks (Martinez et al. use 0.5 at 1024 units)."""
    # --- energy model
    prior_width: int = 256
    """Hidden units of the feasibility prior (a softplus MLP on normalised pairwise squared distances)."""
    pair_term: bool = False
    """Add the learned consistency term on pairwise distances of [projected y ; observed 2D]."""
    optimizer: Literal["unrolled", "first_order"] = "unrolled"
    """``unrolled``: momentum gradient steps on the energy (double backprop). ``first_order``: the
    ablation, an MLP maps (y, grad of the reprojection error) to an update."""
    steps: int = 8
    """Inner steps in training."""
    eval_steps: tuple[int, ...] = (0, 1, 2, 4, 8)
    """Inner steps scored at evaluation (K = 0 is the initial network)."""
    alpha: float = 0.05
    """Initial step size (one learned per coordinate)."""
    momentum: float = 0.5
    max_grad_norm: float = 10.0
    step_growth: float = 1.0
    """Loss weight of step k is proportional to (k + 1) ** step_growth."""
    root_weight: float = 0.1
    """Weight of the absolute root-position error next to the root-relative joint error in the loss."""


@dataclass
class EnergyPoseConfig:
    """Learned-energy 2D -> 3D human pose lifting: an initial network's guess refined by a few unrolled
    gradient steps on a learned energy (reprojection consistency + a feasibility prior)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: PoseData = field(default_factory=PoseData)
    model: PoseModel = field(default_factory=PoseModel)


def _train(**kw) -> TrainConfig:
    base = dict(weight_decay=1e-4, schedule="cosine", grad_clip=1.0, warmup_steps=100, log_every=50)
    return TrainConfig(**{**base, **kw})


def tiny() -> EnergyPoseConfig:
    return EnergyPoseConfig(
        train=_train(max_steps=20, batch_size=16, lr=1e-3, warmup_steps=2, ckpt_every=10, log_every=5,
                     out_dir=Path("runs/energy-pose-tiny")),
        data=PoseData(num_train=256, num_val=32, h36m=None),
        model=PoseModel(width=32, prior_width=16, steps=2, eval_steps=(0, 1, 2)),
    )  # fmt: skip


def cpu() -> EnergyPoseConfig:
    return EnergyPoseConfig(
        train=_train(max_steps=6000, batch_size=256, lr=1e-3, ckpt_every=1000, out_dir=Path("runs/energy-pose"),
                     time_limit_min=19.0),
    )  # fmt: skip


def gpu() -> EnergyPoseConfig:
    return EnergyPoseConfig(
        train=_train(max_steps=50_000, batch_size=1024, lr=1e-3, ckpt_every=5000, warmup_steps=500,
                     out_dir=Path("runs/energy-pose-gpu")),
        data=PoseData(num_train=1_000_000, num_val=10_000),
        model=PoseModel(width=512, prior_width=256),
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
