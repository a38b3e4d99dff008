"""Backward (inverse) warping: resample a source image into a target view with the target's depth.

The view-synthesis step of self-supervised depth (Monodepth2, SfMLearner): every target pixel is
lifted with its depth, moved into the source camera and projected; the source image is sampled
there bilinearly. Differentiable in the image, the depth, the pose and the intrinsics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry import check_args, depth_to_points, pixels_to_normalized, project_points, transform_points

__all__ = ["inverse_warp"]


def inverse_warp(
    src: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    src_from_tgt: torch.Tensor,
    *,
    K_src: torch.Tensor | None = None,
    padding_mode: str = "border",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample ``src`` at the projections of the target pixels' 3D points.

    Args:
        src: ``(B, C, H_s, W_s)`` source image.
        depth: ``(B, 1, H, W)`` target z-depth (metres, > 0).
        K: ``(B, 3, 3)`` target intrinsics (also the source's unless ``K_src`` is given).
        src_from_tgt: ``(B, 4, 4)`` maps target-camera points into the source camera.
        K_src: ``(B, 3, 3)`` or ``None``.
        padding_mode: ``grid_sample`` padding outside the source image.

    Returns:
        warped ``(B, C, H, W)`` and ``valid (B, 1, H, W)`` bool: the point is in front of the
        source camera and projects inside its image.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> K = make_intrinsics(4.0, 4.0, 1.5, 1.5)[None]
        >>> img = torch.rand(1, 3, 4, 4)
        >>> out, valid = inverse_warp(img, torch.ones(1, 1, 4, 4), K, torch.eye(4)[None])
        >>> torch.allclose(out, img, atol=1e-6), bool(valid.all())
        (True, True)
    """
    K_src = K if K_src is None else K_src
    check_args(
        ("src", src, ("B", "C", "Hs", "Ws")), ("depth", depth, ("B", 1, "H", "W")), ("K", K, ("B", 3, 3)),
        ("src_from_tgt", src_from_tgt, ("B", 4, 4)), ("K_src", K_src, ("B", 3, 3)),
    )  # fmt: skip
    B, _, H, W = depth.shape
    Hs, Ws = src.shape[-2:]
    pts = depth_to_points(depth, K).reshape(B, H * W, 3)
    uv, _, in_front = project_points(transform_points(src_from_tgt, pts), K_src)
    grid = pixels_to_normalized(uv, Hs, Ws).reshape(B, H, W, 2)
    warped = F.grid_sample(src, grid.to(src.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=False)
    inside = (uv[..., 0] > -0.5) & (uv[..., 0] < Ws - 0.5) & (uv[..., 1] > -0.5) & (uv[..., 1] < Hs - 0.5)
    return warped, (in_front & inside).reshape(B, 1, H, W)
