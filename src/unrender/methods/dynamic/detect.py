"""Moving objects as 3D boxes, without learning: fuse each frame into the anchor grid, subtract the
temporal background, cut what is left into connected components and put boxes around them; and the
baselines they are measured against (random boxes, centre-surround boxes slid over the grid).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...geometry import VoxelGrid, boxes_from_components, check_shape, connected_components, invert_rigid, nms_boxes
from ...metrics.detection import average_precision
from ...nn.memory import build_memory
from ...world.scene import class_id
from .background import centre_surround, moving_voxels, temporal_background
from .config import SubtractionConfig

__all__ = [
    "frame_memories",
    "moving_mask",
    "subtract_background",
    "random_proposals",
    "centre_surround_proposals",
    "moving_ap",
    "moving_boxes_in_grid",
    "amodal_boxes",
    "CAR_SIZE",
]

CAR_SIZE = (4.5, 1.6, 1.9)
"""Length, height and width of the car-sized boxes the baselines propose, metres."""


def frame_memories(item: dict[str, torch.Tensor], grid: VoxelGrid) -> dict[str, torch.Tensor]:
    """Each frame's views fused into the anchor grid (the known ego-motion is in ``cam_from_grid``).

    Args:
        item: a :class:`~unrender.methods.dynamic.data.DynamicDataset` item (``rgb``, ``depth``, ``K``,
            ``cam_from_grid``, each ``(T, V, ...)``); one that carries its frames under ``"frames"`` (what
            this function returned for it, as :func:`~unrender.methods.dynamic.evaluate.evaluate_dynamic`
            stores them to fuse each sequence once) gets those back.

    Returns:
        ``memory (T, 4, Z, Y, X)``: occupancy and occupancy x colour, averaged over the views that see a voxel,
        with ``seen (T, 1, Z, Y, X)`` bool; ``carved (T, 1, Z, Y, X)``: 1 where a depth point falls, 0 where
        a ray passed through (free space), with ``known (T, 1, Z, Y, X)`` bool (one of the two); ``cameras
        (T, 3)``: the rig's centre in the grid at each frame; ``input (T, 7, Z, Y, X)``: the memory's first 7
        channels, what the feature net reads.
    """
    if "frames" in item:
        return item["frames"]
    m = build_memory(grid, item["rgb"], item["depth"], item["K"], item["cam_from_grid"])  # the frames as a batch
    cameras = invert_rigid(item["cam_from_grid"][:, 0].double())[:, :3, 3].to(m.dtype)  # the rig's centre
    return {"memory": m[:, :4], "seen": m[:, 4:5] > 0, "carved": m[:, 5:6], "known": (m[:, 5:6] + m[:, 6:7]) > 0,
            "cameras": cameras, "input": m[:, :7]}  # fmt: skip


def moving_mask(frames: dict[str, torch.Tensor], grid: VoxelGrid, cfg: SubtractionConfig) -> torch.Tensor:
    """The voxels of each frame that differ from the sequence's background (``cfg.signal`` against its median
    or mean over time), above the road: ``(T, 1, Z, Y, X)`` bool.

    Args:
        frames: :func:`frame_memories` of a sequence; with the signal ``features``, also ``features (T, F, Z,
            Y, X)``, of which only voxels with a surface at the frame can move (the features of the air around
            a moving car change too).
    """
    if cfg.signal == "carved":
        volumes, seen = frames["carved"], frames["known"]
    elif cfg.signal == "memory":
        volumes, seen = frames["memory"], frames["seen"]
    else:
        if "features" not in frames:
            raise ValueError("moving_mask: signal 'features' needs frames['features'], the feature net's "
                             "(T, F, Z, Y, X) volumes of the frames")  # fmt: skip
        volumes, seen = frames["features"], frames["seen"]
    bg = temporal_background(volumes, seen, statistic=cfg.statistic)["background"]
    moving = moving_voxels(volumes, seen, bg, threshold=cfg.threshold, margin=cfg.margin)
    if cfg.signal == "features":
        moving &= frames["carved"] > 0
    _, ys, _ = grid.axis_centers(dtype=volumes.dtype, device=volumes.device)
    return moving & (ys <= -cfg.above_road)[:, None]  # (Y, 1) against (..., Y, X); y is down


def subtract_background(
    frames: dict[str, torch.Tensor], grid: VoxelGrid, cfg: SubtractionConfig
) -> dict[str, list[torch.Tensor] | torch.Tensor]:
    """Boxes around what moves (:func:`moving_mask`), per frame, with two scores each.

    Args:
        frames: :func:`frame_memories` of a sequence (``cameras`` only with ``cfg.amodal``; ``features`` with
            the signal ``features``).

    Returns:
        ``boxes``: per frame ``(n, 7)`` in the grid frame (grown to whole objects with ``cfg.amodal``:
        :func:`amodal_boxes`); ``size``: their number of moving voxels (the plain
        score); ``contrast``: their centre-surround contrast on the frame's occupancy (the rescoring);
        ``moving``: ``(T, 1, Z, Y, X)`` bool, the voxels found moving.
    """
    moving = moving_mask(frames, grid, cfg)
    out: dict[str, list[torch.Tensor]] = {"boxes": [], "size": [], "contrast": []}
    labels = connected_components(moving[:, 0])
    for t in range(len(moving)):
        lab = labels[t]
        counts = torch.bincount(lab.reshape(-1), minlength=int(lab.max()) + 1)[1:]
        boxes = boxes_from_components(lab, grid)
        keep = counts >= cfg.min_voxels
        boxes, counts = boxes[keep].float(), counts[keep].float()
        if cfg.amodal:
            boxes = amodal_boxes(boxes, frames["cameras"][t])
        out["boxes"].append(boxes)
        out["size"].append(counts)
        out["contrast"].append(centre_surround(frames["carved"][t, 0], grid, boxes, shell=cfg.shell))
    return {**out, "moving": moving}


def _on_road_boxes(xz: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Car-sized boxes standing on the road (``y = 0``) at ground positions ``xz (n, 2)`` and yaws ``(n,)``."""
    L, H, W = CAR_SIZE
    n = len(xz)
    return torch.stack([xz[:, 0], torch.full((n,), -H / 2), xz[:, 1], torch.full((n,), L), torch.full((n,), H),
                        torch.full((n,), W), yaw], 1)  # fmt: skip


def random_proposals(grid: VoxelGrid, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` car-sized boxes standing on the road (``y = 0``) at uniform positions and yaws in the grid, with
    uniform random scores: the floor any proposal method must beat."""
    lo, hi = torch.tensor(grid.bounds_min), torch.tensor(grid.bounds_max)
    u = torch.rand(n, 2, generator=generator)
    xz = lo[[0, 2]] + u * (hi - lo)[[0, 2]]
    yaw = (torch.rand(n, generator=generator) - 0.5) * torch.pi
    return _on_road_boxes(xz, yaw), torch.rand(n, generator=generator)


def _box_sums(occ: torch.Tensor, y0: int, y1: int, kx: int, kz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of ``occ (1, 1, Z, Y, X)`` and voxel counts over boxes of rows ``y0:y1`` and ``kz x kx`` voxels, one
    box at every ``(z, x)`` (an even size reaches half a voxel further towards -x / -z), ``(Z, X)`` each."""
    pad = (kx // 2, (kx - 1) // 2, 0, 0, kz // 2, (kz - 1) // 2)
    both = torch.cat([occ, torch.ones_like(occ)], 1)[:, :, :, y0:y1]
    sums = F.avg_pool3d(F.pad(both, pad), (kz, y1 - y0, kx), stride=1, divisor_override=1)[0, :, :, 0]
    return sums[0], sums[1]


def centre_surround_proposals(
    occupancy: torch.Tensor, grid: VoxelGrid, *, shell: float = 1.0, keep: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Car-sized boxes standing on the road at every voxel column, along x and along z, scored by their
    centre-surround contrast on ``occupancy (Z, Y, X)`` alone (no background): the ``keep`` best after
    non-maximum suppression. Box filters over the volume (sizes rounded to whole voxels, so the boxes are
    voxel-aligned) make this one pass instead of a test of every voxel against every box.
    """
    check_shape(occupancy, "occupancy", grid.shape, max_batch=0)
    vx, vy, vz = grid.voxel_size
    L, H, W = CAR_SIZE
    _, ys, _ = grid.axis_centers(dtype=torch.float64)
    rows = (ys < 0) & (ys > -H)  # voxel layers of a car standing on the road
    if not rows.any():
        raise ValueError(f"centre_surround_proposals: the grid's y range {grid.bounds_min[1]}..{grid.bounds_max[1]} "
                         "holds no layer above the road")  # fmt: skip
    y0, y1 = int(rows.nonzero()[0]), int(rows.nonzero()[-1]) + 1
    occ = occupancy.double()[None, None]
    xs, _, zs = grid.axis_centers(dtype=torch.float64)
    sy = (y1 - y0) * vy
    cy = float(grid.bounds_min[1] + (y0 + y1) / 2 * vy)
    boxes, scores = [], []
    for yaw, (lx, lz) in ((0.0, (L, W)), (torch.pi / 2, (W, L))):
        kx, kz = max(1, round(lx / vx)), max(1, round(lz / vz))
        gx, gz, gy = round(shell / vx), round(shell / vz), round(shell / vy)
        lo_y, hi_y = max(0, y0 - gy), min(occ.shape[3], y1 + gy)
        s_in, n_in = _box_sums(occ, y0, y1, kx, kz)
        s_all, n_all = _box_sums(occ, lo_y, hi_y, kx + 2 * gx, kz + 2 * gz)
        s_out, n_out = s_all - s_in, n_all - n_in
        score = s_in / n_in.clamp(min=1) - torch.where(n_out > 0, s_out / n_out.clamp(min=1), 0)
        # the box's centre: an even size puts it on a voxel face, half a voxel towards -x / -z of the column
        cx = xs - (0.5 * vx if kx % 2 == 0 else 0.0)
        cz = zs - (0.5 * vz if kz % 2 == 0 else 0.0)
        gz_, gx_ = torch.meshgrid(cz, cx, indexing="ij")  # (Z, X)
        size = torch.tensor([kx * vx, sy, kz * vz] if not yaw else [kz * vz, sy, kx * vx], dtype=torch.float64)
        # (turned a quarter, the box's own x, its length, runs along z)
        bx = torch.cat([torch.stack([gx_, torch.full_like(gx_, cy), gz_], -1), size.expand(*gx_.shape, 3),
                        torch.full_like(gx_, yaw)[..., None]], -1)  # fmt: skip
        boxes.append(bx.reshape(-1, 7))
        scores.append(score.reshape(-1))
    boxes_all, scores_all = torch.cat(boxes).float(), torch.cat(scores).float()
    top = scores_all.topk(min(len(scores_all), 10 * keep)).indices  # NMS is quadratic: the best first
    boxes_all, scores_all = boxes_all[top], scores_all[top]
    idx = nms_boxes(boxes_all, scores_all, 0.1)[:keep]
    return boxes_all[idx], scores_all[idx]


def moving_ap(
    pred_boxes: list[torch.Tensor],
    pred_scores: list[torch.Tensor],
    gt_boxes: list[torch.Tensor],
    *,
    iou_type: str = "3d",
) -> dict[str, float]:
    """Class-agnostic AP@0.25 and AP@0.5 of boxes against the moving objects, over every frame given."""
    ap = average_precision(pred_boxes, pred_scores, gt_boxes, iou_thresholds=(0.25, 0.5), iou_type=iou_type)
    return {f"AP{iou_type}@{t}": v for t, v in ap.items()}


def moving_boxes_in_grid(
    item: dict[str, torch.Tensor], grid: VoxelGrid, min_pixels: int = 1, classes: Sequence[str] | None = None
) -> list[torch.Tensor]:
    """Per frame, the ground-truth boxes of the objects that move, whose centre lies in the grid and which at
    least ``min_pixels`` pixels of the frame's images show (an object behind the rig or hidden behind
    another is in the grid but no method can find it: over 8 mixed sequences at 48 x 72, a quarter of the
    moving objects' frames in the grid showed no pixel); only those of ``classes`` (names) when given."""
    base = item["box_valid"] & item["box_moving"]
    if classes is not None:
        base &= torch.isin(item["box_classes"], torch.tensor([class_id(n) for n in classes]))
    out = []
    for t in range(item["boxes"].shape[0]):
        b = item["boxes"][t]
        out.append(b[base & grid.contains(b[:, :3]) & (item["box_pixels"][t] >= min_pixels)])
    return out


def amodal_boxes(boxes: torch.Tensor, camera: torch.Tensor, *, size: tuple[float, float, float] = CAR_SIZE,
                 min_extent: float = 1.2) -> torch.Tensor:  # fmt: skip
    """Boxes around the visible voxels of objects grown to whole objects: every box stands on the road (its
    bottom at ``y = 0``), and a box whose footprint reaches ``min_extent`` metres along one axis (a vehicle's
    side or back, not a pedestrian) grows to the ``size`` (length, height, width) prior, away from the camera:
    the surface a camera sees is the near side of the object.

    Args:
        boxes: ``(n, 7)`` in the grid frame (y down, the road at ``y = 0``); camera: ``(3,)`` its centre.

    Returns:
        ``(n, 7)``.
    """
    out = boxes.clone()
    if len(boxes) == 0:
        return out
    L, H, W = size
    top = boxes[:, 1] - boxes[:, 4] / 2
    out[:, 4] = torch.maximum(-top, torch.zeros_like(top))  # from the road up to the top of what was seen
    out[:, 1] = top / 2
    c, s_ = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
    ax = torch.stack([c, torch.zeros_like(c), -s_], -1)  # the box's own x and z axes in the grid
    az = torch.stack([s_, torch.zeros_like(c), c], -1)
    big = torch.maximum(boxes[:, 3], boxes[:, 5]) >= min_extent
    side = boxes[:, 3] >= (L + W) / 2  # a visible extent nearer a car's length than its width: its side
    want_x = torch.where(side, torch.full_like(c, L), torch.full_like(c, W))
    want_z = torch.where(side, torch.full_like(c, W), torch.full_like(c, L))
    to_cam = camera.to(boxes) - boxes[:, :3]
    for k, axis, want in ((3, ax, want_x), (5, az, want_z)):
        grow = torch.where(big, (want - boxes[:, k]).clamp(min=0), torch.zeros_like(c))
        away = -torch.sign((to_cam * axis).sum(-1))  # grow on the side facing away from the camera
        out[:, :3] += (grow / 2 * away)[:, None] * axis
        out[:, k] = boxes[:, k] + grow
    return out
