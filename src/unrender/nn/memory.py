"""The voxel memory: posed RGB-D views (and image features) unprojected into a voxel grid and fused.

Shared by the methods that map (``mapping``, ``dynamic``); see :func:`build_memory`.
"""

from __future__ import annotations

import torch

from ..geometry import VoxelGrid, carve_depth, check_args, unproject_to_grid

__all__ = ["build_memory"]


def build_memory(
    grid: VoxelGrid, rgb: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, cam_from_mem: torch.Tensor,
    feats: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Fuse ``N`` RGB-D views into the voxel memory.

    Per view: its occupancy (voxels its depth points fall in) and ``occupancy * rgb`` (and
    ``occupancy * features``); views are fused by a masked mean over the views that see a voxel.
    Appended: the fraction of views seeing each voxel, and occupied / free space carved from all
    input depths.

    Args:
        rgb: ``(B, N, 3, H, W)``; depth: ``(B, N, 1, H, W)``; K: ``(B, N, 3, 3)``;
        cam_from_mem: ``(B, N, 4, 4)``; feats: ``(B, N, F, H, W)`` or ``None``.

    Returns:
        ``(B, 7 + F, Z, Y, X)``.
    """
    check_args(
        ("rgb", rgb, ("B", "N", 3, "H", "W")), ("depth", depth, ("B", "N", 1, "H", "W")),
        ("K", K, ("B", "N", 3, 3)), ("cam_from_mem", cam_from_mem, ("B", "N", 4, 4)),
    )  # fmt: skip
    B, N, _, H, W = rgb.shape
    if N == 0:
        raise ValueError("build_memory: need at least one input view")
    one = lambda x: x.reshape(B * N, 1, *x.shape[2:])  # each view on its own
    occ_v, _ = carve_depth(grid, one(depth).to(K.dtype), one(K), one(cam_from_mem))  # (BN, 1, Z, Y, X)
    img = rgb if feats is None else torch.cat([rgb, feats], 2)
    col_v, seen_v = unproject_to_grid(grid, one(img), one(K), one(cam_from_mem))  # (BN, C, ...), (BN, 1, ...)
    per_view = torch.cat([occ_v, occ_v * col_v], 1).reshape(B, N, -1, *grid.shape)
    seen = seen_v.reshape(B, N, 1, *grid.shape)
    count = seen.sum(1)
    fused = (per_view * seen).sum(1) / count.clamp(min=1)
    occ_all, free_all = carve_depth(grid, depth.to(K.dtype), K, cam_from_mem)
    return torch.cat([fused, count / N, occ_all, free_all], 1)
