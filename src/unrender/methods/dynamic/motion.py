"""Synthetic rigid motion of a voxel memory, the self-supervision of the parameter-free 3D flow: move a
scene's memory by a known rotation and translation, and train the features so that the soft-argmax of their
correlation (:func:`unrender.nn.flow.soft_argmax_flow`) lands where each voxel went."""

from __future__ import annotations

import math

import torch

from ...geometry import VoxelGrid, make_rigid, transform_points, warp_volume, yaw_matrix
from ...nn.flow import soft_argmax_flow

__all__ = ["random_rigid_motion", "rigid_flow", "move_volume", "flow_loss"]


def random_rigid_motion(
    batch: int, *, max_yaw: float, max_shift: tuple[float, float, float], generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(batch, 4, 4)`` rigid motions: a turn about the vertical (gravity) axis up to ``max_yaw`` radians and a
    shift up to ``max_shift`` metres along x, y, z (uniform)."""
    if not 0 <= max_yaw <= math.pi:
        raise ValueError(f"max_yaw: expected radians in [0, pi], got {max_yaw}")
    u = torch.rand(batch, 4, generator=generator, dtype=torch.float64) * 2 - 1
    yaw = u[:, 0] * max_yaw
    shift = u[:, 1:] * torch.tensor(max_shift, dtype=torch.float64)
    return make_rigid(yaw_matrix(yaw), shift)


def rigid_flow(grid: VoxelGrid, moved_from_orig: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each voxel centre of ``grid`` goes under rigid motions ``(B, 4, 4)``: the displacement
    ``(B, 3, Z, Y, X)`` in voxels ``(dx, dy, dz)`` and ``inside (B, 1, Z, Y, X)`` bool (it lands in the grid)."""
    pts = grid.centers(dtype=torch.float64, device=moved_from_orig.device)  # (Z, Y, X, 3)
    B = moved_from_orig.shape[0]
    new = transform_points(moved_from_orig.double(), pts.reshape(1, -1, 3).expand(B, -1, -1))  # (B, N, 3)
    vs = torch.tensor(grid.voxel_size, dtype=torch.float64, device=moved_from_orig.device)
    flow = ((new - pts.reshape(1, -1, 3)) / vs).reshape(B, *grid.shape, 3).permute(0, 4, 1, 2, 3)
    return flow, grid.contains(new).reshape(B, 1, *grid.shape)


def move_volume(volume: torch.Tensor, grid: VoxelGrid, moved_from_orig: torch.Tensor) -> dict[str, torch.Tensor]:
    """A volume moved rigidly, and where each of its voxels went.

    Args:
        volume: ``(B, C, Z, Y, X)`` on ``grid``; moved_from_orig: ``(B, 4, 4)``.

    Returns:
        ``moved (B, C, Z, Y, X)`` (trilinear resampling), ``flow (B, 3, Z, Y, X)`` the displacement of each
        voxel of ``volume`` in voxels ``(dx, dy, dz)``, and ``inside (B, 1, Z, Y, X)`` bool: its new place lies
        in the grid.
    """
    moved = warp_volume(volume, grid, moved_from_orig.to(volume.dtype))
    flow, inside = rigid_flow(grid, moved_from_orig)
    return {"moved": moved, "flow": flow.to(volume.dtype), "inside": inside}


def flow_loss(
    feat0: torch.Tensor,
    feat1: torch.Tensor,
    flow: torch.Tensor,
    valid: torch.Tensor,
    *,
    radius: int,
    samples: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """End-point error of the soft-argmax flow on a random subset of the voxels where the true flow is known
    and within reach.

    Args:
        feat0, feat1: ``(B, C, Z, Y, X)`` features before and after the motion.
        flow: ``(B, 3, Z, Y, X)`` true displacement in voxels; valid: ``(B, 1, Z, Y, X)`` bool, the voxels that
            count (inside the grid after the motion, occupied, ...).
        radius: correlation radius; voxels whose true displacement exceeds it on some axis do not count.
        samples: voxels drawn per batch element (with replacement among the valid ones).

    Returns:
        ``loss`` (mean end-point error in voxels) and ``count`` (voxels used).
    """
    B = feat0.shape[0]
    ok = valid[:, 0] & (flow.abs() <= radius).all(1)
    losses, used = [], 0
    for b in range(B):
        cand = ok[b].reshape(-1).nonzero()[:, 0]
        if len(cand) == 0:
            continue
        pick = cand[torch.randint(len(cand), (samples,), generator=generator, device=cand.device)]
        pred = soft_argmax_flow(feat0[b : b + 1], feat1[b : b + 1], radius, index=pick[None], temperature=temperature)
        true = flow[b].reshape(3, -1)[:, pick]
        losses.append((pred[0] - true).norm(dim=0).mean())
        used += samples
    zero = feat0.sum() * 0  # keeps the graph when nothing counts
    loss = torch.stack(losses).mean() if losses else zero
    return {"loss": loss, "count": torch.tensor(float(used))}
