"""Config and presets of neural 3D mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...engine.config import TrainConfig


@dataclass
class MappingData:
    """Generated rooms; every sample has ``views_in`` input RGB-D views and one held-out view."""

    num_train: int = 1200
    num_val: int = 40
    views_in: int = 3
    height: int = 64
    width: int = 64
    seed: int = 0
    root: Path = Path("runs/data")
    """Datasets are written (once, resumably) under this folder, named by their settings."""
    bounds_min: tuple[float, float, float] = (-3.2, -0.8, 0.0)
    bounds_max: tuple[float, float, float] = (3.2, 2.4, 6.4)
    """Voxel memory box in the reference camera's gravity-aligned frame (x right, y down, z ahead)."""
    resolution: tuple[int, int, int] = (32, 16, 32)
    """Voxels along x, y, z."""
    mirror: bool = True
    """Training augmentation: also use every training sample mirrored left-right (see ``mirror_item``)."""
    occupancy_target: Literal["exact", "carved"] = "exact"
    """Supervise occupancy with the analytic scene (every voxel known) or with occupancy/free space
    carved from all views of the sample, held-out view included (only those voxels count)."""


@dataclass
class MappingModel:
    channels: tuple[int, int, int] = (16, 32, 128)
    """Feature channels at full, 1/2 and 1/4 resolution (the bottleneck)."""
    unet: bool = False
    """Skip connections from encoder to decoder (the comparison variant); False: the bottleneck carries all."""
    codebook: int = 0
    """0: a continuous bottleneck. ``K``: the bottleneck is vector-quantised (:class:`~unrender.nn.VectorQuantizer`,
    ``K`` codes; not with ``unet``, whose skips would carry the scene past the codes): each bottleneck voxel
    projected to ``code_dim`` channels becomes its nearest code, a scene a small grid of code indices."""
    code_dim: int = 32
    """Channels of a code (1x1x1 convolutions project the bottleneck to them and back)."""
    image_features: int = 0
    """Channels of a small 2D CNN whose features are unprojected too (0: only occupancy and colour)."""
    occupancy: bool = True
    semantics: bool = True
    view: bool = True
    detection: bool = True
    view_channels: int = 8
    view_width: int = 48
    """Channels of the 2D view decoder's hidden layers."""
    appearance_decoder: bool = True
    """View features come from a decoder of their own (sharing the encoder and bottleneck)."""
    colour_volume: bool = True
    """The first 3 view channels are a per-voxel colour, rendered by alpha compositing (occupancy as
    alpha) and trained against the held-out view and the input colours in the memory."""
    render_residual: bool = True
    """With the colour volume: the 2D decoder corrects the composited colours instead of starting anew."""
    depth_planes: int = 24
    det_classes: tuple[str, ...] = ("table", "chair", "shelf", "box")
    yaw_bins: int = 4
    """Heading bins over [0, pi): boxes are symmetric under a half turn."""
    max_detections: int = 32
    nms_iou: float = 0.3


@dataclass
class MappingLoss:
    occupancy: float = 1.0
    semantics: float = 0.5
    view: float = 1.0
    """L1 of the predicted held-out view."""
    view_mse: float = 10.0
    """Squared error of the predicted held-out view. Where the grid cannot resolve a texture (a
    checkered floor at 0.2 m voxels) L1 is flat between the texture's colours while the squared
    error (the metric PSNR reads) asks for their mean."""
    render: float = 5.0
    """L1 of the composited colour volume against the held-out view (weighted by its coverage)."""
    colour: float = 5.0
    """L1 of the colour volume against the fused input colour, where the memory saw a surface."""
    heatmap: float = 1.0
    box: float = 0.5
    commitment: float = 0.25
    """With a quantised bottleneck: the mean squared distance of the encoder's vectors to their codes (the
    codes themselves move by EMA, not by this loss)."""


@dataclass
class MappingConfig:
    """Neural 3D mapping: RGB-D views -> egomotion-stabilised voxel memory -> occupancy, semantics,
    novel views and oriented 3D boxes."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: MappingData = field(default_factory=MappingData)
    model: MappingModel = field(default_factory=MappingModel)
    loss: MappingLoss = field(default_factory=MappingLoss)


def tiny() -> MappingConfig:
    return MappingConfig(
        train=TrainConfig(
            max_steps=20, batch_size=2, lr=2e-3, ckpt_every=10, log_every=5, out_dir=Path("runs/mapping-tiny")
        ),
        data=MappingData(num_train=4, num_val=2, height=32, width=32, resolution=(16, 8, 16)),
        model=MappingModel(channels=(8, 16, 32), view_channels=4, depth_planes=12, max_detections=16),
    )


def cpu() -> MappingConfig:
    return MappingConfig(
        train=TrainConfig(max_steps=3000, batch_size=4, lr=2e-3, warmup_steps=100, weight_decay=1e-4, ckpt_every=500,
                          eval_every=0, out_dir=Path("runs/mapping"), time_limit_min=28.0),
    )  # fmt: skip


def gpu() -> MappingConfig:
    return MappingConfig(
        train=TrainConfig(max_steps=30000, batch_size=16, lr=2e-3, warmup_steps=500, weight_decay=1e-4, ckpt_every=2000,
                          precision="bf16", num_workers=4, out_dir=Path("runs/mapping-gpu")),
        data=MappingData(num_train=4000, num_val=200, height=128, width=128, resolution=(64, 32, 64)),
        model=MappingModel(channels=(24, 48, 192), view_channels=16, depth_planes=48),
    )  # fmt: skip


def _quantised(cfg: MappingConfig, codebook: int, code_dim: int) -> MappingConfig:
    cfg.model.codebook, cfg.model.code_dim = codebook, code_dim
    cfg.train.out_dir = Path(f"{cfg.train.out_dir}-vq")
    return cfg


def tiny_vq() -> MappingConfig:
    """``tiny`` with a quantised bottleneck (16 codes): the scene-code pipeline's smoke test."""
    return _quantised(tiny(), 16, 8)


def cpu_vq() -> MappingConfig:
    """``cpu`` with a quantised bottleneck of 512 codes (what ``unrender dump mapping`` and the code prior use), in
    2000 steps: the 3000 of ``cpu`` ran at 1.3-1.5 steps a second on a 2-core AMD EPYC (33-38 minutes), past the
    28-minute limit."""
    cfg = _quantised(cpu(), 512, 32)
    cfg.train.max_steps = 2000
    return cfg


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu, "tiny-vq": tiny_vq, "cpu-vq": cpu_vq}
