"""Image files -> tensors, and fitting a view (image + intrinsics) to a model's input size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry.camera import crop_intrinsics, scale_intrinsics
from .errors import FormatError, require_file

__all__ = ["fit_intrinsics", "fit_map", "fit_view_undistorted", "read_rgb", "fit_view", "fit_view_crop"]


def read_rgb(path: str | Path, what: str = "image") -> torch.Tensor:
    """An image file (PNG, JPEG, ...) -> ``(3, H, W)`` float in [0, 1]; ``what`` names it in errors.

    Raises:
        MissingFileError: no such file.
        FormatError: not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = require_file(path, what)
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FormatError(f"{path}: not a readable image ({e})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255


def fit_view_crop(h: int, w: int, H: int, W: int) -> tuple[int, int, int, int]:
    """The centred crop ``(top, left, height, width)`` of an ``h x w`` image with the aspect of ``H x W``
    (what :func:`fit_view` keeps).

    Example:
        >>> fit_view_crop(40, 80, 16, 16)
        (0, 20, 40, 40)
    """
    if h * W > w * H:  # too tall: crop rows
        ch, cw = round(w * H / W), w
    else:
        ch, cw = h, round(h * W / H)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def fit_view(image: torch.Tensor, K: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre-crop ``image`` to the aspect of ``H x W``, resize it (antialiased) to ``H x W``, and
    adjust ``K`` to match.

    Args:
        image: ``(C, h, w)``; K: ``(3, 3)`` in pixels of ``image``.

    Returns:
        ``(C, H, W)`` and ``(3, 3)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> img, K = fit_view(torch.rand(3, 40, 80), make_intrinsics(50.0, 50.0, 39.5, 19.5), 16, 16)
        >>> img.shape, K[0, 2].item(), K[0, 0].item()
        (torch.Size([3, 16, 16]), 7.5, 20.0)
    """
    if image.ndim != 3:
        raise ValueError(f"fit_view: image must be (C, h, w), got shape {tuple(image.shape)}")
    top, left, ch, cw = fit_view_crop(*image.shape[-2:], H, W)
    crop = image[:, top : top + ch, left : left + cw]
    out = F.interpolate(crop[None], (H, W), mode="bilinear", antialias=True, align_corners=False)[0]
    return out.clamp(0, 1), fit_intrinsics(K, *image.shape[-2:], H, W)


def fit_map(values: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """A per-pixel map ``(C, h, w)`` (depth, instance ids, labels) cropped like :func:`fit_view` and resized to
    ``H x W`` by nearest neighbour, so no values are mixed across edges or ids; dtype kept.

    Example:
        >>> fit_map(torch.arange(8).reshape(1, 2, 4), 2, 2).tolist()
        [[[1, 2], [5, 6]]]
    """
    top, left, ch, cw = fit_view_crop(*values.shape[-2:], H, W)
    crop = values[None, :, top : top + ch, left : left + cw]
    return F.interpolate(crop.double(), (H, W), mode="nearest")[0].to(values.dtype)


def fit_intrinsics(K: torch.Tensor, h: int, w: int, H: int, W: int) -> torch.Tensor:
    """The ``K`` :func:`fit_view` gives an ``h x w`` image's camera at ``H x W`` (for cameras without an image).

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> fit_intrinsics(make_intrinsics(50.0, 50.0, 39.5, 19.5), 40, 80, 16, 16)[0, 2].item()
        7.5
    """
    top, left, ch, cw = fit_view_crop(h, w, H, W)
    return scale_intrinsics(crop_intrinsics(K, top, left), W / cw, H / ch)


def fit_view_undistorted(
    image: torch.Tensor, K: torch.Tensor, distortion: torch.Tensor, H: int, W: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fit_view` of the undistorted image. Undistortion runs at about 4x the output size (OpenCV
    distortion coefficients act on normalised coordinates, so they hold at any image scale), which keeps
    a 1080p frame cheap; with all-zero ``distortion`` this is :func:`fit_view`.

    Args:
        image: ``(C, h, w)``; K: ``(3, 3)`` in its pixels; distortion: ``(5,)`` OpenCV k1, k2, p1, p2, k3.
    """
    from ...geometry import undistort_image

    if bool((distortion != 0).any()):
        h, w = image.shape[-2:]
        r = max(1.0, min(h / (4 * H), w / (4 * W)))
        if r > 1:
            size = (round(h / r), round(w / r))
            image = F.interpolate(image[None], size, mode="bilinear", antialias=True, align_corners=False)[0]
            K = scale_intrinsics(K, size[1] / w, size[0] / h)
        image = undistort_image(image, K.float(), distortion.float()).clamp(0, 1)
    return fit_view(image, K, H, W)
