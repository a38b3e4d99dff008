"""``toy``: learn the depth of a small analytic scene from camera rays (engine and geometry smoke test)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...metrics import DepthMetrics
from ..base import Method
from .config import PRESETS, ToyConfig
from .data import ToyRays
from .model import RayDepthMLP


def build_model(cfg: ToyConfig) -> nn.Module:
    return RayDepthMLP(hidden=cfg.hidden, layers=cfg.layers, frequencies=cfg.frequencies)


def build_dataset(cfg: ToyConfig, split: str) -> ToyRays:
    if split == "train":
        return ToyRays(cfg.num_train, cfg.height, cfg.width, seed=cfg.data_seed, split="train")
    return ToyRays(cfg.num_eval, cfg.eval_height, cfg.eval_width, seed=cfg.data_seed, split="val")


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: ToyConfig) -> dict[str, torch.Tensor]:
    pred = model(batch["rays"])  # (B, H, W)
    gt = batch["distance"][:, 0]
    hit = gt > 0
    err = (pred.clamp(min=1e-6).log() - gt.clamp(min=1e-6).log()).abs()
    # mean per view, then over views: the DDP average of rank losses equals the global-batch loss
    l1 = ((err * hit).flatten(1).sum(1) / hit.flatten(1).sum(1).clamp(min=1)).mean()
    return {"loss": l1, "log_l1": l1.detach()}


@torch.no_grad()
def evaluate(model: nn.Module, cfg: ToyConfig, device: torch.device) -> dict[str, Any]:
    from ...viz.images import colorize_depth, image_grid

    data = build_dataset(cfg, "val")
    acc = DepthMetrics(max_depth=30.0)
    rows = []
    for i in range(len(data)):
        item = data[i]
        distance = model(item["rays"].to(device)).float().cpu()
        dirs = item["rays"][..., :3]  # Plücker direction
        pred = (distance * (dirs @ item["cam_from_world"][2, :3]))[None, None]  # z-depth
        gt = item["depth"][None]
        acc.update(pred, gt)
        if i < 4:
            rows.append(
                [colorize_depth(gt[0, 0], max_depth=12), colorize_depth(pred[0, 0] * (gt[0, 0] > 0), max_depth=12)]
            )
    out: dict[str, Any] = {k: v for k, v in acc.compute().items() if k in ("abs_rel", "rmse", "a1", "num_images")}
    out["images"] = {"depth: ground truth | prediction": image_grid(rows)}
    return out


METHOD = Method(
    name="toy",
    description="Learn the depth of a small analytic scene from Plücker rays (engine and geometry smoke test).",
    config=ToyConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate,
)
