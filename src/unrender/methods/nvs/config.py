"""Config and presets of transformer novel-view synthesis (LVSM-style)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...engine.config import TrainConfig


@dataclass
class NVSData:
    """Object-centric renders of generated objects: each scene is ``views`` cameras at random over a
    sphere; an item takes ``num_input`` of them as inputs and ``num_target`` others as targets."""

    num_train: int = 2000
    """Training scenes."""
    num_val: int = 32
    """Held-out scenes (a different seed)."""
    views: int = 8
    """Rendered views per scene."""
    num_input: int = 2
    num_target: int = 2
    height: int = 64
    width: int = 64
    seed: int = 0
    root: Path = Path("runs/data")
    """Datasets are written (once, resumably) under this folder, named by their settings."""
    capture: Path | None = None
    """Train on your own posed capture instead: a transforms.json, or a RealEstate10K camera file with its
    frames in a folder of the same name (``capture_items`` random input/target choices); evaluation stays
    on the generated held-out objects (score a capture with ``unrender eval nvs --data-format``)."""
    capture_items: int = 1000
    """Items (deterministic choices of input and target views) drawn from ``capture``."""


@dataclass
class NVSModel:
    arch: Literal["decoder", "encdec"] = "decoder"
    """``decoder``: each target's tokens attend jointly with all input tokens. ``encdec``: an encoder
    turns [latents ; input tokens] into latent tokens, a decoder renders [target tokens ; latents]."""
    patch: int = 8
    dim: int = 128
    heads: int = 4
    layers: int = 5
    """Transformer blocks (decoder-only); the encoder-decoder splits them into ``encoder_layers`` and the rest."""
    encoder_layers: int = 2
    latents: int = 32
    """Learned latent tokens of the encoder-decoder model."""
    checkpointing: bool = False
    """Gradient checkpointing of every block (saves memory on GPU; costs a second forward)."""
    max_translation: float = 1.0
    """Pose normalisation: after expressing cameras relative to the mean input camera, translations
    are scaled so that the farthest input camera is this far from it."""


@dataclass
class NVSLoss:
    perceptual: float = 0.2
    """Weight of the perceptual term added to the MSE."""
    perceptual_weights: Path | None = None
    """A local file of VGG-16 ``features`` weights (torchvision key layout, ``.pth`` or ``.safetensors``)
    for a VGG feature loss; none ship, so by default the perceptual term is ``1 - SSIM``."""


@dataclass
class NVSConfig:
    """Transformer novel-view synthesis on Plücker-ray tokens (LVSM-style): decoder-only or
    encoder-decoder, no 3D structure built in."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: NVSData = field(default_factory=NVSData)
    model: NVSModel = field(default_factory=NVSModel)
    loss: NVSLoss = field(default_factory=NVSLoss)
    eval_lpips: tuple[Path, ...] = ()
    """LPIPS weights for evaluation (VGG-16 ``features.*`` and ``lin0..4.model.1.weight``, in one or two
    files); without them LPIPS is reported as unavailable."""


def _train(**kw) -> TrainConfig:
    base = dict(betas=(0.9, 0.95), weight_decay=0.05, decay_1d=False, schedule="cosine", grad_clip=1.0,
                spike_factor=4.0)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def tiny() -> NVSConfig:
    return NVSConfig(
        train=_train(max_steps=20, batch_size=2, lr=1e-3, warmup_steps=2, ckpt_every=10, log_every=5,
                     out_dir=Path("runs/nvs-tiny")),
        data=NVSData(num_train=4, num_val=2, views=4, height=32, width=32),
        model=NVSModel(patch=8, dim=32, heads=2, layers=2, encoder_layers=1, latents=8),
    )  # fmt: skip


def cpu() -> NVSConfig:
    return NVSConfig(
        train=_train(max_steps=4000, batch_size=8, lr=1e-3, warmup_steps=100, ckpt_every=500, log_every=25,
                     out_dir=Path("runs/nvs"), time_limit_min=27.0),
    )  # fmt: skip


def gpu() -> NVSConfig:
    return NVSConfig(
        train=_train(max_steps=100000, batch_size=32, lr=4e-4, warmup_steps=2500, ckpt_every=5000,
                     precision="bf16", num_workers=4, out_dir=Path("runs/nvs-gpu")),
        data=NVSData(num_train=50000, num_val=200, views=12, num_input=4, num_target=4, height=256, width=256),
        model=NVSModel(patch=8, dim=768, heads=12, layers=24, encoder_layers=12, latents=1024, checkpointing=True),
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
