"""``scene-grids``: one latent voxel grid per room, each with its own optimiser (an auto-decoder), and one
shared decoder and renderer (parameter-free compositing, a bias-free linear map, or a NeRF-style MLP with
volume rendering); scored against the feed-forward mapping net on the same held-out rooms."""

from __future__ import annotations

from pathlib import Path

import torch

from ..base import Method
from .config import PRESETS, GridsConfig
from .data import RoomViews, collate, memory_grid
from .evaluate import evaluate_scene_grids, scene_losses
from .model import SceneGridModel


def build_model(cfg: GridsConfig) -> SceneGridModel:
    """The shared decoder; the scene grids are files under ``<train.out_dir>/scenes``."""
    d = cfg.data
    return SceneGridModel(cfg, memory_grid(cfg), Path(cfg.train.out_dir) / "scenes", d.scenes + d.new_scenes)


def build_dataset(cfg: GridsConfig, split: str) -> RoomViews:
    return RoomViews(cfg, 0, cfg.data.scenes)


def loss(model: SceneGridModel, batch: list[dict], cfg: GridsConfig) -> dict[str, torch.Tensor]:
    """The mean over the batch's rooms of :func:`scene_losses`, each through its own grid."""
    m = getattr(model, "module", model)
    parts = [scene_losses(m, m.bank.get(int(item["scene"])), item, cfg) for item in batch]
    return {k: torch.stack([p[k] for p in parts]).mean() for k in parts[0]}


METHOD = Method(
    name="scene-grids",
    description="Per-room latent voxel grids with their own optimisers and a shared decoder/renderer (auto-decoder).",
    config=GridsConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate_scene_grids,
    collate=collate,
)
