"""KITTI raw video layout: ``<root>/<date>/calib_cam_to_cam.txt`` and
``<root>/<date>/<drive>/image_02/data/<10-digit frame>.png`` (the left colour camera), with
optional ground-truth depth in the KITTI depth layout ``<drive>/proj_depth/groundtruth/image_02/``.

``P_rect_02`` of the calibration file is camera 2's rectified projection; its left 3x3 block is
the intrinsics ``K`` (pixel centres at integers, as in unrender). :func:`write_kitti_raw` writes
the same layout (``unrender synth streets --format kitti-raw``), so the reader is tested on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...io import atomic_path, atomic_write_text
from .errors import FormatError, MissingFileError, require_file
from .images import read_rgb
from .kitti import write_kitti_depth_png

__all__ = ["KittiRawDrive", "read_kitti_cam_to_cam", "read_kitti_raw", "read_kitti_raw_image", "write_kitti_raw"]


@dataclass
class KittiRawDrive:
    """One drive: its frames in order, camera 2's intrinsics and image size."""

    date: str
    drive: str
    frames: list[Path]
    K: torch.Tensor  # (3, 3) float64
    height: int
    width: int
    depth: list[Path | None]
    """Ground-truth depth PNG per frame where the drive has one (``proj_depth/groundtruth``)."""


def read_kitti_cam_to_cam(path: str | Path) -> dict[str, torch.Tensor]:
    """Parse ``calib_cam_to_cam.txt``: every numeric entry as a flat float64 tensor, plus ``K``
    (``P_rect_02[:, :3]``) and ``size`` (``S_rect_02`` as ``(W, H)``). Non-numeric entries
    (``calib_time``) are skipped."""
    path = require_file(path, "KITTI calib_cam_to_cam file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text file") from None
    out: dict[str, torch.Tensor] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, vals = (s.strip() for s in line.split(":", 1))
        if key == "calib_time":
            continue
        try:
            out[key] = torch.tensor([float(v) for v in vals.split()], dtype=torch.float64)
        except ValueError:
            raise FormatError(f"{path}: non-numeric value in {line!r}") from None
    for key, n in (("P_rect_02", 12), ("S_rect_02", 2)):
        if key not in out:
            raise FormatError(f"{path}: no {key} entry (camera 2's rectified projection and size)")
        if out[key].numel() != n:
            raise FormatError(f"{path}: {key} has {out[key].numel()} values, expected {n}")
        if not bool(torch.isfinite(out[key]).all()):
            raise FormatError(f"{path}: {key} holds NaN or inf")
    P = out["P_rect_02"].reshape(3, 4)
    if P[0, 0] <= 0 or P[1, 1] <= 0:
        raise FormatError(f"{path}: P_rect_02 has a focal length <= 0 (fx {P[0, 0]:g}, fy {P[1, 1]:g})")
    W, H = out["S_rect_02"].tolist()
    if W < 1 or H < 1 or W != int(W) or H != int(H):
        raise FormatError(f"{path}: S_rect_02 (image size) must be two positive integers, got {W:g} {H:g}")
    out["K"] = out["P_rect_02"].reshape(3, 4)[:, :3].clone()
    out["size"] = out["S_rect_02"].clone()
    return out


def read_kitti_raw(root: str | Path) -> list[KittiRawDrive]:
    """Every drive under ``root`` (sorted by date and drive) with at least one ``image_02`` frame."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"KITTI raw root {root} does not exist")
    drives = []
    for calib in sorted(root.glob("*/calib_cam_to_cam.txt")):
        cal = read_kitti_cam_to_cam(calib)
        W, H = (int(v) for v in cal["size"].tolist())
        for d in sorted(p for p in calib.parent.iterdir() if (p / "image_02" / "data").is_dir()):
            frames = sorted((d / "image_02" / "data").glob("*.png"))
            if not frames:
                continue
            gt_dir = d / "proj_depth" / "groundtruth" / "image_02"
            depth = [(gt_dir / f.name) if (gt_dir / f.name).is_file() else None for f in frames]
            drives.append(KittiRawDrive(calib.parent.name, d.name, frames, cal["K"], H, W, depth))
    if not drives:
        raise FormatError(f"{root}: no <date>/calib_cam_to_cam.txt with <drive>/image_02/data/*.png beside it")
    return drives


def read_kitti_raw_image(path: str | Path) -> torch.Tensor:
    """An ``image_02`` frame -> ``(3, H, W)`` float in [0, 1]."""
    return read_rgb(path, "KITTI raw image")


def _calib_text(K: torch.Tensor, H: int, W: int) -> str:
    P = torch.cat([K.double(), torch.zeros(3, 1, dtype=torch.float64)], 1)
    fmt = lambda t: " ".join(f"{v:.6e}" for v in t.reshape(-1).tolist())  # noqa: E731
    eye = torch.eye(3, dtype=torch.float64)
    lines = ["calib_time: 01-Jan-2026 00:00:00", "corner_dist: 9.950000e-02"]
    for cam in ("00", "02"):
        lines += [f"S_rect_{cam}: {W:.6e} {H:.6e}", f"R_rect_{cam}: {fmt(eye)}", f"P_rect_{cam}: {fmt(P)}"]
    return "\n".join(lines) + "\n"


def write_kitti_raw(
    root: str | Path, date: str, drive: str, images: torch.Tensor, K: torch.Tensor, *,
    depth: torch.Tensor | None = None,
) -> Path:  # fmt: skip
    """Write a video in the KITTI raw layout; every file is written atomically.

    Args:
        images: ``(N, 3, H, W)`` float in [0, 1] or uint8; K: ``(3, 3)``.
        depth: ``(N, 1, H, W)`` metres (0 = none), written as KITTI depth PNGs (uint16, x256).

    Returns:
        the drive folder.
    """
    from PIL import Image

    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"write_kitti_raw: images must be (N, 3, H, W), got {tuple(images.shape)}")
    N, _, H, W = images.shape
    day = Path(root) / date
    out = day / drive
    (out / "image_02" / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_text(day / "calib_cam_to_cam.txt", _calib_text(K, H, W))
    u8 = images if images.dtype == torch.uint8 else (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    for i in range(N):
        with atomic_path(out / "image_02" / "data" / f"{i:010d}.png") as tmp:
            Image.fromarray(u8[i].permute(1, 2, 0).numpy()).save(tmp, format="PNG")
    if depth is not None:
        gt = out / "proj_depth" / "groundtruth" / "image_02"
        gt.mkdir(parents=True, exist_ok=True)
        for i in range(N):
            write_kitti_depth_png(gt / f"{i:010d}.png", depth[i, 0])
    return out
