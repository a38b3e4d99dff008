"""``mapping``: neural 3D mapping from a few posed RGB-D views of a room (voxel memory, occupancy,
semantics, view prediction, oriented 3D boxes)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..base import Method
from .config import PRESETS, MappingConfig
from .data import MappingDataset
from .evaluate import evaluate_mapping
from .losses import mapping_losses
from .model import MappingNet


def build_model(cfg: MappingConfig) -> nn.Module:
    return MappingNet(cfg)


def build_dataset(cfg: MappingConfig, split: str) -> MappingDataset:
    return MappingDataset(cfg, "train" if split == "train" else "val")


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: MappingConfig) -> dict[str, torch.Tensor]:
    return mapping_losses(model(batch), batch, cfg)


def evaluate(model: nn.Module, cfg: MappingConfig, device: torch.device) -> dict[str, Any]:
    return evaluate_mapping(model, cfg, device)


METHOD = Method(
    name="mapping",
    description="Neural 3D mapping: posed RGB-D views of a room -> voxel memory -> occupancy, semantics, "
    "held-out views and oriented 3D boxes.",
    config=MappingConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate,
)
