"""Pinhole cameras in the OpenCV convention.

Camera frame: x right, y down, z forward. ``K`` is ``3x3`` in pixels and the
centre of pixel (row i, column j) is at ``(u, v) = (j, i)``, so the image
spans ``u in [-0.5, W - 0.5]``. Normalised coordinates are those of
``grid_sample(..., align_corners=False)``: ``-1`` and ``+1`` are the outer
edges of the border pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import check_args, check_shape

__all__ = [
    "make_intrinsics",
    "validate_intrinsics",
    "project_points",
    "unproject_points",
    "pixel_centers",
    "depth_to_points",
    "scale_intrinsics",
    "crop_intrinsics",
    "pixels_to_normalized",
    "normalized_to_pixels",
    "distort_points",
    "undistort_points",
    "undistort_image",
]


def make_intrinsics(
    fx: torch.Tensor | float,
    fy: torch.Tensor | float,
    cx: torch.Tensor | float,
    cy: torch.Tensor | float,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Pinhole ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

    Args:
        fx, fy, cx, cy: scalars or tensors of a common broadcast shape ``(...)``.

    Returns:
        ``(..., 3, 3)``.

    Raises:
        ValueError: if a focal length is zero or not finite.

    Example:
        >>> make_intrinsics(100.0, 100.0, 31.5, 23.5)
        tensor([[100.0000,   0.0000,  31.5000],
                [  0.0000, 100.0000,  23.5000],
                [  0.0000,   0.0000,   1.0000]])
    """
    vals = [torch.as_tensor(v, dtype=dtype, device=device) for v in (fx, fy, cx, cy)]
    if dtype is None and not vals[0].is_floating_point():
        vals = [v.float() for v in vals]
    vals = torch.broadcast_tensors(*[v.to(vals[0].dtype) for v in vals])
    fx, fy, cx, cy = vals
    o, i = torch.zeros_like(fx), torch.ones_like(fx)
    K = torch.stack([fx, o, cx, o, fy, cy, o, o, i], dim=-1).unflatten(-1, (3, 3))
    validate_intrinsics(K)
    return K


def validate_intrinsics(K: torch.Tensor, name: str = "K") -> None:
    """Raise ``ValueError`` unless ``K`` is ``(..., 3, 3)``, finite, with non-zero focal lengths
    and last row ``(0, 0, 1)``. Use it where cameras enter unrender (readers, datasets).

    Example:
        >>> validate_intrinsics(torch.eye(3))
    """
    check_shape(K, name, (3, 3))
    if not bool(torch.isfinite(K).all()):
        raise ValueError(f"{name}: intrinsics contain NaN or inf")
    if bool((K[..., 0, 0] == 0).any() | (K[..., 1, 1] == 0).any()):
        raise ValueError(f"{name}: impossible camera, a focal length is zero")
    last = torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)
    if not bool(torch.isclose(K[..., 2, :], last, atol=1e-4).all()):
        raise ValueError(f"{name}: last row must be (0, 0, 1), got {K[..., 2, :].reshape(-1, 3)[0].tolist()}")


def project_points(
    points_cam: torch.Tensor, K: torch.Tensor, *, min_depth: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project camera-frame points to pixels.

    Points with ``z <= min_depth`` (on or behind the camera) get
    ``in_front = False`` and a finite but meaningless ``uv`` (their ``z`` is
    clamped to ``min_depth``): mask them out with ``in_front``.

    Args:
        points_cam: ``(..., N, 3)``.
        K: ``(..., 3, 3)``.

    Returns:
        uv ``(..., N, 2)`` pixel coordinates, depth ``(..., N)`` (the z
        coordinate) and in_front ``(..., N)`` bool.

    Example:
        >>> K = make_intrinsics(100.0, 100.0, 50.0, 40.0)
        >>> uv, z, ok = project_points(torch.tensor([[0.1, 0.0, 2.0]]), K)
        >>> uv, z, ok
        (tensor([[55., 40.]]), tensor([2.]), tensor([True]))
    """
    check_args(("points_cam", points_cam, (None, 3)), ("K", K, (3, 3)))
    z = points_cam[..., 2]
    in_front = z > min_depth
    zc = torch.where(in_front, z, torch.full_like(z, min_depth))
    xy = points_cam[..., :2] / zc[..., None]
    K_ = K[..., None, :, :]
    u = K_[..., 0, 0] * xy[..., 0] + K_[..., 0, 1] * xy[..., 1] + K_[..., 0, 2]
    v = K_[..., 1, 1] * xy[..., 1] + K_[..., 1, 2]
    return torch.stack([u, v], dim=-1), z, in_front


def unproject_points(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Lift pixels with z-depth to camera-frame points (the inverse of :func:`project_points`).

    Args:
        uv: ``(..., N, 2)`` pixel coordinates.
        depth: ``(..., N)`` z-depth in metres (0 gives the camera centre).
        K: ``(..., 3, 3)`` with non-zero focal lengths.

    Returns:
        ``(..., N, 3)``.

    Example:
        >>> K = make_intrinsics(100.0, 100.0, 50.0, 40.0)
        >>> unproject_points(torch.tensor([[55.0, 40.0]]), torch.tensor([2.0]), K)
        tensor([[0.1000, 0.0000, 2.0000]])
    """
    check_args(("uv", uv, ("N", 2)), ("depth", depth, ("N",)), ("K", K, (3, 3)))
    validate_intrinsics(K)
    K_ = K[..., None, :, :]
    y = (uv[..., 1] - K_[..., 1, 2]) / K_[..., 1, 1]
    x = (uv[..., 0] - K_[..., 0, 2] - K_[..., 0, 1] * y) / K_[..., 0, 0]
    return torch.stack([x * depth, y * depth, depth.expand_as(x)], dim=-1)


def pixel_centers(
    H: int, W: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Pixel-centre coordinates ``(u, v) = (j, i)`` of an ``H x W`` image.

    Returns:
        ``(H, W, 2)``.

    Example:
        >>> pixel_centers(2, 3)[1, 2]
        tensor([2., 1.])
    """
    if H <= 0 or W <= 0:
        raise ValueError(f"image size must be positive, got H={H}, W={W}")
    v, u = torch.meshgrid(
        torch.arange(H, dtype=dtype, device=device), torch.arange(W, dtype=dtype, device=device), indexing="ij"
    )
    return torch.stack([u, v], dim=-1)


def depth_to_points(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-frame 3D point of every pixel of a z-depth map.

    Args:
        depth: ``(..., 1, H, W)`` metres; 0 (unknown) gives the camera centre.
        K: ``(..., 3, 3)``.

    Returns:
        ``(..., H, W, 3)``.

    Example:
        >>> K = make_intrinsics(1.0, 1.0, 0.0, 0.0)
        >>> depth_to_points(torch.full((1, 1, 2), 2.0), K)[0, 1]
        tensor([2., 0., 2.])
    """
    check_shape(depth, "depth", (1, None, None))
    validate_intrinsics(K)
    H, W = depth.shape[-2:]
    uv = pixel_centers(H, W, dtype=depth.dtype, device=depth.device).reshape(H * W, 2)
    pts = unproject_points(uv, depth.reshape(*depth.shape[:-3], H * W), K)
    return pts.unflatten(-2, (H, W))


def scale_intrinsics(K: torch.Tensor, scale_x: float, scale_y: float) -> torch.Tensor:
    """Intrinsics of the image resized by ``(scale_x, scale_y)`` (new size / old size).

    Image *edges* scale, not pixel centres: ``fx' = sx fx`` and
    ``cx' = sx (cx + 0.5) - 0.5`` (likewise for y).

    Args:
        K: ``(..., 3, 3)``.

    Returns:
        ``(..., 3, 3)``.

    Example:
        >>> K = make_intrinsics(100.0, 100.0, 31.5, 15.5)   # 64 x 32 image, centred
        >>> scale_intrinsics(K, 0.5, 0.5)[:2, 2]             # 32 x 16 image, centred
        tensor([15.5000,  7.5000])
    """
    check_shape(K, "K", (3, 3))
    if scale_x <= 0 or scale_y <= 0:
        raise ValueError(f"scales must be positive, got ({scale_x}, {scale_y})")
    S = torch.tensor(
        [[scale_x, 0.0, 0.5 * scale_x - 0.5], [0.0, scale_y, 0.5 * scale_y - 0.5], [0.0, 0.0, 1.0]],
        dtype=K.dtype,
        device=K.device,
    )
    return S @ K


def crop_intrinsics(K: torch.Tensor, top: float, left: float) -> torch.Tensor:
    """Intrinsics of the crop whose top-left pixel was ``(row top, column left)``.

    Args:
        K: ``(..., 3, 3)``.

    Returns:
        ``(..., 3, 3)``: ``cx - left``, ``cy - top``.

    Example:
        >>> crop_intrinsics(make_intrinsics(100.0, 100.0, 50.0, 40.0), 10, 20)[:2, 2]
        tensor([30., 30.])
    """
    check_shape(K, "K", (3, 3))
    out = K.clone()
    out[..., 0, 2] = K[..., 0, 2] - left
    out[..., 1, 2] = K[..., 1, 2] - top
    return out


def pixels_to_normalized(uv: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Pixel coordinates to ``grid_sample(align_corners=False)`` coordinates.

    ``x = (2u + 1) / W - 1``, ``y = (2v + 1) / H - 1``.

    Args:
        uv: ``(..., 2)``.

    Returns:
        ``(..., 2)``.

    Example:
        >>> pixels_to_normalized(torch.tensor([-0.5, 3.5]), 4, 4)
        tensor([-1.,  1.])
    """
    check_shape(uv, "uv", (2,))
    size = torch.tensor([W, H], dtype=uv.dtype, device=uv.device)
    return (2 * uv + 1) / size - 1


def normalized_to_pixels(xy: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`pixels_to_normalized`.

    Args:
        xy: ``(..., 2)``.

    Returns:
        ``(..., 2)``.

    Example:
        >>> normalized_to_pixels(torch.tensor([-1.0, 1.0]), 4, 4)
        tensor([-0.5000,  3.5000])
    """
    check_shape(xy, "xy", (2,))
    size = torch.tensor([W, H], dtype=xy.dtype, device=xy.device)
    return ((xy + 1) * size - 1) / 2


def distort_points(xy: torch.Tensor, distortion: torch.Tensor) -> torch.Tensor:
    """Apply OpenCV's lens model (radial ``k1, k2, k3``, tangential ``p1, p2``) to normalised image
    coordinates ``(x / z, y / z)``.

    Args:
        xy: ``(..., 2)`` undistorted normalised coordinates.
        distortion: ``(5,)`` or ``(..., 5)`` as ``(k1, k2, p1, p2, k3)`` (OpenCV's order).

    Returns:
        ``(..., 2)`` distorted normalised coordinates.

    Example:
        >>> distort_points(torch.tensor([[0.5, 0.0]]), torch.tensor([0.1, 0.0, 0.0, 0.0, 0.0]))
        tensor([[0.5125, 0.0000]])
    """
    check_shape(xy, "xy", (2,))
    check_shape(distortion, "distortion", (5,))
    if not bool(torch.isfinite(distortion).all()):
        raise ValueError("distortion: coefficients contain NaN or inf")
    k1, k2, p1, p2, k3 = distortion.to(xy).unbind(-1)
    x, y = xy.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], -1)


def undistort_points(xy: torch.Tensor, distortion: torch.Tensor, *, iters: int = 20) -> torch.Tensor:
    """Invert :func:`distort_points`: the undistorted normalised coordinates that the lens images at ``xy``.

    Fixed-point iteration ``x <- (x_d - tangential(x)) / radial(x)`` from ``x = x_d`` (OpenCV's
    ``undistortPoints``); it converges for the mild distortion of real lenses inside the image.

    Args:
        xy: ``(..., 2)`` distorted normalised coordinates.
        distortion: ``(5,)`` as ``(k1, k2, p1, p2, k3)``.
        iters: iterations.

    Returns:
        ``(..., 2)`` undistorted normalised coordinates.

    Example:
        >>> d = torch.tensor([0.1, 0.0, 0.0, 0.0, 0.0])
        >>> undistort_points(distort_points(torch.tensor([[0.5, 0.0]]), d), d)
        tensor([[0.5000, 0.0000]])
    """
    check_shape(xy, "xy", (2,))
    check_shape(distortion, "distortion", (5,), max_batch=0)
    if not bool(torch.isfinite(distortion).all()):
        raise ValueError("distortion: coefficients contain NaN or inf")
    k1, k2, p1, p2, k3 = distortion.to(xy).unbind(-1)
    xd, yd = xy.unbind(-1)
    x, y = xd, yd
    for _ in range(iters):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        x = (xd - 2 * p1 * x * y - p2 * (r2 + 2 * x * x)) / radial
        y = (yd - p1 * (r2 + 2 * y * y) - 2 * p2 * x * y) / radial
    return torch.stack([x, y], -1)


def undistort_image(image: torch.Tensor, K: torch.Tensor, distortion: torch.Tensor) -> torch.Tensor:
    """Resample an image taken through a distorting lens into the ideal pinhole camera ``K`` (same size).

    Each output pixel's ray is pushed through the lens model (:func:`distort_points`) to find where
    the lens imaged it; that point is sampled bilinearly (0 outside the image).

    Args:
        image: ``(..., C, H, W)``.
        K: ``(3, 3)`` of the image.
        distortion: ``(5,)`` as ``(k1, k2, p1, p2, k3)``.

    Returns:
        ``(..., C, H, W)``.

    Example:
        >>> img = torch.rand(3, 8, 8)
        >>> K = make_intrinsics(8.0, 8.0, 3.5, 3.5)
        >>> torch.allclose(undistort_image(img, K, torch.zeros(5)), img, atol=1e-6)
        True
    """
    check_shape(image, "image", (None, None, None))
    validate_intrinsics(K)
    check_shape(K, "K", (3, 3), max_batch=0)
    H, W = image.shape[-2:]
    uv = pixel_centers(H, W, dtype=torch.float64, device=image.device).reshape(-1, 2)
    Kd = K.double()
    xy = unproject_points(uv, torch.ones(H * W, dtype=torch.float64, device=image.device), Kd)[:, :2]
    xd = distort_points(xy, distortion.double().to(image.device))
    src = project_points(torch.cat([xd, torch.ones_like(xd[:, :1])], -1), Kd)[0]  # where the lens put each ray
    grid = pixels_to_normalized(src, H, W).to(image.dtype).reshape(1, H, W, 2)
    flat = image.reshape(-1, *image.shape[-3:])
    out = F.grid_sample(flat, grid.expand(len(flat), H, W, 2), mode="bilinear", padding_mode="zeros",
                        align_corners=False)  # fmt: skip
    return out.reshape(image.shape)
