"""TUM RGB-D sequences: ``rgb.txt``, ``depth.txt`` and ``groundtruth.txt`` in one folder.

``rgb.txt`` / ``depth.txt``: ``timestamp filename`` per line (``#`` comments); depth PNGs are uint16 with
5000 units per metre (0 = no data). ``groundtruth.txt``: ``timestamp tx ty tz qx qy qz qw``, the pose of
the colour camera's optical centre in the world (``world_from_cam``; OpenCV axes, like unrender).
Each colour frame is paired with the depth frame and the pose nearest in time (within ``max_dt``
seconds), as TUM's ``associate.py`` does. The intrinsics are not in the folder: TUM's ROS default
(fx = fy = 525, cx = 319.5, cy = 239.5 at 640x480) unless the caller gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...geometry import invert_rigid, make_intrinsics, make_rigid, quaternion_to_matrix
from .errors import FormatError, require_file

__all__ = ["TUM_DEPTH_SCALE", "TumSequence", "read_tum_rgbd", "tum_default_intrinsics"]

TUM_DEPTH_SCALE = 5000.0  # depth PNG units per metre


@dataclass
class TumSequence:
    rgb_paths: list[Path]
    depth_paths: list[Path]
    cam_from_world: torch.Tensor  # (N, 4, 4) float64
    timestamps: torch.Tensor  # (N,) float64, of the colour frames


def tum_default_intrinsics() -> torch.Tensor:
    """TUM's ROS default intrinsics of the 640x480 colour camera (the dataset's "default" calibration)."""
    return make_intrinsics(525.0, 525.0, 319.5, 239.5, dtype=torch.float64)


def _table(path: Path, columns: int) -> list[list[str]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != columns:
            raise FormatError(f"{path}: line {n}: expected {columns} fields, got {len(parts)}: {line[:80]!r}")
        try:
            if not math.isfinite(float(parts[0])):
                raise ValueError
        except ValueError:
            raise FormatError(f"{path}: line {n}: the timestamp {parts[0]!r} is not a finite number") from None
        rows.append(parts)
    if not rows:
        raise FormatError(f"{path}: no entries")
    return rows


def _nearest(t: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ref)
    ref_sorted = ref[order]
    if len(ref_sorted) == 1:
        j = np.zeros(len(t), dtype=int)
    else:
        j = np.clip(np.searchsorted(ref_sorted, t), 1, len(ref_sorted) - 1)
        left, right = ref_sorted[j - 1], ref_sorted[j]
        j = np.where(np.abs(t - left) <= np.abs(t - right), j - 1, j)
    return order[j], np.abs(ref_sorted[j] - t)


def read_tum_rgbd(folder: str | Path, *, max_dt: float = 0.02) -> TumSequence:
    """The colour frames of a TUM RGB-D folder that have a depth frame and a pose within ``max_dt`` s.

    Raises:
        MissingFileError: the folder lacks rgb.txt, depth.txt or groundtruth.txt, or a listed image.
        FormatError: a malformed line, a non-unit quaternion, no frame with depth and pose.
    """
    folder = Path(folder)
    rgb = _table(require_file(folder / "rgb.txt", "TUM rgb.txt"), 2)
    depth = _table(require_file(folder / "depth.txt", "TUM depth.txt"), 2)
    gt_path = require_file(folder / "groundtruth.txt", "TUM groundtruth.txt")
    gt = _table(gt_path, 8)
    try:
        poses = np.array([[float(v) for v in r] for r in gt])
    except ValueError as e:
        raise FormatError(f"{gt_path}: a pose is not numeric ({e})") from None
    if not np.isfinite(poses).all():
        raise FormatError(f"{gt_path}: NaN or inf in a pose")
    norms = np.linalg.norm(poses[:, 4:8], axis=1)
    if (np.abs(norms - 1) > 1e-3).any():
        raise FormatError(f"{gt_path}: quaternion qx qy qz qw of norm {norms[np.abs(norms - 1).argmax()]:.4f}, not 1")
    t_rgb = np.array([float(r[0]) for r in rgb])
    di, ddt = _nearest(t_rgb, np.array([float(r[0]) for r in depth]))
    pi, pdt = _nearest(t_rgb, poses[:, 0])
    keep = np.flatnonzero((ddt <= max_dt) & (pdt <= max_dt))
    if not len(keep):
        raise FormatError(f"{folder}: no colour frame has a depth frame and a pose within {max_dt} s")
    rgb_paths, depth_paths = [], []
    for i in keep:
        for p in (folder / rgb[i][1], folder / depth[di[i]][1]):
            require_file(p, "TUM image")
        rgb_paths.append(folder / rgb[i][1])
        depth_paths.append(folder / depth[di[i]][1])
    q = torch.from_numpy(poses[pi[keep]][:, [7, 4, 5, 6]])  # (w, x, y, z)
    world_from_cam = make_rigid(quaternion_to_matrix(q / q.norm(dim=-1, keepdim=True)),
                                torch.from_numpy(poses[pi[keep]][:, 1:4]))  # fmt: skip
    return TumSequence(rgb_paths, depth_paths, invert_rigid(world_from_cam), torch.from_numpy(t_rgb[keep]))
