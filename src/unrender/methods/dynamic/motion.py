"""Synthetic rigid motion of a voxel memory, the self-supervision of the parameter-free 3D flow: move a
scene's memory by a known rotation and translation, and train the features so that the soft-argmax of their
correlation (:func:`unrender.nn.flow.soft_argmax_flow`) lands where each voxel went."""

from __future__ import annotations

import math

import torch

from ...geometry import VoxelGrid, invert_rigid, make_rigid, transform_points, warp_volume, yaw_matrix
from ...nn.flow import Radius, radii, soft_argmax_flow

__all__ = [
    "random_rigid_motion",
    "rigid_flow",
    "move_volume",
    "random_chunks",
    "move_chunk",
    "flow_loss",
]


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


def random_chunks(
    surface: torch.Tensor, grid: VoxelGrid, *, size: tuple[float, float, float], above: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Box-shaped pieces of a scene to move on their own: per batch element, the voxels whose centres lie in an
    axis-aligned box of ``size`` metres ``(x, y, z)`` centred (in x and z) on a random ``surface`` voxel whose
    centre is more than ``above`` metres above the road (``y < -above``), from that height up.

    Returns:
        ``(B, 1, Z, Y, X)`` bool (all False where no surface voxel qualifies) and the boxes' centres ``(B, 3)``
        (float64, metres).
    """
    pts = grid.centers(dtype=torch.float64, device=surface.device)  # (Z, Y, X, 3)
    high = pts[..., 1] < -above
    out = torch.zeros_like(surface, dtype=torch.bool)
    half = torch.tensor(size, dtype=torch.float64, device=surface.device) / 2
    centres = torch.zeros(surface.shape[0], 3, dtype=torch.float64, device=surface.device)
    for b in range(surface.shape[0]):
        cand = (surface[b, 0] & high).reshape(-1).nonzero()[:, 0]
        if len(cand) == 0:
            continue
        c = pts.reshape(-1, 3)[cand[torch.randint(len(cand), (1,), generator=generator, device=cand.device)][0]]
        near = ((pts[..., 0] - c[0]).abs() <= half[0]) & ((pts[..., 2] - c[2]).abs() <= half[2])
        out[b, 0] = near & high & (pts[..., 1] >= -above - size[1])
        centres[b] = c
        centres[b, 1] = -above - size[1] / 2
    return out, centres


def move_chunk(
    memory0: torch.Tensor, memory1: torch.Tensor, grid: VoxelGrid, scene_motion: torch.Tensor, chunk: torch.Tensor,
    chunk_motion: torch.Tensor,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """A piece of a scene moving on its own inside a scene that moves: the memory ``memory1`` of the scene
    moved by ``scene_motion`` with the piece ``chunk`` of ``memory0`` moved by ``chunk_motion`` on top (an
    object driving through a street; the memory channels of :func:`~unrender.nn.build_memory`).

    Where the piece would have been, the memory is seen free (occupancy and colour 0, carved occupied 0,
    carved free where any view looks); where it lands, its own voxels of ``memory0`` (nearest resampling, so
    occupancy stays 0 or 1) replace the scene's.

    Args:
        memory0: ``(B, 7, Z, Y, X)`` before; memory1: ``(B, 7, Z, Y, X)`` after ``scene_motion`` ``(B, 4, 4)``;
        chunk: ``(B, 1, Z, Y, X)`` bool on ``memory0``; chunk_motion: ``(B, 4, 4)`` of the piece, on top of the
            scene's.

    Returns:
        ``moved (B, 7, Z, Y, X)``; ``flow (B, 3, Z, Y, X)`` in voxels: each voxel of ``memory0``'s displacement
        (the piece's voxels by both motions); ``inside`` where it lands in the grid and, for the scene's voxels,
        is not covered by the landed piece.
    """
    total = scene_motion.double() @ chunk_motion.double()
    m = chunk.to(memory0.dtype)
    landed = warp_volume(torch.cat([memory0 * m, m], 1), grid, total.to(memory0.dtype), mode="nearest")
    where = landed[:, -1:] > 0.5
    left = warp_volume(m, grid, scene_motion.to(memory0.dtype), mode="nearest") > 0.5
    seen = memory1[:, 4:5] > 0
    free = torch.cat([torch.zeros_like(memory1[:, :4]), memory1[:, 4:5], torch.zeros_like(seen, dtype=memory1.dtype),
                      seen.to(memory1.dtype)], 1)  # fmt: skip
    moved = torch.where(where, landed[:, :-1], torch.where(left, free, memory1))
    flow_s, inside_s = rigid_flow(grid, scene_motion)
    flow_c, inside_c = rigid_flow(grid, total)
    covered = warp_volume(where.to(memory0.dtype), grid, invert_rigid(scene_motion.double()).to(memory0.dtype),
                          mode="nearest") > 0.5  # fmt: skip
    flow = torch.where(chunk, flow_c, flow_s).to(memory0.dtype)
    inside = torch.where(chunk, inside_c, inside_s & ~covered)
    return {"moved": moved, "flow": flow, "inside": inside}


def flow_loss(
    feat0: torch.Tensor,
    feat1: torch.Tensor,
    flow: torch.Tensor,
    valid: torch.Tensor,
    *,
    radius: Radius,
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
        radius: correlation reach (:data:`~unrender.nn.flow.Radius`); voxels whose true displacement exceeds
            it on some axis do not count.
        samples: voxels drawn per batch element (with replacement among the valid ones).

    Returns:
        ``loss`` (mean end-point error in voxels) and ``count`` (voxels used).
    """
    B = feat0.shape[0]
    reach = torch.tensor(radii(radius), dtype=flow.dtype, device=flow.device)[None, :, None, None, None]
    ok = valid[:, 0] & (flow.abs() <= reach).all(1)
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
