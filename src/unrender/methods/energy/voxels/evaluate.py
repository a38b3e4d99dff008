"""Training loss and evaluation of single-view voxel reconstruction: voxel IoU at every inner step."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ....metrics.voxel import voxel_iou
from ..unrolled import step_weights
from .config import EnergyVoxelsConfig
from .data import VoxelViews
from .model import EnergyVoxels

__all__ = ["voxel_losses", "evaluate_voxels", "soft_iou", "voxel_table"]


def _iterates(model: nn.Module, batch: dict[str, torch.Tensor], steps: int | None = None) -> list[torch.Tensor]:
    return model(batch, steps) if isinstance(model, EnergyVoxels) else [model(batch)]


def soft_iou(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample soft IoU ``(B,)`` of occupancy probabilities ``sigmoid(logits)`` with 0/1 ``gt``."""
    p = torch.sigmoid(logits).flatten(1)
    g = gt.flatten(1)
    inter = (p * g).sum(1)
    return inter / (p.sum(1) + g.sum(1) - inter).clamp(min=1e-6)


def voxel_losses(model: nn.Module, batch: dict[str, torch.Tensor], cfg: EnergyVoxelsConfig) -> dict[str, torch.Tensor]:
    """Binary cross-entropy + (1 - soft IoU) of the occupancy logits on every iterate, weights
    growing with the step. (About 1 % of a frustum's voxels are occupied: the IoU term keeps the
    empty majority from dominating.)"""
    gt = batch["occupancy"]
    ys = _iterates(model, batch)
    weights = step_weights(len(ys) - 1, cfg.model.step_growth).tolist()
    terms = [F.binary_cross_entropy_with_logits(y, gt) + (1 - soft_iou(y, gt)).mean() for y in ys]
    out = {"loss": sum(w * t for w, t in zip(weights, terms, strict=True)), "loss_first": terms[0].detach(),
           "loss_last": terms[-1].detach()}  # fmt: skip
    with torch.no_grad():
        out["iou_last"] = voxel_iou(ys[-1] > 0, gt > 0.5).mean()
    return out


def evaluate_voxels(model: nn.Module, cfg: EnergyVoxelsConfig, device: torch.device) -> dict[str, Any]:
    """Mean per-view IoU (``K{k}/iou`` at each inner step, or ``encdec/iou``) over the held-out views,
    with the grid and resolution it was measured on, the inner steps the model was trained with
    (``train_steps``), and a picture of depth-collapsed predictions (K = 0 and the trained K)."""
    from ....viz.images import image_grid, to_uint8

    was_training = model.training
    model.eval()
    energy = isinstance(model, EnergyVoxels)
    steps = list(cfg.model.eval_steps) if energy else [0]
    rows = [f"K{k}" for k in steps] if energy else ["encdec"]
    data = VoxelViews(cfg, "val")
    ious: dict[str, list[torch.Tensor]] = {r: [] for r in rows}
    pictures = []
    for batch in DataLoader(data, batch_size=8):
        batch = {k: v.to(device) for k, v in batch.items()}
        ys = _iterates(model, batch, max(*steps, cfg.model.steps) if energy else None)
        gt = batch["occupancy"] > 0.5
        for row, k in zip(rows, steps, strict=True):
            ious[row].append(voxel_iou(ys[k].detach() > 0, gt).float().cpu())
        if not pictures:  # nearest occupied voxel of each column, brighter when nearer
            ramp = torch.linspace(1, 0.2, gt.shape[1], device=device)[None, :, None, None]
            for i in range(min(4, len(gt))):
                img = F.interpolate(batch["image"][i : i + 1], size=gt.shape[-2:], mode="area")[0]
                shown = (gt, ys[0] > 0, ys[cfg.model.steps] > 0) if energy else (gt, ys[0] > 0)
                maps = [(occ[i : i + 1].float() * ramp).amax(1) for occ in shown]
                pictures.append([to_uint8(img)] + [to_uint8(m.expand(3, -1, -1)) for m in maps])
    out: dict[str, Any] = {f"{r}/iou": float(torch.cat(v).mean()) for r, v in ious.items()}
    out["resolution"] = cfg.data.resolution
    out["frustum_grid"] = int(cfg.data.grid == "frustum")
    out["params"] = sum(p.numel() for p in model.parameters())
    out["views"] = len(data)
    title = f"{rows[0]} | K{cfg.model.steps}" if energy else rows[0]
    if energy:
        out["train_steps"] = cfg.model.steps
    out["images"] = {f"view | truth | {title} (nearest occupied voxel per column)": image_grid(pictures, scale=2)}
    model.train(was_training)
    return out


def voxel_table(columns: dict[str, dict[str, float]], command: str) -> str:
    """One row per checkpoint: model, grid, resolution, parameters and IoU at each inner step."""
    ks = sorted({int(k.split("/")[0][1:]) for m in columns.values() for k in m if k.startswith("K")})
    head = ["checkpoint", "model", "grid", "resolution", "params", "IoU (K as trained)"] + [
        f"IoU at K = {k}" for k in ks
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ckpt, m in columns.items():
        energy = any(k.startswith("K") for k in m)
        steps = [f"{m[f'K{k}/iou']:.3f}" if f"K{k}/iou" in m else "" for k in ks]
        final = m.get(f"K{int(m.get('train_steps', max(ks)))}/iou") if energy else m.get("encdec/iou")
        cells = [f"{final:.3f}" if final is not None else ""] + steps
        grid = "frustum" if m.get("frustum_grid") else "metric (camera axes)"
        kind, res, params = (
            "energy" if energy else "encoder-decoder",
            int(m.get("resolution", 0)),
            int(m.get("params", 0)),
        )
        lines.append(f"| {ckpt} | {kind} | {grid} | {res}³ | {params:,} | " + " | ".join(cells) + " |")
    return f"Produced by `{command}`.\n\n" + "\n".join(lines) + "\n"
