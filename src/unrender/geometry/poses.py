"""Rigid transforms as 4x4 matrices named by direction: ``a_from_b`` maps points in frame b to frame a.

Column vectors: ``p_a = a_from_b @ [p_b; 1]``. Every function takes any leading
batch dims (broadcast between arguments).
"""

from __future__ import annotations

import torch

from .checks import check_args, check_shape

__all__ = [
    "validate_rigid",
    "make_rigid",
    "split_rigid",
    "compose",
    "invert_rigid",
    "transform_points",
    "transform_directions",
    "look_at",
]


def validate_rigid(a_from_b: torch.Tensor, name: str = "cam_from_world") -> None:
    """Raise ``ValueError`` unless ``a_from_b`` is ``(..., 4, 4)``, finite, with last row ``(0, 0, 0, 1)``.
    Public entry points that take cameras call it (with :func:`~unrender.geometry.validate_intrinsics`).

    Example:
        >>> validate_rigid(torch.eye(4))
        >>> validate_rigid(torch.full((4, 4), float("nan")))
        Traceback (most recent call last):
        ...
        ValueError: cam_from_world: pose contains NaN or inf
    """
    check_shape(a_from_b, name, (4, 4))
    if not bool(torch.isfinite(a_from_b).all()):
        raise ValueError(f"{name}: pose contains NaN or inf")
    last = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=a_from_b.dtype, device=a_from_b.device)
    if not bool(torch.isclose(a_from_b[..., 3, :], last, atol=1e-4).all()):
        raise ValueError(f"{name}: last row must be (0, 0, 0, 1), got {a_from_b[..., 3, :].reshape(-1, 4)[0].tolist()}")


def make_rigid(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Build ``(..., 4, 4)`` transforms from rotations ``(..., 3, 3)`` and translations ``(..., 3)``.

    Example:
        >>> make_rigid(torch.eye(3), torch.tensor([1.0, 2.0, 3.0]))[:3, 3]
        tensor([1., 2., 3.])
    """
    batch = check_args(("R", R, (3, 3)), ("t", t, (3,)))
    top = torch.cat([R.expand(*batch, 3, 3), t.expand(*batch, 3)[..., None]], dim=-1)
    bottom = torch.zeros(*batch, 1, 4, dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def split_rigid(a_from_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``(..., 4, 4)`` transforms into rotation ``(..., 3, 3)`` and translation ``(..., 3)``.

    Example:
        >>> R, t = split_rigid(torch.eye(4))
        >>> t
        tensor([0., 0., 0.])
    """
    check_shape(a_from_b, "a_from_b", (4, 4))
    return a_from_b[..., :3, :3], a_from_b[..., :3, 3]


def compose(a_from_b: torch.Tensor, b_from_c: torch.Tensor) -> torch.Tensor:
    """Chain two transforms: ``a_from_c = a_from_b @ b_from_c``.

    Args:
        a_from_b: ``(..., 4, 4)``.
        b_from_c: ``(..., 4, 4)``.

    Returns:
        ``(..., 4, 4)``, batch dims broadcast.

    Example:
        >>> compose(torch.eye(4), torch.eye(4)).shape
        torch.Size([4, 4])
    """
    check_args(("a_from_b", a_from_b, (4, 4)), ("b_from_c", b_from_c, (4, 4)))
    return a_from_b @ b_from_c


def invert_rigid(a_from_b: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of a rigid transform: ``b_from_a = [R^T, -R^T t; 0, 1]``.

    Args:
        a_from_b: ``(..., 4, 4)`` with an orthonormal rotation block.

    Returns:
        ``(..., 4, 4)``.

    Example:
        >>> T = make_rigid(torch.eye(3), torch.tensor([1.0, 0.0, 0.0]))
        >>> invert_rigid(T)[:3, 3]
        tensor([-1., -0., -0.])
    """
    R, t = split_rigid(a_from_b)
    Rt = R.transpose(-1, -2)
    return make_rigid(Rt, -(Rt @ t[..., None])[..., 0])


def transform_points(a_from_b: torch.Tensor, points_b: torch.Tensor) -> torch.Tensor:
    """Map points from frame b to frame a.

    Args:
        a_from_b: ``(..., 4, 4)``.
        points_b: ``(..., N, 3)``.

    Returns:
        ``(..., N, 3)``, batch dims broadcast.

    Example:
        >>> T = make_rigid(torch.eye(3), torch.tensor([0.0, 0.0, 2.0]))
        >>> transform_points(T, torch.zeros(1, 3))
        tensor([[0., 0., 2.]])
    """
    check_args(("a_from_b", a_from_b, (4, 4)), ("points_b", points_b, (None, 3)))
    R, t = a_from_b[..., :3, :3], a_from_b[..., :3, 3]
    return points_b @ R.transpose(-1, -2) + t[..., None, :]


def transform_directions(a_from_b: torch.Tensor, dirs_b: torch.Tensor) -> torch.Tensor:
    """Rotate direction vectors from frame b to frame a (the translation is ignored).

    Args:
        a_from_b: ``(..., 4, 4)``.
        dirs_b: ``(..., N, 3)``.

    Returns:
        ``(..., N, 3)``.

    Example:
        >>> T = make_rigid(torch.eye(3), torch.tensor([0.0, 0.0, 2.0]))
        >>> transform_directions(T, torch.tensor([[0.0, 0.0, 1.0]]))
        tensor([[0., 0., 1.]])
    """
    check_args(("a_from_b", a_from_b, (4, 4)), ("dirs_b", dirs_b, (None, 3)))
    return dirs_b @ a_from_b[..., :3, :3].transpose(-1, -2)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None) -> torch.Tensor:
    """``cam_from_world`` of an OpenCV camera at ``eye`` looking at ``target``.

    The camera's z axis points at the target, x is ``forward x up`` (right) and
    y is ``forward x right`` (down in the image). ``up`` defaults to
    ``(0, -1, 0)``, up in unrender's y-down world. Where the viewing direction
    is parallel to ``up``, ``(0, 0, 1)`` is used as the up vector instead (and
    ``(1, 0, 0)`` if that is parallel too); where ``eye == target`` the camera
    looks along world +z.

    Args:
        eye: ``(..., 3)`` camera centres in world.
        target: ``(..., 3)``.
        up: ``(..., 3)`` or ``None``.

    Returns:
        ``(..., 4, 4)`` cam_from_world.

    Example:
        >>> T = look_at(torch.tensor([0.0, 0.0, -5.0]), torch.zeros(3))
        >>> transform_points(T, torch.zeros(1, 3))
        tensor([[0., 0., 5.]])
    """
    if up is None:
        up = torch.tensor([0.0, -1.0, 0.0], dtype=getattr(eye, "dtype", None), device=getattr(eye, "device", None))
    batch = check_args(("eye", eye, (3,)), ("target", target, (3,)), ("up", up, (3,)))
    eye, target, up = eye.expand(*batch, 3), target.expand(*batch, 3), up.expand(*batch, 3)
    up = up / up.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def unit(v: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
        n = v.norm(dim=-1, keepdim=True)
        ok = n > eps
        return v / torch.where(ok, n, torch.ones_like(n)), ok

    f, ok_f = unit(target - eye, 1e-12)
    f = torch.where(ok_f, f, torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device))
    x, ok_x = unit(torch.linalg.cross(f, up, dim=-1))
    for alt in ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]):
        alt_up = torch.tensor(alt, dtype=eye.dtype, device=eye.device).expand_as(f)
        x_alt, ok_alt = unit(torch.linalg.cross(f, alt_up, dim=-1))
        x = torch.where(ok_x, x, x_alt)
        ok_x = ok_x | ok_alt
    y = torch.linalg.cross(f, x, dim=-1)
    R = torch.stack([x, y, f], dim=-2)
    return make_rigid(R, -(R @ eye[..., None])[..., 0])
