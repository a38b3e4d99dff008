"""CenterNet-style 3D detection on the bird's-eye view of the voxel memory: targets and decoding.

Per BEV cell ``(z, x)``: class heatmaps, sub-cell centre offset ``(dx, dz)`` (in cells, relative
to the cell centre), centre height ``y`` (metres), log-size ``(sx, sy, sz)`` (metres) and a
heading-invariant yaw: a box is the same box after a half turn, so yaw is taken modulo pi, split
into ``bins`` bins over ``[0, pi)`` with a residual from the bin centre.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...geometry import VoxelGrid, nms_boxes

__all__ = ["REG_CHANNELS", "encode_targets", "decode_boxes", "yaw_to_bins", "bins_to_yaw"]

REG_CHANNELS = 6  # dx, dz, y, log sx, log sy, log sz


def yaw_to_bins(yaw: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Yaw ``(...)`` -> bin index in ``[0, bins)`` and residual from the bin centre (radians), modulo pi."""
    width = math.pi / bins
    y = torch.remainder(yaw, math.pi)
    b = torch.floor(y / width).long().clamp(0, bins - 1)
    return b, y - (b.to(y.dtype) + 0.5) * width


def bins_to_yaw(b: torch.Tensor, residual: torch.Tensor, bins: int) -> torch.Tensor:
    return (b.to(residual.dtype) + 0.5) * (math.pi / bins) + residual


def _bev(grid: VoxelGrid) -> tuple[float, float, float, float, int, int]:
    (x0, _, z0), (vx, _, vz) = grid.bounds_min, grid.voxel_size
    X, _, Z = grid.resolution
    return x0, z0, vx, vz, X, Z


def encode_targets(
    boxes: torch.Tensor, labels: torch.Tensor, grid: VoxelGrid, num_classes: int, bins: int
) -> dict[str, torch.Tensor]:
    """Training targets for one sample.

    Args:
        boxes: ``(M, 7)`` in the grid frame; labels: ``(M,)`` class index, -1 = padding.

    Returns:
        ``heatmap (K, Z, X)`` Gaussian peaks, ``reg (6, Z, X)``, ``yaw_bin (Z, X)`` long,
        ``yaw_res (Z, X)`` and ``mask (Z, X)`` (1 at box centres).
    """
    x0, z0, vx, vz, X, Z = _bev(grid)
    heat = torch.zeros(num_classes, Z, X)
    reg = torch.zeros(REG_CHANNELS, Z, X)
    ybin = torch.zeros(Z, X, dtype=torch.long)
    yres = torch.zeros(Z, X)
    mask = torch.zeros(Z, X)
    iz_all = torch.arange(Z, dtype=torch.float32)[:, None]
    ix_all = torch.arange(X, dtype=torch.float32)[None, :]
    for box, lab in zip(boxes, labels, strict=True):
        if lab < 0:
            continue
        fx = (box[0].item() - x0) / vx - 0.5  # continuous cell index, centres at integers
        fz = (box[2].item() - z0) / vz - 0.5
        ix, iz = int(math.floor(fx + 0.5)), int(math.floor(fz + 0.5))
        if not (0 <= ix < X and 0 <= iz < Z):
            continue
        sigma = max(0.5, 0.25 * min(box[3].item() / vx, box[5].item() / vz))
        g = torch.exp(-((iz_all - fz) ** 2 + (ix_all - fx) ** 2) / (2 * sigma**2))
        g[iz, ix] = 1.0
        heat[lab] = torch.maximum(heat[lab], g)
        reg[:, iz, ix] = torch.tensor([fx - ix, fz - iz, box[1].item(), *box[3:6].clamp(min=1e-3).log().tolist()])
        b, r = yaw_to_bins(box[6], bins)
        ybin[iz, ix], yres[iz, ix] = b, r
        mask[iz, ix] = 1.0
    return {"heatmap": heat, "reg": reg, "yaw_bin": ybin, "yaw_res": yres, "mask": mask}


@torch.no_grad()
def decode_boxes(
    heatmap: torch.Tensor,
    reg: torch.Tensor,
    yaw_logits: torch.Tensor,
    yaw_res: torch.Tensor,
    grid: VoxelGrid,
    *,
    max_detections: int = 32,
    score_threshold: float = 0.05,
    nms_iou: float = 0.3,
) -> list[dict[str, torch.Tensor]]:
    """Peaks of the heatmap (3x3 max-pool), top-K, boxes, then per-class rotated NMS.

    Args:
        heatmap: ``(B, K, Z, X)`` probabilities; reg ``(B, 6, Z, X)``; yaw_logits, yaw_res ``(B, bins, Z, X)``.

    Returns:
        per sample ``{"boxes" (N, 7), "scores" (N,), "labels" (N,)}`` in the grid frame.
    """
    x0, z0, vx, vz, X, Z = _bev(grid)
    B, K = heatmap.shape[:2]
    bins = yaw_logits.shape[1]
    peaks = heatmap * (F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap)
    out = []
    for b in range(B):
        scores, idx = peaks[b].reshape(-1).topk(min(max_detections * 2, peaks[b].numel()))
        keep = scores > score_threshold
        scores, idx = scores[keep], idx[keep]
        cls, cell = idx // (Z * X), idx % (Z * X)
        iz, ix = cell // X, cell % X
        r = reg[b].reshape(REG_CHANNELS, -1)[:, cell]
        cx = x0 + (ix.to(r.dtype) + 0.5 + r[0]) * vx
        cz = z0 + (iz.to(r.dtype) + 0.5 + r[1]) * vz
        yb = yaw_logits[b].reshape(bins, -1)[:, cell].argmax(0)
        res = yaw_res[b].reshape(bins, -1)[:, cell].gather(0, yb[None])[0]
        boxes = torch.stack([cx, r[2], cz, r[3].exp(), r[4].exp(), r[5].exp(), bins_to_yaw(yb, res, bins)], -1)
        kept = []
        for c in cls.unique().tolist():
            sel = (cls == c).nonzero()[:, 0]
            kept.append(sel[nms_boxes(boxes[sel].float(), scores[sel].float(), nms_iou)])
        order = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long)
        order = order[scores[order].argsort(descending=True)][:max_detections]
        out.append({"boxes": boxes[order], "scores": scores[order], "labels": cls[order]})
    return out
