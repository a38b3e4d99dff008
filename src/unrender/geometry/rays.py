"""Per-pixel camera rays and the Plücker ray embedding ``(d, o x d)``."""

from __future__ import annotations

import torch

from .camera import pixel_centers, undistort_points, unproject_points
from .checks import check_args
from .poses import invert_rigid, validate_rigid

__all__ = ["camera_rays", "plucker", "plucker_map"]


def camera_rays(
    K: torch.Tensor, cam_from_world: torch.Tensor, H: int, W: int, *, distortion: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-frame origin and unit direction of the ray through every pixel centre.

    Args:
        K: ``(..., 3, 3)``.
        cam_from_world: ``(..., 4, 4)``.
        H, W: image size.
        distortion: ``(5,)`` OpenCV ``(k1, k2, p1, p2, k3)`` of a lens that imaged the pixels (the rays are
            undistorted with :func:`undistort_points`); None: a pinhole.

    Returns:
        origins ``(..., H, W, 3)`` (the camera centre) and unit directions ``(..., H, W, 3)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> o, d = camera_rays(make_intrinsics(1.0, 1.0, 0.0, 0.0), torch.eye(4), 1, 1)
        >>> d
        tensor([[[0., 0., 1.]]])
    """
    batch = check_args(("K", K, (3, 3)), ("cam_from_world", cam_from_world, (4, 4)))
    validate_rigid(cam_from_world, "cam_from_world")
    uv = pixel_centers(H, W, dtype=K.dtype, device=K.device).reshape(H * W, 2)
    ones = torch.ones(H * W, dtype=K.dtype, device=K.device)
    d_cam = unproject_points(uv, ones, K)  # (..., HW, 3) on the z = 1 plane
    if distortion is not None:
        xy = undistort_points(d_cam[..., :2], distortion)
        d_cam = torch.cat([xy, d_cam[..., 2:]], -1)
    world_from_cam = invert_rigid(cam_from_world)
    d = d_cam @ world_from_cam[..., :3, :3].transpose(-1, -2)
    d = d / d.norm(dim=-1, keepdim=True)
    d = d.expand(*batch, H * W, 3).unflatten(-2, (H, W))
    o = world_from_cam[..., None, None, :3, 3].expand_as(d)
    return o, d


def plucker(origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Plücker coordinates ``(d, o x d)`` of rays; ``d`` is normalised first.

    The moment ``o x d`` does not depend on which point of the ray is ``o``.

    Args:
        origins: ``(..., 3)``.
        directions: ``(..., 3)``, non-zero.

    Returns:
        ``(..., 6)``: direction first, then moment.

    Example:
        >>> plucker(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 2.0]))
        tensor([ 0.,  0.,  1.,  0., -1.,  0.])
    """
    batch = check_args(("origins", origins, (3,)), ("directions", directions, (3,)))
    d = directions / directions.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    o, d = origins.expand(*batch, 3), d.expand(*batch, 3)
    return torch.cat([d, torch.linalg.cross(o, d, dim=-1)], dim=-1)


def plucker_map(K: torch.Tensor, cam_from_world: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Channels-first Plücker image of a camera, ready to concatenate with an RGB image.

    Args:
        K: ``(..., 3, 3)``.
        cam_from_world: ``(..., 4, 4)``.

    Returns:
        ``(..., 6, H, W)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> plucker_map(make_intrinsics(8.0, 8.0, 3.5, 3.5), torch.eye(4), 8, 8).shape
        torch.Size([6, 8, 8])
    """
    o, d = camera_rays(K, cam_from_world, H, W)
    return plucker(o, d).movedim(-1, -3)
