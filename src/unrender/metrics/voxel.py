"""Voxel occupancy and semantic metrics."""

from __future__ import annotations

import torch

__all__ = ["voxel_iou", "confusion_matrix", "mean_iou"]


def voxel_iou(
    pred: torch.Tensor, gt: torch.Tensor, *, threshold: float = 0.5, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample intersection-over-union of occupied voxels.

    ``pred`` holds probabilities (occupied where ``> threshold``) or bools;
    ``gt`` bools or 0/1. ``mask`` (bool, broadcastable) restricts the voxels
    counted. A sample where both are empty gets IoU 1 (nothing to find, nothing
    predicted).

    Args:
        pred: ``(B, ...)``.
        gt: ``(B, ...)``, same shape.

    Returns:
        ``(B,)`` float.

    Example:
        >>> voxel_iou(torch.tensor([[0.9, 0.8, 0.1, 0.0]]), torch.tensor([[1, 0, 0, 0]]))
        tensor([0.5000])
    """
    if pred.shape != gt.shape or pred.dim() < 1:
        raise ValueError(
            f"voxel_iou: pred and gt must have one shape (B, ...), got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    p = pred > threshold if pred.dtype != torch.bool else pred
    g = gt.bool()
    if mask is not None:
        m = mask.bool().expand_as(g)
        p, g = p & m, g & m
    inter = (p & g).flatten(1).sum(1).float()
    union = (p | g).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int, *, ignore_index: int = -1) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts, rows = ground truth, columns = prediction.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    if pred.shape != gt.shape:
        raise ValueError(f"confusion_matrix: pred and gt shapes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    keep = gt != ignore_index
    idx = gt[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def mean_iou(confusion: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-class IoU ``(K,)`` (NaN for classes absent from both) and their mean over present classes.

    Example:
        >>> per_class, m = mean_iou(torch.tensor([[1, 1], [0, 1]]))
        >>> per_class, m
        (tensor([0.5000, 0.5000]), 0.5)
    """
    c = confusion.double()
    tp = c.diagonal()
    union = c.sum(0) + c.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~torch.isnan(iou)
    return iou.float(), (iou[present].mean().item() if present.any() else float("nan"))
