"""COLMAP text models (``cameras.txt``, ``images.txt``, ``points3D.txt``).

COLMAP's poses are world-to-camera in OpenCV axes (``qvec`` is ``w, x, y, z``); its
pixel centres are at half-integers (the first pixel's centre is (0.5, 0.5)), so the
principal point is shifted by -0.5 into unrender's convention. Distortion
parameters are returned as given, not applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ...geometry.camera import make_intrinsics
from .cameras import cam_from_world_from_colmap
from .errors import FormatError, require_file

__all__ = ["ColmapModel", "read_colmap_text"]

# model -> (number of params, how to read fx, fy, cx, cy from them)
_MODELS = {
    "SIMPLE_PINHOLE": (3, lambda p: (p[0], p[0], p[1], p[2])),
    "PINHOLE": (4, lambda p: (p[0], p[1], p[2], p[3])),
    "SIMPLE_RADIAL": (4, lambda p: (p[0], p[0], p[1], p[2])),
    "RADIAL": (5, lambda p: (p[0], p[0], p[1], p[2])),
    "OPENCV": (8, lambda p: (p[0], p[1], p[2], p[3])),
    "FULL_OPENCV": (12, lambda p: (p[0], p[1], p[2], p[3])),
}


@dataclass
class ColmapModel:
    cameras: dict[int, dict]  # id -> {"model", "width", "height", "K" (3, 3), "params" (list)}
    image_names: list[str]
    camera_ids: list[int]
    cam_from_world: torch.Tensor  # (N, 4, 4)
    points: torch.Tensor  # (P, 3) world
    colors: torch.Tensor  # (P, 3) uint8

    def K(self) -> torch.Tensor:
        """``(N, 3, 3)`` intrinsics of every image."""
        return torch.stack([self.cameras[c]["K"] for c in self.camera_ids])


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not a text file ({e})") from None
    return [(n, ln.split()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.startswith("#")]


def _floats(path: Path, n: int, vals: list[str]) -> list[float]:
    try:
        out = [float(v) for v in vals]
    except ValueError:
        raise FormatError(f"{path}:{n}: non-numeric field in {' '.join(vals)!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise FormatError(f"{path}:{n}: NaN or inf in {' '.join(vals)!r}")
    return out


def _int(path: Path, n: int, v: str, what: str) -> int:
    if not v.isdigit():
        raise FormatError(f"{path}:{n}: {what} must be a non-negative integer, got {v!r}")
    return int(v)


def read_colmap_text(folder: str | Path) -> ColmapModel:
    folder = Path(folder)
    cam_path = require_file(folder / "cameras.txt", "COLMAP cameras.txt")
    img_path = require_file(folder / "images.txt", "COLMAP images.txt")
    cameras: dict[int, dict] = {}
    for n, r in _rows(cam_path):
        if len(r) < 4 or r[1] not in _MODELS:
            raise FormatError(f"{cam_path}:{n}: expected 'ID MODEL W H PARAMS' with a model in {sorted(_MODELS)}")
        count, pick = _MODELS[r[1]]
        p = _floats(cam_path, n, r[2:])
        if len(p) != 2 + count:
            raise FormatError(f"{cam_path}:{n}: {r[1]} takes {count} parameters, got {len(p) - 2}")
        fx, fy, cx, cy = pick(p[2:])
        if fx <= 0 or fy <= 0:
            raise FormatError(f"{cam_path}:{n}: focal lengths must be positive")
        width, height = _int(cam_path, n, r[2], "width"), _int(cam_path, n, r[3], "height")
        if width <= 0 or height <= 0:
            raise FormatError(f"{cam_path}:{n}: image size must be positive, got {width} x {height}")
        K = make_intrinsics(fx, fy, cx - 0.5, cy - 0.5, dtype=torch.float64)
        cam_id = _int(cam_path, n, r[0], "camera id")
        cameras[cam_id] = {"model": r[1], "width": width, "height": height, "K": K, "params": p[2:]}
    rows = _rows(img_path)
    names, cams, Ts = [], [], []
    # images.txt alternates an image line and its 2D points line (the latter may be empty, so filter by shape)
    for n, r in rows:
        if len(r) == 10 and r[0].isdigit() and r[8].isdigit():
            q = _floats(img_path, n, r[1:8])
            if math.sqrt(sum(v * v for v in q[:4])) < 1e-6:
                raise FormatError(f"{img_path}:{n}: the rotation quaternion is zero")
            if int(r[8]) not in cameras:
                raise FormatError(f"{img_path}:{n}: image refers to unknown camera {r[8]}")
            Ts.append(
                cam_from_world_from_colmap(
                    torch.tensor(q[:4], dtype=torch.float64), torch.tensor(q[4:], dtype=torch.float64)
                )
            )
            names.append(r[9])
            cams.append(int(r[8]))
    if not names:
        raise FormatError(f"{img_path}: no image lines found")
    pts, cols = [], []
    p3 = folder / "points3D.txt"
    if p3.is_file():
        for n, r in _rows(p3):
            if len(r) < 8:
                raise FormatError(f"{p3}:{n}: expected 'ID X Y Z R G B ERROR TRACK...'")
            v = _floats(p3, n, r[1:7])
            pts.append(v[:3])
            cols.append(v[3:6])
    return ColmapModel(
        cameras, names, cams, torch.stack(Ts), torch.tensor(pts, dtype=torch.float64).reshape(-1, 3),
        torch.tensor(cols, dtype=torch.float64).reshape(-1, 3).clamp(0, 255).to(torch.uint8),
    )  # fmt: skip
