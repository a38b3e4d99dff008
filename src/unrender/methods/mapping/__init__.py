"""``mapping``: neural 3D mapping from a few posed RGB-D views of a room (voxel memory, occupancy,
semantics, view prediction, oriented 3D boxes)."""

from __future__ import annotations

import torch
from torch import nn

from ..base import Method
from .config import PRESETS, MappingConfig
from .data import MappingDataset
from .evaluate import evaluate_mapping
from .losses import mapping_losses
from .model import MappingNet


def build_dataset(cfg: MappingConfig, split: str) -> MappingDataset:
    return MappingDataset(cfg, "train" if split == "train" else "val")


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: MappingConfig) -> dict[str, torch.Tensor]:
    return mapping_losses(model(batch), batch, cfg)


METHOD = Method(
    name="mapping",
    description="Neural 3D mapping: posed RGB-D views of a room -> voxel memory -> occupancy, semantics, "
    "held-out views and oriented 3D boxes.",
    config=MappingConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=MappingNet,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate_mapping,
)
