"""instant-ngp / NeRF ``transforms.json``: OpenGL camera-to-world -> OpenCV ``cam_from_world``.

Intrinsics come from ``fl_x``/``fl_y``/``cx``/``cy`` (top level or per frame), or from
``camera_angle_x`` (and ``camera_angle_y``) with the principal point at the image centre.
Depth maps (RGB-D captures, nerfstudio's layout) are per frame ``depth_file_path`` (16-bit PNG, or
any single-channel image) with ``depth_unit_scale_factor`` metres per unit at the top level (default
0.001: millimetres); every frame with an image needs one, or none does.
These files put pixel centres at half-integers (the first pixel's centre is (0.5, 0.5)),
unrender at integers, so ``cx - 0.5`` and ``cy - 0.5`` are stored.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...geometry.camera import make_intrinsics
from .cameras import cam_from_world_from_opengl
from .errors import FormatError, require_file

__all__ = ["NerfScene", "read_transforms_json"]


@dataclass
class NerfScene:
    K: torch.Tensor  # (N, 3, 3) pixels, unrender convention
    cam_from_world: torch.Tensor  # (N, 4, 4)
    image_paths: list[Path]  # of the N frames whose image exists
    width: int
    height: int
    distortion: dict[str, float] = field(default_factory=dict)  # k1, k2, p1, p2 as given (not applied)
    missing: list[Path] = field(default_factory=list)  # listed frames whose image file is absent
    depth_paths: list[Path] | None = None  # per frame with an image: its depth map (nerfstudio depth_file_path)
    depth_scale: float = 1e-3  # metres per depth-map unit (nerfstudio depth_unit_scale_factor; default: mm)


def _num(d: dict, key: str, path: Path) -> float:
    v = d[key]
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        raise FormatError(f"{path}: {key!r} must be a finite number, got {v!r}")
    return float(v)


def _angle(d: dict, key: str, path: Path) -> float:
    v = _num(d, key, path)
    if not 0 < v < math.pi:
        raise FormatError(f"{path}: {key!r} is a field of view in radians and must be in (0, pi), got {v}")
    return v


def read_transforms_json(path: str | Path) -> NerfScene:
    """Read a ``transforms.json``; frames whose image is missing are listed in ``missing`` (and warned about).

    Raises:
        MissingFileError: no such file.
        FormatError: malformed JSON, missing or non-numeric camera fields, a bad matrix.
    """
    path = require_file(path, "transforms.json")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise FormatError(f"{path}: expected an object with a non-empty 'frames' list")
    Ks, Ts, images, missing, depths = [], [], [], [], []
    for i, fr in enumerate(meta["frames"]):
        if not isinstance(fr, dict) or "transform_matrix" not in fr or "file_path" not in fr:
            raise FormatError(f"{path}: frame {i} lacks 'file_path' or 'transform_matrix'")
        c = {**meta, **fr}  # per-frame intrinsics override the shared ones
        img = (path.parent / str(fr["file_path"])).resolve()
        if not img.is_file() and not img.suffix:
            img = next((img.with_suffix(s) for s in (".png", ".jpg", ".jpeg") if img.with_suffix(s).is_file()), img)
        if not img.is_file():
            missing.append(img)
            continue
        if "w" not in c or "h" not in c:  # original NeRF files: take the size from the image header
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(img) as im:
                    c["w"], c["h"] = im.size
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                msg = f"{path}: frame {i}: no 'w'/'h' given and {img} is not a readable image ({e})"
                raise FormatError(msg) from None
        try:
            w, h = _num(c, "w", path), _num(c, "h", path)
            if w < 1 or h < 1 or w != int(w) or h != int(h):
                raise FormatError(f"{path}: frame {i}: image size 'w' x 'h' must be positive integers, got {w} x {h}")
            w, h = int(w), int(h)
            if "fl_x" in c:
                fx = _num(c, "fl_x", path)
                fy = _num(c, "fl_y", path) if "fl_y" in c else fx
            else:
                fx = 0.5 * w / math.tan(0.5 * _angle(c, "camera_angle_x", path))
                fy = 0.5 * h / math.tan(0.5 * _angle(c, "camera_angle_y", path)) if "camera_angle_y" in c else fx
            cx = _num(c, "cx", path) if "cx" in c else w / 2
            cy = _num(c, "cy", path) if "cy" in c else h / 2
        except KeyError as e:
            raise FormatError(f"{path}: frame {i}: missing camera field {e}") from None
        try:
            m = torch.tensor(fr["transform_matrix"], dtype=torch.float64)
        except (TypeError, ValueError):
            raise FormatError(f"{path}: frame {i}: transform_matrix is not a numeric matrix") from None
        if m.shape != (4, 4) or not bool(torch.isfinite(m).all()):
            raise FormatError(f"{path}: frame {i}: transform_matrix must be a finite 4x4, got shape {tuple(m.shape)}")
        if fx <= 0 or fy <= 0:
            raise FormatError(f"{path}: frame {i}: focal lengths must be positive, got {fx}, {fy}")
        depth = fr.get("depth_file_path")
        if depth is not None:
            depths.append((path.parent / str(depth)).resolve())
        Ks.append(make_intrinsics(fx, fy, cx - 0.5, cy - 0.5, dtype=torch.float64))
        Ts.append(cam_from_world_from_opengl(m))
        images.append(img)
    if missing:
        warnings.warn(f"{path}: {len(missing)} listed frame(s) have no image file, e.g. {missing[0]}", stacklevel=2)
    if not Ks:
        raise FormatError(f"{path}: none of the {len(meta['frames'])} listed images exist")
    dist = {k: _num(meta, k, path) for k in ("k1", "k2", "k3", "p1", "p2") if k in meta}
    if depths and len(depths) != len(images):
        raise FormatError(f"{path}: {len(depths)} of the {len(images)} frames with an image give a depth_file_path "
                          "(all or none must)")  # fmt: skip
    scale = _num(meta, "depth_unit_scale_factor", path) if "depth_unit_scale_factor" in meta else 1e-3
    if not scale > 0:
        raise FormatError(f"{path}: depth_unit_scale_factor must be > 0, got {scale}")
    return NerfScene(torch.stack(Ks), torch.stack(Ts), images, w, h, dist, missing, depths or None, scale)
