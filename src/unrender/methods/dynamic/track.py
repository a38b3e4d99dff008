"""Render-and-compare tracking: cut an object tensor out of a frame's memory by its box, place it into the
background at a hypothesised pose (differentiable trilinear resampling with a 4x4 transform), render the
composed scene into the cameras and keep the pose whose render best matches what they saw.

Volumes here hold ``(alpha, alpha * r, alpha * g, alpha * b)`` (the memory's occupancy and occupancy x
colour): premultiplied colour, so that resampling and compositing mix colours by their coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...geometry import VoxelGrid, box_pose, invert_rigid, sample_frustum, warp_volume
from ...render import alpha_composite
from .config import TrackConfig

__all__ = [
    "object_grid",
    "crop_object",
    "place_object",
    "render_volume",
    "pose_hypotheses",
    "render_error",
    "render_planes",
    "follow",
    "track",
    "occupancy_score",
    "track_occupancy",
]


def object_grid(box: torch.Tensor, voxel: float, margin: float) -> VoxelGrid:
    """A grid in the box's own frame, centred on it, ``margin`` metres wider than the box on every side, with
    cubic voxels of ``voxel`` metres (sizes rounded up to whole voxels)."""
    half = [math.ceil((float(s) / 2 + margin) / voxel) * voxel for s in box[3:6]]
    res = tuple(max(1, round(2 * h / voxel)) for h in half)
    return VoxelGrid(tuple(-h for h in half), tuple(half), res)


def crop_object(
    volume: torch.Tensor, grid: VoxelGrid, box: torch.Tensor, *, margin: float = 0.5, softness: float = 0.25
) -> tuple[torch.Tensor, VoxelGrid]:
    """The object tensor: ``volume`` resampled on :func:`object_grid` around ``box`` and faded out beyond the
    box (a soft crop: full inside the box, falling off over ``softness`` metres past it, so the object's
    border keeps what the box missed while most of the background is masked out).

    Args:
        volume: ``(C, Z, Y, X)`` on ``grid``; box: ``(7,)`` in the grid frame.

    Returns:
        ``(C, z, y, x)`` on the returned object grid (its frame: the box's).
    """
    og = object_grid(box, min(grid.voxel_size), margin)
    obj = warp_volume(volume[None], grid, invert_rigid(box_pose(box.double())).to(volume.dtype), dst_grid=og)[0]
    pts = og.centers(dtype=volume.dtype, device=volume.device)
    outside = (pts.abs() - box[3:6].to(volume.dtype) / 2).clamp(min=0).norm(dim=-1)  # metres beyond the box
    fade = torch.exp(-((outside / softness) ** 2)) if softness > 0 else (outside == 0).to(volume.dtype)
    return obj * fade, og


def place_object(
    background: torch.Tensor, grid: VoxelGrid, obj: torch.Tensor, obj_grid: VoxelGrid, grid_from_obj: torch.Tensor
) -> torch.Tensor:
    """Composite an object tensor over the background at a pose: ``obj' + (1 - alpha') background`` with
    ``obj'`` the object resampled into the grid (trilinear; differentiable in the pose and in both volumes).

    Args:
        background: ``(..., C, Z, Y, X)`` on ``grid``; obj: ``(C, z, y, x)`` on ``obj_grid``;
        grid_from_obj: ``(..., 4, 4)``, one composition per pose.

    Returns:
        ``(..., C, Z, Y, X)``.
    """
    moved = warp_volume(obj, obj_grid, grid_from_obj.to(obj.dtype), dst_grid=grid)
    return moved + (1 - moved[..., :1, :, :, :].clamp(0, 1)) * background


def render_volume(
    volume: torch.Tensor, grid: VoxelGrid, K: torch.Tensor, cam_from_grid: torch.Tensor, H: int, W: int,
    depths: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Alpha-composite a premultiplied ``(alpha, colour)`` volume into cameras, plane by plane.

    Args:
        volume: ``(..., 4, Z, Y, X)``; K: ``(..., 3, 3)``; cam_from_grid: ``(..., 4, 4)``; depths: ``(D,)``.

    Returns:
        ``rgb (..., 3, H, W)`` and ``alpha (..., 1, H, W)`` (coverage; where it is low the render says little).
    """
    fr = sample_frustum(volume, grid, K, cam_from_grid, H, W, depths)  # (..., 4, D, H, W)
    a = fr[..., :1, :, :, :].clamp(0, 1)
    colour = (fr[..., 1:, :, :, :] / a.clamp(min=1e-3)).clamp(0, 1)
    return alpha_composite(a, colour)


def pose_hypotheses(
    box: torch.Tensor, velocity: torch.Tensor, *, step: float = 0.5, reach: int = 2, yaw_step: float = 0.0
) -> torch.Tensor:
    """Boxes ``(n, 7)`` where an object may be next: zero velocity, constant velocity, and a grid of
    ``(2 reach + 1)^2`` shifts of ``step`` metres in the ground plane (x, z) around the constant-velocity one
    (and turns of ``+-yaw_step`` when it is not 0). Row 0 is the constant-velocity box, row 1 zero velocity.

    Args:
        box: ``(7,)`` the object's box in the last frame; velocity: ``(3,)`` metres per frame.
    """
    cv = box.clone()
    cv[:3] = box[:3] + velocity
    offs = torch.arange(-reach, reach + 1, dtype=box.dtype) * step
    dx, dz = torch.meshgrid(offs, offs, indexing="ij")
    rows = [cv, box.clone()]
    yaws = (0.0,) if yaw_step == 0 else (0.0, -yaw_step, yaw_step)
    for dyaw in yaws:
        for a, b in zip(dx.reshape(-1).tolist(), dz.reshape(-1).tolist(), strict=True):
            if a == 0 and b == 0 and dyaw == 0:
                continue
            h = cv.clone()
            h[0] += a
            h[2] += b
            h[6] += dyaw
            rows.append(h)
    return torch.stack(rows)


def render_error(
    background: torch.Tensor, grid: VoxelGrid, obj: torch.Tensor, obj_grid: VoxelGrid, box: torch.Tensor,
    images: torch.Tensor, K: torch.Tensor, cam_from_grid: torch.Tensor, depths: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """How badly the object placed at ``box`` over the background explains one frame: the mean absolute
    difference between its render into the frame's cameras and their images ``(V, 3, H, W)`` (scalar)."""
    vol = place_object(background, grid, obj, obj_grid, box_pose(box))
    rgb, _ = render_volume(vol, grid, K, cam_from_grid, images.shape[-2], images.shape[-1], depths)
    return (rgb - images).abs().mean()


def render_planes(cfg: TrackConfig, device: torch.device | str | None = None) -> torch.Tensor:
    """``(D,)`` depths evenly spaced in disparity (more planes near the cameras, where a voxel covers more)."""
    disp = torch.linspace(1 / cfg.near, 1 / cfg.far, cfg.depth_planes, device=device)
    return 1 / disp


def follow(
    first_box: torch.Tensor,
    frames: int,
    score: Callable[[int, torch.Tensor], torch.Tensor],
    cfg: TrackConfig,
    velocity: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The tracking loop: at every next frame ``t``, score each of :func:`pose_hypotheses` (around the
    constant-velocity prediction) by ``score(t, hypotheses (n, 7)) -> (n,)`` (lower is better) and keep the
    best; its motion is the next frame's velocity.

    Returns:
        ``boxes (T, 7)`` (frame 0: ``first_box``), ``errors (T,)`` the kept hypothesis's score (frame 0: nan)
        and ``hypotheses (T, n, 7)``, ``hypothesis_errors (T, n)`` for inspection (frame 0: nan).
    """
    box = first_box.clone()
    velocity = torch.zeros(3, dtype=box.dtype, device=box.device) if velocity is None else velocity.to(box)
    boxes, errors, all_h, all_e = [box], [math.nan], [], []
    for t in range(1, frames):
        hyp = pose_hypotheses(box, velocity, step=cfg.step, reach=cfg.reach, yaw_step=cfg.yaw_step)
        err_t = score(t, hyp).detach().float().cpu()
        best = int(err_t.argmin())
        velocity = hyp[best, :3] - box[:3]
        box = hyp[best]
        boxes.append(box)
        errors.append(float(err_t[best]))
        all_h.append(hyp)
        all_e.append(err_t)
    n = len(all_h[0]) if all_h else 0
    hyps = torch.cat([torch.full((1, n, 7), math.nan, dtype=box.dtype), *(h[None] for h in all_h)])
    hyp_err = torch.cat([torch.full((1, n), math.nan), *(e[None] for e in all_e)])
    return {"boxes": torch.stack(boxes), "errors": torch.tensor(errors), "hypotheses": hyps,
            "hypothesis_errors": hyp_err}  # fmt: skip


def track(
    background: torch.Tensor,
    grid: VoxelGrid,
    obj: torch.Tensor,
    obj_grid: VoxelGrid,
    first_box: torch.Tensor,
    images: torch.Tensor,
    K: torch.Tensor,
    cam_from_grid: torch.Tensor,
    cfg: TrackConfig,
    velocity: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Follow an object through a sequence by render and compare (:func:`follow`): place the object tensor at
    each hypothesis, render the composed scene into that frame's cameras and keep the hypothesis whose render
    differs least from the images (:func:`render_error`).

    Args:
        background: ``(4, Z, Y, X)`` premultiplied ``(alpha, colour)`` on ``grid`` (e.g. the temporal median);
        obj: ``(4, z, y, x)`` on ``obj_grid`` (:func:`crop_object`, background masked out);
        first_box: ``(7,)`` the object's box in frame 0 (grid frame);
        images: ``(T, V, 3, H, W)``; K: ``(T, V, 3, 3)``; cam_from_grid: ``(T, V, 4, 4)``;
        velocity: ``(3,)`` metres per frame at frame 0 (e.g. from the box in the first two frames; default 0).

    Returns:
        :func:`follow`'s, with ``errors`` the kept render's mean absolute error.
    """
    depths = render_planes(cfg, images.device)

    def score(t: int, hyp: torch.Tensor) -> torch.Tensor:  # one composition at a time: one volume in memory
        return torch.stack([render_error(background, grid, obj, obj_grid, h, images[t], K[t], cam_from_grid[t],
                                         depths) for h in hyp])  # fmt: skip

    return follow(first_box, images.shape[0], score, cfg, velocity)


def occupancy_score(
    obj: torch.Tensor, obj_grid: VoxelGrid, foreground: torch.Tensor, free: torch.Tensor, grid: VoxelGrid,
    hyp: torch.Tensor, *, free_weight: float = 1.0, smoothness: float = 0.0,
) -> torch.Tensor:  # fmt: skip
    """How badly the object's occupancy placed at each hypothesis explains one frame's carved evidence:
    ``(-(a . foreground) + free_weight (a . free)) / sum(a) + smoothness |c - c_0|^2`` with ``a`` the object's
    occupancy resampled at the hypothesis, ``foreground`` the voxels the frame saw a surface in where the
    background has none, ``free`` those its rays passed through, and ``c - c_0`` the hypothesis's shift from
    row 0 (the constant-velocity one) in metres.

    Args:
        obj: ``(1, z, y, x)`` occupancy on ``obj_grid``; foreground, free: ``(Z, Y, X)`` bool; hyp: ``(n, 7)``.

    Returns:
        ``(n,)``.
    """
    a = warp_volume(obj[None].expand(len(hyp), *obj.shape).contiguous(), obj_grid, box_pose(hyp).to(obj.dtype),
                    dst_grid=grid)[:, 0]  # fmt: skip
    mass = a[0].sum().clamp(min=1e-6)
    ev = -(a * foreground).sum((1, 2, 3)) + free_weight * (a * free).sum((1, 2, 3))
    return ev / mass + smoothness * ((hyp[:, :3] - hyp[:1, :3]) ** 2).sum(1).to(ev)


def track_occupancy(
    foreground: torch.Tensor,
    free: torch.Tensor,
    grid: VoxelGrid,
    obj: torch.Tensor,
    obj_grid: VoxelGrid,
    first_box: torch.Tensor,
    cfg: TrackConfig,
    velocity: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Follow an object by its occupancy in 3D (:func:`follow` with :func:`occupancy_score`): no rendering.

    Args:
        foreground, free: ``(T, Z, Y, X)`` bool per frame; obj: ``(1, z, y, x)`` the object's occupancy cut
        from its first frame (:func:`crop_object` of the carved occupancy); first_box, velocity: as :func:`track`.
    """

    def score(t: int, hyp: torch.Tensor) -> torch.Tensor:
        return occupancy_score(obj, obj_grid, foreground[t], free[t], grid, hyp, free_weight=cfg.free_weight,
                               smoothness=cfg.smoothness)  # fmt: skip

    return follow(first_box, foreground.shape[0], score, cfg, velocity)
