"""Forward warping of an image with its depth into another camera (z-buffered point splatting)."""

from __future__ import annotations

import torch

from ..geometry import check_args, depth_to_points, invert_rigid, project_points, transform_points

__all__ = ["forward_warp"]


@torch.no_grad()
def forward_warp(
    image: torch.Tensor,
    depth: torch.Tensor,
    K_src: torch.Tensor,
    src_from_world: torch.Tensor,
    K_dst: torch.Tensor,
    dst_from_world: torch.Tensor,
    H: int,
    W: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Splat every source pixel with known depth into the destination view; the nearest wins.

    Each source pixel lands on the destination pixel nearest its projection (no
    splat footprint), so magnified regions get holes.

    Args:
        image: ``(C, H_s, W_s)``; depth: ``(1, H_s, W_s)`` z-depth, 0 = unknown.
        K_src, K_dst: ``(3, 3)``; src_from_world, dst_from_world: ``(4, 4)``.

    Returns:
        warped ``(C, H, W)`` (0 in holes) and a bool hit mask ``(1, H, W)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> K = make_intrinsics(4.0, 4.0, 1.5, 1.5)
        >>> img, hit = forward_warp(torch.rand(3, 4, 4), torch.ones(1, 4, 4), K, torch.eye(4), K, torch.eye(4), 4, 4)
        >>> bool(hit.all())
        True
    """
    check_args(("K_src", K_src, (3, 3)), ("K_dst", K_dst, (3, 3)))
    check_args(("src_from_world", src_from_world, (4, 4)), ("dst_from_world", dst_from_world, (4, 4)))
    C = image.shape[0]
    pts = depth_to_points(depth, K_src).reshape(-1, 3)
    valid = depth.reshape(-1) > 0
    dst = transform_points(dst_from_world @ invert_rigid(src_from_world), pts)
    uv, z, ok = project_points(dst, K_dst)
    ij = torch.floor(uv + 0.5).long()
    ok &= valid & (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
    flat = ij[:, 1] * W + ij[:, 0]
    zbuf = torch.full((H * W,), float("inf"), dtype=z.dtype, device=z.device)
    zbuf.scatter_reduce_(0, flat[ok], z[ok], reduce="amin")
    winner = ok & (z <= zbuf[flat.clamp(0, H * W - 1)])
    out = torch.zeros(C, H * W, dtype=image.dtype, device=image.device)
    out[:, flat[winner]] = image.reshape(C, -1)[:, winner]
    hit = torch.isfinite(zbuf)
    return out.reshape(C, H, W), hit.reshape(1, H, W)
