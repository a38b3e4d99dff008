"""Ego-stabilised background subtraction: every frame's voxel memory brought into one anchor frame, the
per-voxel median (or mean) over time as the background, and what differs from it as moving.

All volumes here are already in the anchor frame (:func:`unrender.geometry.warp_volume` brings them
there with the known ego-motion) and laid out ``(T, C, Z, Y, X)`` over the ``T`` frames.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ...geometry import VoxelGrid, check_args, check_shape, points_in_boxes

__all__ = [
    "temporal_background",
    "reliably_seen",
    "moving_voxels",
    "centre_surround",
    "moved_voxels",
    "neighbour_frames",
    "changed_features",
    "voxel_iou",
]


def reliably_seen(seen: torch.Tensor, margin: int) -> torch.Tensor:
    """Voxels seen whose every neighbour within ``margin`` voxels (a cube) is seen too: the border of what a
    camera sees is where unprojection smears and warping mixes in empty space.

    Args:
        seen: ``(..., Z, Y, X)`` bool.

    Example:
        >>> s = torch.ones(1, 5, 5, dtype=torch.bool); s[0, 0, 0] = False
        >>> reliably_seen(s, 1)[0].sum().item()  # the corner voxel and its 3 neighbours drop out
        21
    """
    check_shape(seen, "seen", (None, None, None), floating=False)
    if margin <= 0:
        return seen.clone()
    unseen = (~seen).reshape(-1, 1, *seen.shape[-3:]).float()
    grown = F.max_pool3d(unseen, 2 * margin + 1, stride=1, padding=margin) > 0
    return ~grown.reshape(seen.shape)


def temporal_background(
    volumes: torch.Tensor, seen: torch.Tensor, *, statistic: Literal["median", "mean"] = "median"
) -> dict[str, torch.Tensor]:
    """The background of a voxel: its median (or mean) over the frames that saw it.

    Args:
        volumes: ``(T, C, Z, Y, X)`` per-frame features in the anchor frame.
        seen: ``(T, 1, Z, Y, X)`` bool, the frames that saw each voxel.
        statistic: ``median`` (an object that stays in a voxel for less than half of the frames that see it
            is not background) or ``mean``.

    Returns:
        ``background (C, Z, Y, X)``, ``spread (C, Z, Y, X)`` (standard deviation over the seeing frames) and
        ``count (1, Z, Y, X)`` (frames that saw the voxel); background and spread are 0 where no frame did.

    Example:
        >>> v = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]).reshape(5, 1, 1, 1, 1)  # a car passes at frame 2
        >>> temporal_background(v, torch.ones_like(v, dtype=torch.bool))["background"].item()
        0.0
    """
    check_args(("volumes", volumes, (None, "Z", "Y", "X")))
    if seen.shape != (volumes.shape[0], 1, *volumes.shape[-3:]) or seen.dtype != torch.bool:
        raise ValueError(
            f"seen: expected a bool tensor of shape {(volumes.shape[0], 1, *volumes.shape[-3:])}, "
            f"got {tuple(seen.shape)} {seen.dtype}"
        )
    if volumes.dim() != 5:
        raise ValueError(f"volumes: expected (T, C, Z, Y, X), got {tuple(volumes.shape)}")
    count = seen.sum(0)
    n = count.clamp(min=1).to(volumes.dtype)
    mean = torch.where(seen, volumes, 0).sum(0) / n
    var = torch.where(seen, (volumes - mean) ** 2, 0).sum(0) / n
    if statistic == "median":
        background = torch.nan_to_num(torch.where(seen, volumes, float("nan")).nanmedian(0).values)
    elif statistic == "mean":
        background = mean
    else:
        raise ValueError(f"statistic: expected 'median' or 'mean', got {statistic!r}")
    background = torch.where(count > 0, background, 0)
    return {"background": background, "spread": var.sqrt(), "count": count}


def moving_voxels(
    volumes: torch.Tensor, seen: torch.Tensor, background: torch.Tensor, *, threshold: float, margin: int = 1
) -> torch.Tensor:
    """Voxels of each frame that differ from the background by more than ``threshold`` (Euclidean over the
    channels), counted only where the frame sees them reliably (:func:`reliably_seen` with ``margin``).

    Args:
        volumes: ``(T, C, Z, Y, X)``; seen: ``(T, 1, Z, Y, X)`` bool; background: ``(C, Z, Y, X)``.

    Returns:
        ``(T, 1, Z, Y, X)`` bool.
    """
    check_args(("volumes", volumes, ("C", "Z", "Y", "X")), ("background", background, ("C", "Z", "Y", "X")))
    diff = (volumes - background).norm(dim=1, keepdim=True)
    return (diff > threshold) & reliably_seen(seen, margin)


def centre_surround(occupancy: torch.Tensor, grid: VoxelGrid, boxes: torch.Tensor, *, shell: float = 1.0):
    """Centre-surround contrast of each box on an occupancy volume: mean occupancy inside the box minus that
    of a shell ``shell`` metres thick around it (an object is full and stands in free space; a piece of a
    wall or the road is as full around it as inside). Boxes whose shell holds no voxel score their inside.

    Args:
        occupancy: ``(Z, Y, X)`` in ``[0, 1]``; boxes: ``(M, 7)`` in the grid's frame.

    Returns:
        ``(M,)`` scores in ``[-1, 1]``.
    """
    check_shape(occupancy, "occupancy", grid.shape, max_batch=0)
    check_shape(boxes, "boxes", (7,), max_batch=1)
    out = torch.zeros(len(boxes), dtype=torch.float64)
    if len(boxes) == 0:
        return out.to(occupancy)
    b = boxes.double().cpu()
    occ = occupancy.double().cpu()
    xs, ys, zs = (c.double() for c in grid.axis_centers(dtype=torch.float64))
    # each box looks only at the voxels of its grown box's axis-aligned bounds
    reach = (b[:, 3:6] / 2 + shell).norm(dim=1, keepdim=True)  # a sphere around the grown box
    lo, hi = b[:, :3] - reach, b[:, :3] + reach
    for m in range(len(b)):
        sx, sy, sz = ((c >= lo[m, k]) & (c <= hi[m, k]) for k, c in enumerate((xs, ys, zs)))
        if not (sx.any() and sy.any() and sz.any()):
            continue
        gz, gy, gx = torch.meshgrid(zs[sz], ys[sy], xs[sx], indexing="ij")
        pts = torch.stack([gx, gy, gz], -1).reshape(-1, 3)
        o = occ[sz][:, sy][:, :, sx].reshape(-1)
        inner = points_in_boxes(pts, b[m : m + 1])[0]
        outer = points_in_boxes(pts, b[m : m + 1], grow=shell)[0] & ~inner
        mean_in = (o * inner).sum() / inner.sum().clamp(min=1)
        mean_out = (o * outer).sum() / outer.sum() if outer.any() else 0.0
        out[m] = mean_in - mean_out
    return out.to(occupancy)


def moved_voxels(carved: torch.Tensor, known: torch.Tensor, *, gap: int = 1, dilation: int = 1) -> torch.Tensor:
    """Weak labels of moving matter from occupancy changes: a voxel occupied at frame ``t`` whose whole
    neighbourhood (``dilation`` voxels, a cube) is carved free at ``t + gap`` -- or at ``t - gap`` -- held
    something that moved away (a surface seen a voxel off, or half in a voxel, is near occupied space in the
    other frame and does not count).

    Args:
        carved: ``(T, 1, Z, Y, X)``, 1 where a depth point fell; known: ``(T, 1, Z, Y, X)`` bool, carved
            occupied or free (:func:`~unrender.methods.dynamic.detect.frame_memories`).

    Returns:
        ``(T, 1, Z, Y, X)`` bool.

    Example:
        >>> c = torch.zeros(3, 1, 1, 1, 5); c[0, 0, 0, 0, 1] = 1; c[1, 0, 0, 0, 2] = 1; c[2, 0, 0, 0, 3] = 1
        >>> moved_voxels(c, torch.ones_like(c, dtype=torch.bool), dilation=0)[:, 0, 0, 0].int().tolist()
        [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]
    """
    check_args(("carved", carved, ("T", 1, "Z", "Y", "X")))
    occ = carved > 0
    free = reliably_seen(known & ~occ, dilation)  # free all around: every voxel within reach carved free
    out = torch.zeros_like(occ)
    for t in range(len(occ)):
        for other in neighbour_frames(t, len(occ), gap):
            out[t] |= occ[t] & free[other]
    return out


def neighbour_frames(t: int, T: int, gap: int) -> list[int]:
    """The frames ``gap`` after and before frame ``t`` of ``T`` that exist."""
    return [o for o in (t + gap, t - gap) if 0 <= o < T]


def changed_features(
    features: torch.Tensor, carved: torch.Tensor, known: torch.Tensor, *, gap: int = 1, threshold: float
) -> torch.Tensor:
    """Weak labels of moving matter from feature changes: a voxel occupied at frame ``t`` whose feature differs
    (Euclidean) by more than ``threshold`` from the same voxel's feature at ``t + gap`` or ``t - gap``, where
    that frame observed the voxel (carved occupied or free).

    Args:
        features: ``(T, F, Z, Y, X)`` per-frame features in the anchor grid; carved: ``(T, 1, Z, Y, X)``;
            known: ``(T, 1, Z, Y, X)`` bool (as :func:`moved_voxels`).

    Returns:
        ``(T, 1, Z, Y, X)`` bool.

    Example:
        >>> c = torch.zeros(3, 1, 1, 1, 3); c[:, 0, 0, 0, 0] = 1; c[1, 0, 0, 0, 2] = 1  # a wall, and a blip
        >>> f = torch.cat([c, 1 - c], 1)  # matter and air point different ways
        >>> changed_features(f, c, torch.ones_like(c, dtype=torch.bool), threshold=1.0)[:, 0, 0, 0].int().tolist()
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    """
    check_args(("features", features, ("T", "F", "Z", "Y", "X")), ("carved", carved, ("T", 1, "Z", "Y", "X")))
    occ = carved > 0
    out = torch.zeros_like(occ)
    for t in range(len(occ)):
        for other in neighbour_frames(t, len(occ), gap):
            far = (features[t] - features[other]).norm(dim=0, keepdim=True) > threshold
            out[t] |= occ[t] & known[other] & far
    return out


def voxel_iou(pred: torch.Tensor, truth: torch.Tensor, counted: torch.Tensor) -> float:
    """Intersection over union of two bool volumes over the ``counted`` voxels (NaN when neither marks one)."""
    p, g = pred & counted, truth & counted
    union = int((p | g).sum())
    return int((p & g).sum()) / union if union else float("nan")
