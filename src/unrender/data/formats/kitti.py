"""KITTI object benchmark files: ``label_2/*.txt`` and ``calib/*.txt``.

A label line is ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]``
with the location ``(x, y, z)`` at the *bottom centre* of the box in the
rectified camera frame (which is unrender's camera frame: x right, y down, z
forward). :func:`read_kitti_label` turns it into unrender boxes
``(cx, cy, cz, sx, sy, sz, yaw)`` with the centre at mid-height.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...geometry.boxes import boxes_from_kitti, boxes_to_kitti
from ...geometry.camera import project_points
from ...geometry.poses import transform_points
from ...io import atomic_write_text
from .errors import FormatError, require_file

__all__ = [
    "KittiObject",
    "read_kitti_label",
    "write_kitti_label",
    "read_kitti_calib",
    "read_kitti_velodyne",
    "velodyne_depth_map",
    "read_kitti_depth_png",
    "write_kitti_depth_png",
]


@dataclass
class KittiObject:
    """The parsed objects of one label file (``N`` of them)."""

    types: list[str]
    truncated: torch.Tensor  # (N,)
    occluded: torch.Tensor  # (N,) long
    alpha: torch.Tensor  # (N,)
    boxes_2d: torch.Tensor  # (N, 4) x1, y1, x2, y2 in pixels
    boxes: torch.Tensor  # (N, 7) unrender boxes
    scores: torch.Tensor | None = None  # (N,) for detection results


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not a text file ({e})") from None


def read_kitti_label(path: str | Path) -> KittiObject:
    """Parse a KITTI ``label_2`` file (15 values a line, 16 with a score).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line with the wrong number of fields or a non-number, naming file and line.
    """
    path = require_file(path, "KITTI label file")
    types, rows, scores = [], [], []
    for n, line in enumerate(_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (15, 16):
            raise FormatError(f"{path}:{n}: expected 15 or 16 fields, got {len(parts)}")
        try:
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise FormatError(f"{path}:{n}: non-numeric field in {line!r}") from None
        if not all(np.isfinite(vals)):
            raise FormatError(f"{path}:{n}: NaN or inf in {line!r}")
        types.append(parts[0])
        rows.append(vals[:14])
        if len(vals) == 15:
            scores.append(vals[14])
    if scores and len(scores) != len(rows):
        raise FormatError(f"{path}: some lines have a score and some do not")
    t = torch.tensor(rows, dtype=torch.float32).reshape(-1, 14)
    if not bool(torch.isfinite(t).all() and torch.isfinite(torch.tensor(scores, dtype=torch.float32)).all()):
        raise FormatError(f"{path}: a value is out of the float32 range")
    boxes = boxes_from_kitti(t[:, 7:10], t[:, 10:13], t[:, 13])
    return KittiObject(
        types=types, truncated=t[:, 0], occluded=t[:, 1].long(), alpha=t[:, 2], boxes_2d=t[:, 3:7], boxes=boxes,
        scores=torch.tensor(scores) if scores else None,
    )  # fmt: skip


def write_kitti_label(path: str | Path, obj: KittiObject) -> None:
    """Write ``obj`` as a KITTI label file (atomically)."""
    hwl, xyz, ry = boxes_to_kitti(obj.boxes.detach().double().cpu())
    lines = []
    for i, typ in enumerate(obj.types):
        vals = [float(obj.truncated[i]), int(obj.occluded[i]), float(obj.alpha[i]), *obj.boxes_2d[i].tolist(),
                *hwl[i].tolist(), *xyz[i].tolist(), float(ry[i])]  # fmt: skip
        if obj.scores is not None:
            vals.append(float(obj.scores[i]))
        lines.append(" ".join([typ] + [f"{v:.2f}" if isinstance(v, float) else str(v) for v in vals]))
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))


def read_kitti_calib(path: str | Path) -> dict[str, torch.Tensor]:
    """Parse a KITTI ``calib`` file: ``P0..P3`` as ``(3, 4)``, ``R0_rect`` as ``(3, 3)``,
    ``Tr_velo_to_cam`` and ``Tr_imu_to_velo`` as ``(4, 4)`` (the latter named
    ``cam_from_velo`` and ``velo_from_imu`` as well), and ``K`` (= ``P2[:, :3]``).
    """
    path = require_file(path, "KITTI calib file")
    raw: dict[str, list[float]] = {}
    for n, line in enumerate(_text(path).splitlines(), 1):
        if ":" not in line:
            continue
        key, vals = line.split(":", 1)
        try:
            raw[key.strip()] = [float(v) for v in vals.split()]
        except ValueError:
            raise FormatError(f"{path}:{n}: non-numeric value in {line!r}") from None
    out: dict[str, torch.Tensor] = {}
    for key, vals in raw.items():
        want = {"R0_rect": 9}.get(key, 12)
        if len(vals) != want:
            raise FormatError(f"{path}: {key} has {len(vals)} values, expected {want}")
        m = torch.tensor(vals, dtype=torch.float64)
        if not bool(torch.isfinite(m).all()):
            raise FormatError(f"{path}: {key} holds NaN or inf")
        if key == "R0_rect":
            out[key] = m.reshape(3, 3)
        elif key.startswith("Tr_"):
            out[key] = torch.cat([m.reshape(3, 4), torch.tensor([[0.0, 0, 0, 1]], dtype=torch.float64)])
        else:
            out[key] = m.reshape(3, 4)
    if "P2" not in out:
        raise FormatError(f"{path}: no P2 (left colour camera) entry")
    for key in (k for k in out if k.startswith("P")):
        if out[key][0, 0] <= 0 or out[key][1, 1] <= 0:
            raise FormatError(f"{path}: {key} has a focal length <= 0 (fx {out[key][0, 0]:g}, fy {out[key][1, 1]:g})")
    out.setdefault("R0_rect", torch.eye(3, dtype=torch.float64))
    out["K"] = out["P2"][:, :3].clone()
    if "Tr_velo_to_cam" in out:
        out["cam_from_velo"] = out["Tr_velo_to_cam"]
    if "Tr_imu_to_velo" in out:
        out["velo_from_imu"] = out["Tr_imu_to_velo"]
    return out


def read_kitti_velodyne(path: str | Path) -> torch.Tensor:
    """Velodyne scan ``(N, 4)`` float32: x, y, z (metres, LiDAR frame: x forward, y left, z up), reflectance."""
    path = require_file(path, "KITTI velodyne file")
    raw = path.read_bytes()
    if not raw:
        raise FormatError(f"{path}: empty file (a scan holds at least one (x, y, z, r) float32 record)")
    if len(raw) % 16:
        raise FormatError(f"{path}: {len(raw)} bytes is not a whole number of (x, y, z, r) float32 records")
    pts = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).reshape(-1, 4).copy())
    if not bool(torch.isfinite(pts).all()):
        raise FormatError(f"{path}: NaN or inf in the point records")
    return pts


def velodyne_depth_map(
    points: torch.Tensor, calib: dict[str, torch.Tensor], H: int, W: int, camera: int = 2
) -> torch.Tensor:
    """Sparse z-depth ``(1, H, W)`` of LiDAR points in camera ``camera`` (nearest point per pixel, 0 = none)."""
    from .cameras import kitti_cam_from_velo

    cam = transform_points(kitti_cam_from_velo(calib, camera), points[:, :3].double())
    uv, z, ok = project_points(cam, calib[f"P{camera}"][:, :3])
    ij = torch.floor(uv + 0.5).long()
    ok &= (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
    flat = ij[ok, 1] * W + ij[ok, 0]
    depth = torch.full((H * W,), float("inf"), dtype=torch.float64)
    depth.scatter_reduce_(0, flat, z[ok], reduce="amin")
    depth = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    return depth.float().reshape(1, H, W)


def write_kitti_depth_png(path: str | Path, depth: torch.Tensor, *, scale: float = 256.0) -> Path:
    """Write ``(1, H, W)`` or ``(H, W)`` metres as a KITTI depth PNG (uint16, metres x 256, 0 = no data;
    depths beyond 255.99 m are clipped) atomically."""
    from PIL import Image

    from ...io import atomic_path

    d = depth.detach().double().cpu()
    d = d[0] if d.dim() == 3 and d.shape[0] == 1 else d
    if d.dim() != 2:
        raise ValueError(f"write_kitti_depth_png: depth must be (1, H, W) or (H, W), got {tuple(depth.shape)}")
    d = torch.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    arr = (d * scale).round().clamp(0, 65535).numpy().astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)


def read_kitti_depth_png(path: str | Path, *, scale: float = 256.0) -> torch.Tensor:
    """KITTI depth PNG (uint16, metres x 256, 0 = no data) -> ``(1, H, W)`` float32 metres."""
    from PIL import Image, UnidentifiedImageError

    path = require_file(path, "KITTI depth PNG")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FormatError(f"{path}: not a readable PNG ({e})") from None
    if arr.ndim != 2 or arr.dtype not in (np.uint16, np.int32, np.uint8) or arr.max() <= 255 and arr.dtype == np.uint8:
        raise FormatError(f"{path}: expected a single-channel 16-bit depth PNG, got {arr.dtype} of shape {arr.shape}")
    return torch.from_numpy(arr.astype(np.float32) / scale)[None]
