"""Config and presets of fitting a radiance grid to one posed capture."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...engine.config import TrainConfig


@dataclass
class RadianceData:
    """One posed capture (a transforms.json, or a RealEstate10K camera file with its frames), moved so the
    cameras' look-at point is the origin and their mean distance to it is 2.5 (:mod:`unrender.data.capture`)."""

    capture: Path = Path("../shared/data/nerf_fox/transforms.json")
    downscale: int = 8
    """Fit and score the images at 1/downscale of their size (box-filtered): 8 turns the fox's 1080 x 1920
    into 135 x 240."""
    holdout: int = 8
    """Every N-th image (0, N, 2N, ...) is held out of the fit and scored (LLFF's protocol with N = 8); 0: none."""


@dataclass
class RadianceModel:
    """Density and colour on a dense voxel grid over a contracted space (mip-NeRF 360): points within
    ``inner_radius`` of the origin map linearly to the middle half of the grid; the rest of space, out to
    infinity, is squeezed into the outer shell, so the background is fitted too."""

    resolution: int = 128
    """Voxels per edge of the finest grid."""
    levels: int = 1
    """Grids summed, each half the resolution of the one before (coarse-to-fine: the coarse grids take the
    large-scale structure, the fine one the detail); 1: one grid."""
    inner_radius: float = 0.75
    """Radius of the linearly mapped ball, in the normalised capture's units (mean camera distance 2.5)."""
    near: float = 0.1
    far: float = 500.0
    inner_samples: int = 64
    """Samples evenly spaced along each ray's chord through the ball of radius 1.2 ``inner_radius``."""
    outer_samples: int = 32
    """Samples from there to ``far``, evenly spaced in inverse distance."""
    density_scale: float = 10.0
    """Density per unit length = softplus(grid value) x this."""
    density_init: float = -4.0
    """Initial grid value of the density (softplus(-4) x 10 = 0.18 per unit: nearly empty)."""


@dataclass
class RadianceLoss:
    tv: float = 1e-3
    """Weight of the total variation of the finest grid (mean squared difference of neighbouring voxels, over
    density and colour): keeps voxels that few training rays see from fitting noise."""


@dataclass
class RadianceEval:
    chunk: int = 8192
    """Rays rendered at once."""
    export_alpha: float = 0.5
    """A voxel of the exported occupancy is occupied when a ray crossing it would stop with this probability."""


@dataclass
class RadianceConfig:
    """A voxel grid of density and colour fitted to one capture's training images by volume rendering;
    scored on the held-out images against the nearest training image reprojected into the held-out camera."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: RadianceData = field(default_factory=RadianceData)
    model: RadianceModel = field(default_factory=RadianceModel)
    loss: RadianceLoss = field(default_factory=RadianceLoss)
    eval: RadianceEval = field(default_factory=RadianceEval)


def _train(steps: int, out: str, **kw) -> TrainConfig:
    """Adam at 0.1 on the grid values (plain voxels need large steps), no gradient clipping (each step's
    gradient is spread over millions of voxels), cosine decay to a tenth; one batch = 4096 rays."""
    base = dict(max_steps=steps, batch_size=4096, lr=0.1, optimizer="adam", betas=(0.9, 0.99), grad_clip=0.0,
                min_lr_ratio=0.1, ckpt_every=250, log_every=25, out_dir=Path(out))  # fmt: skip
    return TrainConfig(**{**base, **kw})


def fox() -> RadianceConfig:
    """The fox capture at 1/8 resolution, 1500 steps: the docs' run (20-minute safety net on 2 cores)."""
    return RadianceConfig(train=_train(1500, "runs/radiance-fox", time_limit_min=20.0))


def tiny() -> RadianceConfig:
    """For tests: a 16^3 grid, 1/64 resolution, a few steps."""
    return RadianceConfig(
        train=_train(6, "runs/radiance-tiny", batch_size=256, ckpt_every=3, log_every=2),
        data=RadianceData(downscale=64),
        model=RadianceModel(resolution=16, inner_samples=8, outer_samples=4),
    )


PRESETS = {"fox": fox, "tiny": tiny}
