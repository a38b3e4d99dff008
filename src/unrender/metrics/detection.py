"""Dataset-level average precision for oriented 3D boxes (KITTI-style, 40 recall points)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..geometry.boxes import box_iou_3d, box_iou_bev
from ..geometry.checks import check_shape

__all__ = ["average_precision", "detection_ap"]


def _match(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    threshold: float,
    iou_type: str,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Score-sorted true-positive flags of all detections and the number of ground-truth boxes."""
    iou_fn = box_iou_3d if iou_type == "3d" else box_iou_bev
    scores, tps = [], []
    for pb, ps, gb in zip(pred_boxes, pred_scores, gt_boxes, strict=True):
        n = pb.shape[0]
        tp = torch.zeros(n, dtype=torch.bool)
        if n and gb.shape[0]:
            iou = iou_fn(pb.double(), gb.double()).cpu()
            order = ps.detach().cpu().argsort(descending=True, stable=True)
            taken = torch.zeros(gb.shape[0], dtype=torch.bool)
            for i in order.tolist():  # greedy by score: best still-unmatched gt at or above threshold
                cand = torch.where(taken, torch.full_like(iou[i], -1.0), iou[i])
                j = int(cand.argmax())
                if cand[j] >= threshold:
                    taken[j] = True
                    tp[i] = True
        scores.append(ps.detach().cpu().double())
        tps.append(tp)
    s, t = torch.cat(scores), torch.cat(tps)
    order = s.argsort(descending=True, stable=True)
    return t[order], s[order], sum(int(g.shape[0]) for g in gt_boxes)


def average_precision(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    *,
    iou_thresholds: Sequence[float] = (0.25, 0.5),
    iou_type: str = "3d",
    num_points: int = 40,
) -> dict[float, float]:
    """Average precision over a dataset, one class, per IoU threshold.

    Detections of all frames are ranked by score. Within its frame each
    detection, in score order, takes the still-unmatched ground-truth box of
    highest IoU if that IoU is at least the threshold (a true positive), else
    it is a false positive. AP is the mean over recall levels ``r = 1/N, 2/N,
    ..., 1`` (``N = num_points``; KITTI's R40) of the interpolated precision
    ``max_{r' >= r} precision(r')`` (0 where recall ``r`` is never reached).
    With no ground-truth box at all, AP is NaN.

    Args:
        pred_boxes: per frame ``(N_i, 7)``.
        pred_scores: per frame ``(N_i,)``.
        gt_boxes: per frame ``(M_i, 7)``.
        iou_type: ``"3d"`` or ``"bev"``.

    Returns:
        ``{threshold: AP}``.

    Example:
        >>> gt = [torch.tensor([[0.0, 0, 5, 4, 1.5, 2, 0]])]
        >>> average_precision(gt, [torch.tensor([0.9])], gt, iou_thresholds=(0.5,))
        {0.5: 1.0}
    """
    if not (len(pred_boxes) == len(pred_scores) == len(gt_boxes)):
        raise ValueError(
            f"average_precision: need one entry per frame, got {len(pred_boxes)} pred_boxes, "
            f"{len(pred_scores)} pred_scores, {len(gt_boxes)} gt_boxes"
        )
    if iou_type not in ("3d", "bev"):
        raise ValueError(f"iou_type: expected '3d' or 'bev', got {iou_type!r}")
    for i, (pb, ps, gb) in enumerate(zip(pred_boxes, pred_scores, gt_boxes, strict=True)):
        check_shape(pb, f"pred_boxes[{i}]", ("N", 7), max_batch=0)
        check_shape(ps, f"pred_scores[{i}]", (pb.shape[0],), max_batch=0)
        check_shape(gb, f"gt_boxes[{i}]", (None, 7), max_batch=0)
    out: dict[float, float] = {}
    levels = torch.arange(1, num_points + 1, dtype=torch.float64) / num_points
    for thr in iou_thresholds:
        tp, _, n_gt = _match(pred_boxes, pred_scores, gt_boxes, thr, iou_type)
        if n_gt == 0:
            out[thr] = math.nan
            continue
        ctp = tp.double().cumsum(0)
        cfp = (~tp).double().cumsum(0)
        recall = ctp / n_gt
        precision = ctp / (ctp + cfp).clamp(min=1)
        # interpolated precision: running max from the right
        interp = precision.flip(0).cummax(0).values.flip(0)
        ap = 0.0
        for r in levels.tolist():
            reached = recall >= r - 1e-12
            ap += interp[reached][0].item() if reached.any() else 0.0
        out[thr] = ap / num_points
    return out


def detection_ap(
    pred_boxes: Sequence[torch.Tensor],
    pred_scores: Sequence[torch.Tensor],
    pred_labels: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    class_names: Sequence[str],
    *,
    iou_thresholds: Sequence[float] = (0.25, 0.5),
    iou_type: str = "3d",
    num_points: int = 40,
) -> dict[str, float]:
    """Per-class :func:`average_precision` and its mean over classes with ground truth.

    Returns:
        flat dict: ``"{class}/AP{type}@{thr}"`` and ``"mAP{type}@{thr}"``.

    Example:
        >>> gt = [torch.tensor([[0.0, 0, 5, 4, 1.5, 2, 0]])]
        >>> lab = [torch.tensor([0])]
        >>> detection_ap(gt, [torch.tensor([0.9])], lab, gt, lab, ["car"], iou_thresholds=(0.5,))
        {'car/AP3d@0.5': 1.0, 'mAP3d@0.5': 1.0}
    """
    out: dict[str, float] = {}
    per_thr: dict[float, list[float]] = {t: [] for t in iou_thresholds}
    for c, name in enumerate(class_names):
        sel_p = [lab == c for lab in pred_labels]
        sel_g = [lab == c for lab in gt_labels]
        ap = average_precision(
            [b[m] for b, m in zip(pred_boxes, sel_p, strict=True)],
            [s[m] for s, m in zip(pred_scores, sel_p, strict=True)],
            [b[m] for b, m in zip(gt_boxes, sel_g, strict=True)],
            iou_thresholds=iou_thresholds,
            iou_type=iou_type,
            num_points=num_points,
        )
        for t, v in ap.items():
            out[f"{name}/AP{iou_type}@{t}"] = v
            if not math.isnan(v):
                per_thr[t].append(v)
    for t, vs in per_thr.items():
        out[f"mAP{iou_type}@{t}"] = sum(vs) / len(vs) if vs else math.nan
    return out
