"""The dynamic-scene feature net: a frame's RGB-D views fused into the anchor grid's voxel memory, a 3D U-Net,
and two heads: occupancy (what the scene is) and unit-length correlation features (what the parameter-free
flow matches between frames)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import FeatureNet3D, build_memory
from ...world.generators.traffic import ANCHOR_GRID
from .config import DynamicConfig

__all__ = ["DynamicNet", "memory_input", "MEMORY_CHANNELS", "INPUTS"]

MEMORY_CHANNELS = 7
"""Occupancy, occupancy x colour (3), the fraction of views that see a voxel, carved occupied and free."""


INPUTS = {"occupancy": [0], "colour": [1, 2, 3], "views": [4], "carved": [5], "free": [6]}
"""The channels of :func:`memory_input` by name."""


def memory_input(memory: torch.Tensor) -> torch.Tensor:
    """The net's view of :func:`~unrender.nn.build_memory`'s first 7 channels: colour centred on the voxel's
    occupancy (``occ * (rgb - 0.5)``), so an empty voxel and a grey surface differ in more than occupancy."""
    occ, col = memory[:, :1], memory[:, 1:4]
    return torch.cat([occ, col - 0.5 * occ, memory[:, 4:MEMORY_CHANNELS]], 1)


class DynamicNet(nn.Module):
    def __init__(self, cfg: DynamicConfig):
        super().__init__()
        self.cfg = cfg
        self.grid = ANCHOR_GRID
        m = cfg.model
        unknown = [k for k in m.inputs if k not in INPUTS]
        if unknown or not m.inputs:
            raise ValueError(f"model.inputs: expected some of {list(INPUTS)}, got {list(m.inputs)}")
        self.channels = [c for k in INPUTS if k in m.inputs for c in INPUTS[k]]
        self.net = FeatureNet3D(cin=len(self.channels), channels=m.channels, unet=True)
        self.occupancy = nn.Conv3d(m.channels[0], 1, 1)
        self.features = nn.Conv3d(m.channels[0], m.features, 1)

    def memory(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``rgb (B, V, 3, H, W)``, ``depth``, ``K``, ``cam_from_grid`` -> the memory ``(B, 7, Z, Y, X)``."""
        for key in ("rgb", "depth", "K", "cam_from_grid"):
            if key not in batch:
                raise ValueError(f"DynamicNet: the batch lacks {key!r}")
        m = build_memory(self.grid, batch["rgb"], batch["depth"], batch["K"], batch["cam_from_grid"])
        return m[:, :MEMORY_CHANNELS]

    def encode(self, memory: torch.Tensor) -> dict[str, torch.Tensor]:
        """A memory ``(B, 7, Z, Y, X)`` -> ``occupancy`` logits ``(B, 1, Z, Y, X)`` and unit ``features``
        ``(B, F, Z, Y, X)``."""
        # channels-last 3D: on a 2-core Intel Xeon the net's forward and backward for the cpu preset's batch of 4
        # take 0.31 s instead of 0.40 (a training step 0.90 s instead of 1.10); the outputs go back to contiguous
        x = memory_input(memory)[:, self.channels].contiguous(memory_format=torch.channels_last_3d)
        (h,), _ = self.net(x)
        occupancy = self.occupancy(h).contiguous()
        return {"occupancy": occupancy, "features": F.normalize(self.features(h), dim=1).contiguous()}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        memory = self.memory(batch)
        return {"memory": memory, **self.encode(memory)}
