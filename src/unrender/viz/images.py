"""Small image utilities on numpy/torch arrays: colour-mapped depth, grids, atomic PNG writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path

__all__ = ["to_uint8", "colorize_depth", "image_grid", "save_png"]

# A perceptual ramp (dark blue -> teal -> yellow), sampled at 6 points and interpolated.
_RAMP = np.array(
    [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [240, 249, 33]],
    dtype=np.float64,
)


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(3, H, W)`` or ``(H, W, 3)`` float in [0, 1] (or uint8) -> ``(H, W, 3)`` uint8."""
    a = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    if a.dtype != np.uint8:
        a = (np.clip(np.nan_to_num(a), 0, 1) * 255 + 0.5).astype(np.uint8)
    return a


def colorize_depth(depth: torch.Tensor | np.ndarray, *, max_depth: float | None = None) -> np.ndarray:
    """``(H, W)`` depth -> ``(H, W, 3)`` uint8; near is bright; 0 (unknown) is black.

    Example:
        >>> colorize_depth(np.array([[0.0, 1.0], [2.0, 4.0]])).shape
        (2, 2, 3)
    """
    d = depth.detach().float().cpu().numpy() if isinstance(depth, torch.Tensor) else np.asarray(depth, np.float64)
    valid = (d > 0) & np.isfinite(d)
    hi = max_depth if max_depth is not None else (float(d[valid].max()) if valid.any() else 1.0)
    inv = np.where(valid, 1.0 / np.maximum(d, 1e-6), 0.0)
    x = np.clip((inv - 1.0 / hi) / max(1e-9, inv.max() - 1.0 / hi), 0, 1) if valid.any() else inv
    pos = x * (len(_RAMP) - 1)
    i = np.clip(pos.astype(int), 0, len(_RAMP) - 2)
    f = (pos - i)[..., None]
    rgb = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def image_grid(rows: Sequence[Sequence[np.ndarray]], *, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile ``(H, W, 3)`` uint8 images into one, row by row, on a white background.

    Images are nearest-upscaled by ``scale``; cells take the largest size.
    """
    cells = [[np.repeat(np.repeat(to_uint8(im), scale, 0), scale, 1) for im in row] for row in rows]
    h = max(c.shape[0] for row in cells for c in row)
    w = max(c.shape[1] for row in cells for c in row)
    ncol = max(len(r) for r in cells)
    out = np.full((len(cells) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(cells):
        for c, im in enumerate(row):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            out[y : y + im.shape[0], x : x + im.shape[1]] = im
    return out


def save_png(path: str | Path, image: np.ndarray | torch.Tensor) -> Path:
    """Write a PNG atomically (temporary file, then rename)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")
    return Path(path)
