"""Losses of neural 3D mapping; each returns a scalar that is a mean over the batch's samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import MappingConfig
from .data import memory_grid
from .detection import encode_targets

__all__ = ["mapping_losses", "balanced_bce", "focal_heatmap_loss"]


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
        terms["view_l1"] = (out["rgb_pred"] - batch["rgb_out"]).abs().flatten(1).mean(1).mean()
        if m.colour_volume:
            # the composite only covers what lies in the memory: compare with the target premultiplied
            # by the coverage, so rays that leave the grid ask nothing of the colours
            covered = out["render_alpha"] * batch["rgb_out"]
            terms["render_l1"] = (out["rgb_render"] - covered).abs().flatten(1).mean(1).mean()
            mem = out["memory"]
            seen = (mem[:, :1] > 0).float()  # fused occupancy: some view put a depth point there
            colour = mem[:, 1:4] / mem[:, :1].clamp(min=1e-6)
            err = ((out["colour"] - colour).abs() * seen).flatten(1).sum(1) / (3 * seen.flatten(1).sum(1)).clamp(min=1)
            terms["colour_l1"] = err.mean()
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
        "render_l1": w.render,
        "colour_l1": w.colour,
        "heatmap": w.heatmap,
        "box": w.box,
    }
    total = sum(weights[k] * v for k, v in terms.items())
    return {"loss": total, **{k: v.detach() for k, v in terms.items()}}
