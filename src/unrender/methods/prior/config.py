"""Config and presets of the code prior: an autoregressive model over a quantised mapping model's code grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...engine.config import TrainConfig


@dataclass
class PriorData:
    codes: Path = Path("runs/codes/mapping-vq")
    """A code dump (``unrender dump mapping --ckpt RUN --out DIR``): ``train/`` is trained on, ``val/`` (rooms
    neither model saw) is scored."""


@dataclass
class PriorModel:
    num_codes: int = 512
    """The codebook size of the dumped codes (checked against the dump)."""
    channels: int = 64
    layers: int = 6
    orders: int = 8
    """1: the raster order only. 8: every flip of the three axes before the raster scan (one model, told the
    order), so inpainting can scan in the order that conditions the deleted block on the most known codes;
    each training grid is seen in every order."""


@dataclass
class PriorEval:
    scenes: int = 32
    """Held-out grids to inpaint (each once, with ``samples`` draws per prior)."""
    block: int = 3
    """Edge of the deleted cube of codes (clipped to the grid: a 3 x 3 x 3 block of an 8 x 4 x 8 grid)."""
    samples: int = 16
    """Draws per deleted block (the K of min_K)."""
    temperature: float = 1.0
    choose_order: bool = True
    """Inpaint in the scan order with the most (known code, deleted code) pairs where the known one comes
    first (ties: the plain raster order), and also score the plain raster order next to it; False: the plain
    raster order only."""
    generate: int = 4
    """Unconditional samples drawn and decoded for the report's picture."""
    seed: int = 0


@dataclass
class PriorConfig:
    """A gated 3D PixelCNN over scenes' code grids: held-out bits per code against the uniform and unigram
    priors, inpainting of deleted blocks (code accuracy and decoded occupancy IoU), unconditional samples."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: PriorData = field(default_factory=PriorData)
    model: PriorModel = field(default_factory=PriorModel)
    eval: PriorEval = field(default_factory=PriorEval)


def tiny() -> PriorConfig:
    return PriorConfig(
        train=TrainConfig(max_steps=20, batch_size=4, lr=2e-3, ckpt_every=10, log_every=5,
                          out_dir=Path("runs/code-prior-tiny")),
        data=PriorData(codes=Path("runs/codes/mapping-vq-tiny")),
        model=PriorModel(num_codes=16, channels=8, layers=2),
        eval=PriorEval(scenes=2, block=2, samples=4, generate=1),
    )  # fmt: skip


def cpu() -> PriorConfig:
    return PriorConfig(
        train=TrainConfig(max_steps=1500, batch_size=32, lr=2e-3, warmup_steps=100, weight_decay=1e-4, ckpt_every=300,
                          eval_every=0, out_dir=Path("runs/code-prior"), time_limit_min=27.0),
    )  # fmt: skip


def gpu() -> PriorConfig:
    return PriorConfig(
        train=TrainConfig(max_steps=20000, batch_size=128, lr=1e-3, warmup_steps=500, weight_decay=1e-4,
                          ckpt_every=2000, num_workers=4, out_dir=Path("runs/code-prior-gpu")),
        model=PriorModel(channels=128, layers=10),
        eval=PriorEval(scenes=200),
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
