"""Camera conventions of other tools, converted to unrender's (OpenCV axes, ``cam_from_world``).

* OpenGL / NeRF / instant-ngp ``transforms.json``: camera-to-world with camera
  axes x right, y up, z backwards. OpenCV axes are ``diag(1, -1, -1)`` of those.
* COLMAP ``images.txt``: ``qvec (w, x, y, z)`` and ``tvec`` are already
  world-to-camera in OpenCV axes.
* KITTI: velodyne points reach the rectified camera frame through
  ``R0_rect @ Tr_velo_to_cam``; camera 2 (left colour) is offset from the
  rectified camera 0 by ``K^-1 P2[:, 3]``.
"""

from __future__ import annotations

import torch

from ...geometry.checks import check_shape
from ...geometry.poses import invert_rigid, make_rigid
from ...geometry.rotations import quaternion_to_matrix

__all__ = [
    "cam_from_world_from_opengl",
    "opengl_from_cam_from_world",
    "cam_from_world_from_colmap",
    "kitti_cam_from_velo",
]


def _flip(like: torch.Tensor) -> torch.Tensor:
    return torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=like.dtype, device=like.device))


def cam_from_world_from_opengl(c2w: torch.Tensor) -> torch.Tensor:
    """``cam_from_world`` (OpenCV axes) from an OpenGL/NeRF camera-to-world ``(..., 4, 4)``.

    Example:
        >>> c2w = torch.eye(4); c2w[2, 3] = 3.0   # at z = 3 looking down -z
        >>> cam_from_world_from_opengl(c2w)[:3, 3]   # the origin is 3 m in front
        tensor([0., 0., 3.])
    """
    check_shape(c2w, "c2w", (4, 4))
    return _flip(c2w) @ invert_rigid(c2w)


def opengl_from_cam_from_world(cam_from_world: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`cam_from_world_from_opengl`: the OpenGL camera-to-world matrix.

    Example:
        >>> T = torch.eye(4)
        >>> torch.equal(cam_from_world_from_opengl(opengl_from_cam_from_world(T)), T)
        True
    """
    check_shape(cam_from_world, "cam_from_world", (4, 4))
    return invert_rigid(_flip(cam_from_world) @ cam_from_world)


def cam_from_world_from_colmap(qvec: torch.Tensor, tvec: torch.Tensor) -> torch.Tensor:
    """``cam_from_world`` from COLMAP's ``qvec (..., 4)`` (w, x, y, z) and ``tvec (..., 3)``.

    Example:
        >>> cam_from_world_from_colmap(torch.tensor([1.0, 0, 0, 0]), torch.tensor([0.0, 0, 2]))[:3, 3]
        tensor([0., 0., 2.])
    """
    return make_rigid(quaternion_to_matrix(qvec), tvec)


def kitti_cam_from_velo(calib: dict[str, torch.Tensor], camera: int = 2) -> torch.Tensor:
    """``cam_from_velo`` for KITTI camera ``camera`` (0-3) from :func:`~unrender.data.formats.read_kitti_calib` output.

    Composes ``Tr_velo_to_cam`` (velodyne -> camera 0), ``R0_rect`` (rectification) and
    the camera's offset ``K^-1 P[:, 3]``.
    """
    P = calib[f"P{camera}"]
    R0 = torch.eye(4, dtype=P.dtype)
    R0[:3, :3] = calib["R0_rect"]
    offset = torch.eye(4, dtype=P.dtype)
    offset[:3, 3] = torch.linalg.solve(P[:, :3], P[:, 3])
    return offset @ R0 @ calib["Tr_velo_to_cam"]
