"""Small image utilities on numpy/torch arrays: colour-mapped depth, grids, atomic PNG writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path

__all__ = [
    "to_uint8",
    "colorize_depth",
    "depth_colorbar",
    "colorize_labels",
    "image_grid",
    "save_png",
    "save_eval_images",
    "draw_segments",
    "box_edges_2d",
    "frustum_lines",
]

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


def colorize_depth(
    depth: torch.Tensor | np.ndarray, *, max_depth: float | None = None, min_depth: float | None = None
) -> np.ndarray:
    """``(H, W)`` depth -> ``(H, W, 3)`` uint8, linear in inverse depth; near is bright; 0 (unknown) is
    black. The ramp spans ``min_depth`` (default: the nearest pixel) to ``max_depth`` (default: the
    farthest); fix both to compare pictures or to draw a colour bar (:func:`depth_colorbar`).

    Example:
        >>> colorize_depth(np.array([[0.0, 1.0], [2.0, 4.0]])).shape
        (2, 2, 3)
    """
    d = depth.detach().float().cpu().numpy() if isinstance(depth, torch.Tensor) else np.asarray(depth, np.float64)
    valid = (d > 0) & np.isfinite(d)
    hi = max_depth if max_depth is not None else (float(d[valid].max()) if valid.any() else 1.0)
    inv = np.where(valid, 1.0 / np.maximum(d, 1e-6), 0.0)
    top = 1.0 / min_depth if min_depth is not None else (inv.max() if valid.any() else 1.0)
    x = np.clip((inv - 1.0 / hi) / max(1e-9, top - 1.0 / hi), 0, 1) if valid.any() else inv
    pos = x * (len(_RAMP) - 1)
    i = np.clip(pos.astype(int), 0, len(_RAMP) - 2)
    f = (pos - i)[..., None]
    rgb = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def depth_colorbar(height: int, min_depth: float, max_depth: float, *, width: int = 64) -> np.ndarray:
    """A vertical colour bar ``(height, width, 3)`` uint8 for :func:`colorize_depth` with the same
    ``min_depth`` and ``max_depth``, labelled in metres (near at the top).

    Example:
        >>> depth_colorbar(120, 1.0, 80.0).shape
        (120, 64, 3)
    """
    from PIL import Image, ImageDraw

    if not 0 < min_depth < max_depth:
        raise ValueError(f"depth_colorbar: need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    rows = np.arange(height) / max(1, height - 1)  # 0 at the top (near) .. 1 at the bottom (far)
    inv = 1 / min_depth + rows * (1 / max_depth - 1 / min_depth)
    bar = colorize_depth(np.repeat((1 / inv)[:, None], 14, 1), min_depth=min_depth, max_depth=max_depth)
    canvas = np.full((height, width, 3), 255, np.uint8)
    canvas[:, :14] = bar
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(round(t * (height - 1)))
        metres = 1 / (1 / min_depth + t * (1 / max_depth - 1 / min_depth))
        draw.line([(14, y), (18, y)], fill=(0, 0, 0))
        draw.text((20, min(max(0, y - 5), height - 11)), f"{metres:.3g} m", fill=(0, 0, 0))
    return np.asarray(im)


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


def save_eval_images(folder: str | Path, images: dict[str, np.ndarray | torch.Tensor]) -> list[Path]:
    """Write an evaluation's pictures (title -> image) as ``eval_0.png``, ``eval_1.png``, ... in ``folder``,
    in the dict's order; returns the paths."""
    return [save_png(Path(folder) / f"eval_{i}.png", image) for i, image in enumerate(images.values())]


def colorize_labels(labels: torch.Tensor | np.ndarray, num: int = 256, *, seed: int = 7) -> np.ndarray:
    """``(H, W)`` integer labels -> ``(H, W, 3)`` uint8 with a fixed random palette; 0 is black."""
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    pal = np.random.default_rng(seed).integers(40, 255, (num, 3)).astype(np.uint8)
    pal[0] = 0
    return pal[np.clip(lab.astype(np.int64), 0, num - 1)]


def draw_segments(
    image: np.ndarray, segments: np.ndarray, colors: Sequence[tuple[int, int, int]], width: int = 1
) -> np.ndarray:
    """Draw 2D segments ``(S, 2, 2)`` (pixel coordinates) onto a copy of an ``(H, W, 3)`` uint8 image."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(to_uint8(image))
    draw = ImageDraw.Draw(im)
    for seg, col in zip(np.asarray(segments), colors, strict=True):
        draw.line([tuple(seg[0]), tuple(seg[1])], fill=tuple(int(c) for c in col), width=width)
    return np.asarray(im)


def box_edges_2d(boxes: torch.Tensor, K: torch.Tensor, cam_from_world: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Projected edges of 3D boxes ``(M, 7)`` (world): segments ``(S, 2, 2)`` and the box index of each.

    Edges with an end behind the camera (``z < 0.1`` m) are left out.
    """
    from ..geometry import BOX_EDGES, box_corners, project_points, transform_points

    c = transform_points(cam_from_world, box_corners(boxes).reshape(-1, 3)).reshape(-1, 8, 3)
    uv, z, _ = project_points(c, K)
    e = torch.tensor(BOX_EDGES)
    ok = (z[:, e[:, 0]] > 0.1) & (z[:, e[:, 1]] > 0.1)  # (M, 12)
    segs = torch.stack([uv[:, e[:, 0]], uv[:, e[:, 1]]], -2)  # (M, 12, 2, 2)
    owner = torch.arange(len(boxes))[:, None].expand_as(ok)
    return segs[ok].cpu().numpy(), owner[ok].cpu().numpy()


def frustum_lines(K: torch.Tensor, cam_from_world: torch.Tensor, H: int, W: int, depth: float) -> np.ndarray:
    """World-frame wireframe of a camera's frustum to ``depth``: ``(16, 3)`` segment end points."""
    from ..geometry import invert_rigid, transform_points, unproject_points

    corners = torch.tensor([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]], dtype=K.dtype)
    far = unproject_points(corners, torch.full((4,), depth, dtype=K.dtype), K)
    pts = transform_points(invert_rigid(cam_from_world), torch.cat([torch.zeros(1, 3, dtype=K.dtype), far]))
    o, c = pts[0], pts[1:]
    segs = [(o, c[i]) for i in range(4)] + [(c[i], c[(i + 1) % 4]) for i in range(4)]
    return torch.stack([torch.stack(s) for s in segs]).reshape(-1, 3).cpu().numpy()
