"""Single-view voxel models: a 2D encoder-decoder that outputs the grid's depth axis as channels (the
baseline, and the energy model's initial network), and the learned-energy model.

The energy compares a voxel hypothesis with the image by *concatenation projection*: the grid's
depth axis is reshaped into channels, so each (Y, X) cell holds its whole column; pooled to each of
the image encoder's scales it is concatenated with that scale's features, and a small 2D CNN
(softplus) scores every cell; the energy is the mean softplus score over cells and scales (>= 0).
On a frustum grid a column is exactly one pixel block's ray, so the 2D CNN sees the evidence that
column has to explain; on a metric grid it is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..unrolled import UnrolledOptimizer
from .config import EnergyVoxelsConfig

__all__ = ["ImageEncoder", "ColumnDecoder", "VoxelEnergy", "EnergyVoxels", "EncDecVoxels", "build_voxel_model"]

SCALES = 3


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(1, cout), nn.SiLU())


class ImageEncoder(nn.Module):
    """Image ``(B, 3, H, W)`` -> features at the grid's size ``R`` and at ``R/2``, ``R/4``
    (channels ``w``, ``2w``, ``4w``). Smooth activations (SiLU): the energy is differentiated twice."""

    def __init__(self, width: int, image_size: int, resolution: int):
        super().__init__()
        if image_size % resolution or (image_size // resolution) & (image_size // resolution - 1):
            raise ValueError(f"image size {image_size} must be the grid size {resolution} times a power of 2")
        down = []
        c, size = 3, image_size
        while size > resolution:
            down.append(_conv(c, width, 2))
            c, size = width, size // 2
        self.stem = nn.Sequential(*down, _conv(c, width), _conv(width, width))
        self.scales = nn.ModuleList(
            nn.Sequential(
                _conv(width * 2**s, width * 2 ** (s + 1), 2), _conv(width * 2 ** (s + 1), width * 2 ** (s + 1))
            )
            for s in range(SCALES - 1)
        )
        self.channels = [width * 2**s for s in range(SCALES)]

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(image * 2 - 1)]
        for layer in self.scales:
            feats.append(layer(feats[-1]))
        return feats


class ColumnDecoder(nn.Module):
    """Encoder features -> occupancy logits ``(B, R, R, R)`` (depth as channels): a U-Net decoder."""

    def __init__(self, channels: list[int], width: int, resolution: int):
        super().__init__()
        self.up = nn.ModuleList()
        c = channels[-1]
        for skip in reversed(channels[:-1]):
            self.up.append(nn.Sequential(_conv(c + skip, width), _conv(width, width)))
            c = width
        self.head = nn.Conv2d(c, resolution, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for layer, skip in zip(self.up, reversed(feats[:-1]), strict=True):
            x = layer(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.head(x)


class VoxelEnergy(nn.Module):
    """``E(image features, y)`` per sample ``(B,)`` for occupancy logits ``y (B, R, R, R)``."""

    def __init__(self, channels: list[int], resolution: int, width: int):
        super().__init__()
        self.nets = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(resolution + c, width, 3, 1, 1),
                nn.Softplus(),
                nn.Conv2d(width, width, 3, 1, 1),
                nn.Softplus(),
                nn.Conv2d(width, 1, 1),
            )  # fmt: skip
            for c in channels
        )

    def forward(self, feats: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        occ = torch.sigmoid(y)  # (B, Z, Y, X): the depth axis is the channel axis
        energy = y.new_zeros(len(y))
        for s, (net, f) in enumerate(zip(self.nets, feats, strict=True)):
            cols = F.avg_pool2d(occ, 2**s) if s else occ
            energy = energy + F.softplus(net(torch.cat([cols, f], 1))).mean((1, 2, 3))
        return energy


class EncDecVoxels(nn.Module):
    """The baseline: image encoder + U-Net decoder to the depth axis as channels. Returns logits."""

    def __init__(self, cfg: EnergyVoxelsConfig, decoder_width: int | None = None):
        super().__init__()
        d, m = cfg.data, cfg.model
        if d.height != d.width:
            raise ValueError(f"square images only, got {d.height}x{d.width}")
        self.encoder = ImageEncoder(m.width, d.height, d.resolution)
        self.decoder = ColumnDecoder(self.encoder.channels, decoder_width or m.decoder_width, d.resolution)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.decoder(self.encoder(batch["image"]))


class EnergyVoxels(nn.Module):
    """Initial logits from :class:`EncDecVoxels`, then unrolled steps on :class:`VoxelEnergy` (one
    learned step size per depth plane). Returns the iterates ``[y_0, ..., y_K]`` (logits)."""

    def __init__(self, cfg: EnergyVoxelsConfig):
        super().__init__()
        d, m = cfg.data, cfg.model
        self.initial = EncDecVoxels(cfg)
        self.energy = VoxelEnergy(self.initial.encoder.channels, d.resolution, m.energy_width)
        self.optimizer = UnrolledOptimizer((d.resolution, 1, 1), m.steps, m.alpha, m.momentum, m.max_grad_norm)

    def forward(self, batch: dict[str, torch.Tensor], steps: int | None = None) -> list[torch.Tensor]:
        feats = self.initial.encoder(batch["image"])
        y0 = self.initial.decoder(feats)
        return self.optimizer(lambda y: self.energy(feats, y), y0, steps)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build_voxel_model(cfg: EnergyVoxelsConfig) -> nn.Module:
    """The energy model, or the encoder-decoder baseline with its decoder widened until it has about
    as many parameters as the energy model of the same config."""
    if cfg.model.kind == "energy":
        return EnergyVoxels(cfg)
    if cfg.model.kind == "encdec":
        target = _params(EnergyVoxels(cfg))
        width = cfg.model.decoder_width
        while _params(EncDecVoxels(cfg, width + 1)) <= target:
            width += 1
        return EncDecVoxels(cfg, width)
    raise ValueError(f"model.kind must be 'energy' or 'encdec', got {cfg.model.kind!r}")
