"""Losses of neural 3D mapping; each returns a scalar that is a mean over the batch's samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import MappingConfig
from .data import memory_grid
from .detection import encode_targets

__all__ = ["mapping_losses", "balanced_bce", "focal_heatmap_loss", "surface_colour_target"]


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Mean of the BCE over known positives and over known negatives, per sample, then over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pos, neg = known * target, known * (1 - target)
    dims = tuple(range(1, logits.dim()))
    lp = (bce * pos).sum(dims) / pos.sum(dims).clamp(min=1)
    ln = (bce * neg).sum(dims) / neg.sum(dims).clamp(min=1)
    return (0.5 * (lp + ln)).mean()


def focal_heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by each sample's number of peaks."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    peak = (target >= 1 - 1e-6).float()
    pos = -((1 - p) ** alpha) * torch.log(p) * peak
    neg = -((1 - target) ** beta) * (p**alpha) * torch.log(1 - p) * (1 - peak)
    n = peak.flatten(1).sum(1).clamp(min=1)
    return ((pos + neg).flatten(1).sum(1) / n).mean()


def surface_colour_target(memory: torch.Tensor, occupied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour targets of the colour volume from the fused input colours, and where they apply.

    A voxel some input depth point fell in takes that colour. A surface point often lies in the
    empty voxel just above or beside the occupied one (a floor's top face near a voxel boundary),
    while the renderer composites colour where the occupancy is: occupied voxels next to a seen
    surface therefore take the mean colour seen in their 3x3x3 neighbourhood too. (Without this the
    occupied floor voxels had no colour target and rendered as one prior brown whatever the floor.)

    Args:
        memory: ``(B, 7 + F, Z, Y, X)`` from :func:`~unrender.nn.memory.build_memory`.
        occupied: ``(B, 1, Z, Y, X)`` boolean, voxels known occupied.

    Returns:
        colour ``(B, 3, Z, Y, X)`` and weight ``(B, 1, Z, Y, X)`` (1 where the colour applies, else 0).
    """
    occ, col = memory[:, :1], memory[:, 1:4]
    seen = occ > 0
    near_occ = F.avg_pool3d(occ, 3, stride=1, padding=1)
    near_col = F.avg_pool3d(col, 3, stride=1, padding=1)
    near = near_occ > 0
    colour = torch.where(seen, col / occ.clamp(min=1e-6), near_col / near_occ.clamp(min=1e-6))
    weight = seen | (near & occupied)
    return colour, weight.to(colour.dtype)


def mapping_losses(
    out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: MappingConfig
) -> dict[str, torch.Tensor]:
    w, m = cfg.loss, cfg.model
    terms: dict[str, torch.Tensor] = {}
    if m.occupancy:
        terms["occupancy"] = balanced_bce(out["occ_logits"], batch["occ_target"], batch["occ_known"])
    if m.semantics:
        occupied = batch["occ"][:, 0] > 0.5
        ce = F.cross_entropy(out["sem_logits"], batch["sem"], reduction="none")
        per = (ce * occupied).flatten(1).sum(1) / occupied.flatten(1).sum(1).clamp(min=1)
        terms["semantics"] = per.mean()
    if m.view:
        err = out["rgb_pred"] - batch["rgb_out"]
        terms["view_l1"] = err.abs().flatten(1).mean(1).mean()
        terms["view_mse"] = err.square().flatten(1).mean(1).mean()
        if m.colour_volume:
            # the composite only covers what lies in the memory: compare with the target premultiplied
            # by the coverage, so rays that leave the grid ask nothing of the colours
            covered = out["render_alpha"] * batch["rgb_out"]
            terms["render_l1"] = (out["rgb_render"] - covered).abs().flatten(1).mean(1).mean()
            occupied = batch["occ_target"] * batch["occ_known"] > 0.5
            colour, weight = surface_colour_target(out["memory"], occupied)
            err = ((out["colour"] - colour).abs() * weight).flatten(1).sum(1)
            terms["colour_l1"] = (err / (3 * weight.flatten(1).sum(1)).clamp(min=1)).mean()
    if m.detection:
        grid = memory_grid(cfg)
        tg = [encode_targets(b.cpu(), l.cpu(), grid, len(m.det_classes), m.yaw_bins) for b, l in
              zip(batch["boxes"], batch["box_labels"], strict=True)]  # fmt: skip
        dev = out["reg"].device
        st = {k: torch.stack([t[k] for t in tg]).to(dev) for k in tg[0]}
        terms["heatmap"] = focal_heatmap_loss(out["heatmap_logits"].float(), st["heatmap"])
        mask = st["mask"]
        n = mask.flatten(1).sum(1).clamp(min=1)
        reg = ((out["reg"].float() - st["reg"]).abs().sum(1) * mask).flatten(1).sum(1) / n
        ce = F.cross_entropy(out["yaw_logits"].float(), st["yaw_bin"], reduction="none")
        res = out["yaw_res"].float().gather(1, st["yaw_bin"][:, None])[:, 0]
        yaw = ((ce + (res - st["yaw_res"]).abs()) * mask).flatten(1).sum(1) / n
        terms["box"] = (reg + yaw).mean()
    weights = {
        "occupancy": w.occupancy,
        "semantics": w.semantics,
        "view_l1": w.view,
        "view_mse": w.view_mse,
        "render_l1": w.render,
        "colour_l1": w.colour,
        "heatmap": w.heatmap,
        "box": w.box,
        "commitment": w.commitment,
    }
    if "commitment" in out:  # a quantised bottleneck
        terms["commitment"] = out["commitment"]
    total = sum(weights[k] * v for k, v in terms.items())
    stats = {f"codes/{k}": out[f"code_{k}"] for k in ("perplexity", "used") if f"code_{k}" in out}
    return {"loss": total, **{k: v.detach() for k, v in terms.items()}, **stats}
