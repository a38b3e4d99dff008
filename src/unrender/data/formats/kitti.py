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

import torch

from ...geometry.boxes import boxes_from_kitti, boxes_to_kitti
from ...io import atomic_write_text

__all__ = ["KittiObject", "read_kitti_label", "write_kitti_label", "read_kitti_calib"]


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


def read_kitti_label(path: str | Path) -> KittiObject:
    """Parse a KITTI ``label_2`` file (15 values a line, 16 with a score).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line with the wrong number of fields or a non-number, naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI label file not found: {path}")
    types, rows, scores = [], [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (15, 16):
            raise ValueError(f"{path}:{n}: expected 15 or 16 fields, got {len(parts)}")
        try:
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise ValueError(f"{path}:{n}: non-numeric field in {line!r}") from None
        types.append(parts[0])
        rows.append(vals[:14])
        if len(vals) == 15:
            scores.append(vals[14])
    if scores and len(scores) != len(rows):
        raise ValueError(f"{path}: some lines have a score and some do not")
    t = torch.tensor(rows, dtype=torch.float32).reshape(-1, 14)
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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calib file not found: {path}")
    raw: dict[str, list[float]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if ":" not in line:
            continue
        key, vals = line.split(":", 1)
        try:
            raw[key.strip()] = [float(v) for v in vals.split()]
        except ValueError:
            raise ValueError(f"{path}:{n}: non-numeric value in {line!r}") from None
    out: dict[str, torch.Tensor] = {}
    for key, vals in raw.items():
        want = {"R0_rect": 9}.get(key, 12)
        if len(vals) != want:
            raise ValueError(f"{path}: {key} has {len(vals)} values, expected {want}")
        m = torch.tensor(vals, dtype=torch.float64)
        if key == "R0_rect":
            out[key] = m.reshape(3, 3)
        elif key.startswith("Tr_"):
            out[key] = torch.cat([m.reshape(3, 4), torch.tensor([[0.0, 0, 0, 1]], dtype=torch.float64)])
        else:
            out[key] = m.reshape(3, 4)
    if "P2" not in out:
        raise ValueError(f"{path}: no P2 (left colour camera) entry")
    out["K"] = out["P2"][:, :3].clone()
    if "Tr_velo_to_cam" in out:
        out["cam_from_velo"] = out["Tr_velo_to_cam"]
    if "Tr_imu_to_velo" in out:
        out["velo_from_imu"] = out["Tr_imu_to_velo"]
    return out
