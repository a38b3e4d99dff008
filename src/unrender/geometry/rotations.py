"""Rotation representations and conversions.

Quaternions are ``(w, x, y, z)`` (scalar first) and, when returned, are unit
with ``w >= 0``. Axis-angle vectors are ``angle * unit_axis`` with the angle in
radians. The 6D representation (Zhou et al., CVPR 2019) is the first two
*columns* of the rotation matrix, concatenated. Every function takes any
leading batch dims and works in float32 and float64 on any device.
"""

from __future__ import annotations

import torch

from .checks import check_shape

__all__ = [
    "skew",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "yaw_matrix",
    "so3_exp",
    "so3_log",
]

# Below this squared angle the Taylor series are used (they are exact to float64 precision there).
_SMALL2 = 1e-8


def skew(v: torch.Tensor) -> torch.Tensor:
    """The skew-symmetric (cross-product) matrix of a 3-vector: ``skew(a) @ b == a x b``.

    Args:
        v: ``(..., 3)``.

    Returns:
        ``(..., 3, 3)``.

    Example:
        >>> skew(torch.tensor([1.0, 2.0, 3.0]))
        tensor([[ 0., -3.,  2.],
                [ 3.,  0., -1.],
                [-2.,  1.,  0.]])
    """
    check_shape(v, "v", (3,))
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).unflatten(-1, (3, 3))


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of a quaternion ``(w, x, y, z)``.

    The quaternion is normalised first; a zero quaternion maps to the identity.

    Args:
        q: ``(..., 4)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices.

    Example:
        >>> quaternion_to_matrix(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(q, "q", (4,))
    n2 = (q * q).sum(-1, keepdim=True)
    ident = torch.zeros_like(q)
    ident[..., 0] = 1.0
    zero = n2 <= 1e-24
    q = torch.where(zero, ident, q / torch.where(zero, torch.ones_like(n2), n2).sqrt())
    w, x, y, z = q.unbind(-1)
    m = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).unflatten(-1, (3, 3))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a rotation matrix.

    Uses the numerically stable branch (largest of ``4w², 4x², 4y², 4z²``), so
    it is accurate near 180° as well; gradients are finite everywhere.

    Args:
        R: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 4)``.

    Example:
        >>> matrix_to_quaternion(torch.eye(3))
        tensor([1., 0., 0., 0.])
    """
    check_shape(R, "R", (3, 3))
    r = R.flatten(-2)
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = r.unbind(-1)
    t = torch.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22], dim=-1)
    # The largest t is >= 1 (they sum to 4), so clamping at 0.1 only touches unused branches.
    s = 2 * t.clamp(min=0.1).sqrt()  # 4 * (the chosen component)
    cands = torch.stack(
        [
            torch.stack([s[..., 0] / 4, (r21 - r12) / s[..., 0], (r02 - r20) / s[..., 0], (r10 - r01) / s[..., 0]], -1),
            torch.stack([(r21 - r12) / s[..., 1], s[..., 1] / 4, (r01 + r10) / s[..., 1], (r02 + r20) / s[..., 1]], -1),
            torch.stack([(r02 - r20) / s[..., 2], (r01 + r10) / s[..., 2], s[..., 2] / 4, (r12 + r21) / s[..., 2]], -1),
            torch.stack([(r10 - r01) / s[..., 3], (r02 + r20) / s[..., 3], (r12 + r21) / s[..., 3], s[..., 3] / 4], -1),
        ],
        dim=-2,
    )  # (..., 4 candidates, 4)
    best = t.argmax(-1)[..., None, None].expand(*t.shape[:-1], 1, 4)
    q = cands.gather(-2, best).squeeze(-2)
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0).to(q)
    return q / q.norm(dim=-1, keepdim=True)


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of an axis-angle vector (Rodrigues' formula, the SO(3) exponential).

    Args:
        v: ``(..., 3)`` axis times angle in radians.

    Returns:
        ``(..., 3, 3)``.

    Example:
        >>> import math
        >>> axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2])).round(decimals=6)
        tensor([[ 0., -1.,  0.],
                [ 1.,  0.,  0.],
                [ 0.,  0.,  1.]])
    """
    check_shape(v, "v", (3,))
    th2 = (v * v).sum(-1)
    small = th2 < _SMALL2
    th = torch.where(small, torch.ones_like(th2), th2).sqrt()
    a = torch.where(small, 1 - th2 / 6, torch.sin(th) / th)
    b = torch.where(small, 0.5 - th2 / 24, (1 - torch.cos(th)) / (th * th))
    K = skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(K)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def axis_angle_to_quaternion(v: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` of an axis-angle vector.

    Args:
        v: ``(..., 3)``.

    Returns:
        ``(..., 4)`` unit quaternions (``w >= 0`` for angles up to π).

    Example:
        >>> axis_angle_to_quaternion(torch.zeros(3))
        tensor([1., 0., 0., 0.])
    """
    check_shape(v, "v", (3,))
    th2 = (v * v).sum(-1, keepdim=True)
    small = th2 < _SMALL2
    th = torch.where(small, torch.ones_like(th2), th2).sqrt()
    k = torch.where(small, 0.5 - th2 / 48, torch.sin(th / 2) / th)
    w = torch.where(small, 1 - th2 / 8, torch.cos(th / 2))
    return torch.cat([w, v * k], dim=-1)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Axis-angle vector (angle in ``[0, π]``) of a quaternion ``(w, x, y, z)``.

    ``q`` and ``-q`` give the same result; a zero quaternion gives zero.

    Args:
        q: ``(..., 4)``.

    Returns:
        ``(..., 3)``.

    Example:
        >>> quaternion_to_axis_angle(torch.tensor([0.0, 0.0, 0.0, 1.0]))
        tensor([0.0000, 0.0000, 3.1416])
    """
    check_shape(q, "q", (4,))
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0).to(q)
    w, v = q[..., :1], q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    n2 = s2 + w * w
    small = s2 < _SMALL2 * n2.clamp(min=1e-30)
    s = torch.where(small, torch.ones_like(s2), s2).sqrt()
    w_safe = torch.where(small, w.clamp(min=1e-12), w)
    k = torch.where(small, 2 / w_safe - 2 * s2 / (3 * w_safe**3), 2 * torch.atan2(s, w) / s)
    return v * k


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Axis-angle vector (angle in ``[0, π]``) of a rotation matrix (the SO(3) logarithm).

    Args:
        R: ``(..., 3, 3)``.

    Returns:
        ``(..., 3)``.

    Example:
        >>> matrix_to_axis_angle(torch.eye(3))
        tensor([0., 0., 0.])
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation matrix from the 6D representation by Gram-Schmidt.

    ``d6[..., :3]`` becomes the first column, the part of ``d6[..., 3:]``
    orthogonal to it the second, and their cross product the third.

    Args:
        d6: ``(..., 6)``; the two halves must be non-zero and not parallel.

    Returns:
        ``(..., 3, 3)``.

    Example:
        >>> rotation_6d_to_matrix(torch.tensor([2.0, 0, 0, 0, 3.0, 0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_shape(d6, "d6", (6,))
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """The 6D representation of a rotation matrix: its first two columns.

    Args:
        R: ``(..., 3, 3)``.

    Returns:
        ``(..., 6)``.

    Example:
        >>> matrix_to_rotation_6d(torch.eye(3))
        tensor([1., 0., 0., 0., 1., 0.])
    """
    check_shape(R, "R", (3, 3))
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    """Rotation about the y axis (gravity, pointing down) with KITTI's ``rotation_y`` sign.

    ``yaw_matrix(t) @ [1, 0, 0] = [cos t, 0, -sin t]``: a box with yaw ``-π/2``
    has its length axis along +z (facing away from a camera at the origin).

    Args:
        yaw: ``(...)`` radians.

    Returns:
        ``(..., 3, 3)``.

    Example:
        >>> yaw_matrix(torch.tensor(-torch.pi / 2)) @ torch.tensor([1.0, 0.0, 0.0])
        tensor([-4.3711e-08,  0.0000e+00,  1.0000e+00])
    """
    if not isinstance(yaw, torch.Tensor) or not yaw.is_floating_point():
        raise ValueError(f"yaw: expected a floating-point tensor of shape (...), got {type(yaw).__name__}")
    c, s = torch.cos(yaw), torch.sin(yaw)
    o, i = torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([c, o, s, o, i, o, -s, o, c], dim=-1).unflatten(-1, (3, 3))


def so3_exp(v: torch.Tensor) -> torch.Tensor:
    """SO(3) exponential map: tangent vector ``(..., 3)`` to rotation ``(..., 3, 3)``.

    Same as :func:`axis_angle_to_matrix`.

    Example:
        >>> so3_exp(torch.zeros(3))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    return axis_angle_to_matrix(v)


def so3_log(R: torch.Tensor) -> torch.Tensor:
    """SO(3) logarithm: rotation ``(..., 3, 3)`` to tangent vector ``(..., 3)`` with norm in ``[0, π]``.

    Same as :func:`matrix_to_axis_angle`.

    Example:
        >>> so3_log(torch.eye(3))
        tensor([0., 0., 0.])
    """
    return matrix_to_axis_angle(R)
