"""Render-and-compare tracking: cut an object tensor out of a frame's memory by its box, place it into the
background at a hypothesised pose (differentiable trilinear resampling with a 4x4 transform), render the
composed scene into the cameras and keep the pose whose render best matches what they saw.

Volumes here hold ``(alpha, alpha * r, alpha * g, alpha * b)`` (the memory's occupancy and occupancy x
colour): premultiplied colour, so that resampling and compositing mix colours by their coverage.
"""

from __future__ import annotations

import math

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
    "track",
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
    """Follow an object through a sequence by render and compare: at every next frame, place the object tensor
    at each of :func:`pose_hypotheses` (around its constant-velocity prediction), render the composed scene
    into that frame's cameras and keep the hypothesis whose render differs least from the images.

    Args:
        background: ``(4, Z, Y, X)`` premultiplied ``(alpha, colour)`` on ``grid`` (e.g. the temporal median);
        obj: ``(4, z, y, x)`` on ``obj_grid`` (:func:`crop_object`, background masked out);
        first_box: ``(7,)`` the object's box in frame 0 (grid frame);
        images: ``(T, V, 3, H, W)``; K: ``(T, V, 3, 3)``; cam_from_grid: ``(T, V, 4, 4)``;
        velocity: ``(3,)`` metres per frame at frame 0 (e.g. from the box in the first two frames; default 0).

    Returns:
        ``boxes (T, 7)`` (frame 0: ``first_box``), ``errors (T,)`` the chosen render's mean absolute error
        (frame 0: nan) and ``hypotheses (T, n, 7)``, ``hypothesis_errors (T, n)`` for inspection (frame 0: nan).
    """
    T = images.shape[0]
    depths = render_planes(cfg, images.device)
    box = first_box.clone()
    velocity = torch.zeros(3, dtype=box.dtype, device=box.device) if velocity is None else velocity.to(box)
    boxes, errors, all_h, all_e = [box], [math.nan], [], []
    for t in range(1, T):
        hyp = pose_hypotheses(box, velocity, step=cfg.step, reach=cfg.reach, yaw_step=cfg.yaw_step)
        # one composition at a time bounds the memory to one volume and one set of renders
        err_t = torch.stack([render_error(background, grid, obj, obj_grid, h, images[t], K[t], cam_from_grid[t], depths)
                             for h in hyp])  # fmt: skip
        best = int(err_t.argmin())
        velocity = hyp[best, :3] - box[:3]
        box = hyp[best]
        boxes.append(box)
        errors.append(float(err_t[best]))
        all_h.append(hyp)
        all_e.append(err_t)
    n = len(all_h[0]) if all_h else 0
    hyps = torch.cat([torch.full((1, n, 7), math.nan, dtype=box.dtype), *(h[None] for h in all_h)])
    hyp_err = torch.cat([torch.full((1, n), math.nan), *(e[None].detach() for e in all_e)])
    return {"boxes": torch.stack(boxes), "errors": torch.tensor(errors), "hypotheses": hyps,
            "hypothesis_errors": hyp_err}  # fmt: skip
