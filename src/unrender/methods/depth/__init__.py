"""``depth``: metric monocular depth, self-supervised from video (Monodepth2-style), with metric
scale from object-height priors and a camera height that stays constant over a sequence."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..base import Method
from .config import PRESETS, DepthConfig
from .data import DepthDataset, KittiRawVideo
from .evaluate import ablation_table, evaluate_depth
from .losses import depth_losses
from .model import DepthModel


def build_model(cfg: DepthConfig) -> nn.Module:
    return DepthModel(cfg)


def build_dataset(cfg: DepthConfig, split: str) -> DepthDataset | KittiRawVideo:
    if split == "train" and cfg.data.kitti_raw is not None:
        return KittiRawVideo(cfg.data.kitti_raw)
    return DepthDataset(cfg, "train" if split == "train" else "val")


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: DepthConfig) -> dict[str, torch.Tensor]:
    return depth_losses(model, batch, cfg)


def evaluate(model: nn.Module, cfg: DepthConfig, device: torch.device) -> dict[str, Any]:
    return evaluate_depth(model, cfg, device)


METHOD = Method(
    name="depth",
    description="Metric monocular depth: self-supervised from video, metric scale from object heights and a "
    "constant camera height.",
    config=DepthConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate,
    extra={"markdown_table": ablation_table},
)
