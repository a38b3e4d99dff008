"""PLY point clouds: ``float x, y, z`` and optional ``uchar red, green, blue`` per vertex.

:func:`write_ply` writes binary little-endian (what MeshLab, Open3D and CloudCompare read);
:func:`read_ply` reads that and the ASCII form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...io import atomic_path
from .errors import FormatError, require_file

__all__ = ["write_ply", "read_ply"]

_TYPES = {"float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8", "uchar": "u1", "uint8": "u1",
          "int": "<i4", "int32": "<i4", "uint": "<u4", "short": "<i2", "ushort": "<u2", "char": "i1"}  # fmt: skip


def write_ply(path: str | Path, points: torch.Tensor | np.ndarray, colors: torch.Tensor | np.ndarray | None = None):
    """Write ``(N, 3)`` points (and ``(N, 3)`` colours, uint8 or float in [0, 1]) atomically."""
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"write_ply: points must be (N, 3), got {pts.shape}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        col = np.asarray(colors.detach().cpu() if isinstance(colors, torch.Tensor) else colors)
        if col.shape != pts.shape:
            raise ValueError(f"write_ply: colors must be (N, 3) like the points, got {col.shape}")
        if col.dtype != np.uint8:
            col = (np.clip(col, 0, 1) * 255 + 0.5).astype(np.uint8)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(len(pts), dtype=fields)
    rec["x"], rec["y"], rec["z"] = pts.T
    if colors is not None:
        rec["red"], rec["green"], rec["blue"] = col.T
    props = "".join(f"property {'float' if t == '<f4' else 'uchar'} {n}\n" for n, t in fields)
    head = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\n{props}end_header\n"
    with atomic_path(path) as tmp:
        tmp.write_bytes(head.encode("ascii") + rec.tobytes())


def read_ply(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vertices ``(N, 3)`` float32 and colours ``(N, 3)`` uint8 (None if the file has none).

    Raises:
        MissingFileError: no such file.
        FormatError: not a PLY point cloud of this form, truncated, or holding NaN/inf.
    """
    path = require_file(path, "PLY file")
    raw = path.read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise FormatError(f"{path}: not a PLY file (no 'ply' magic or no 'end_header')")
    try:
        lines = raw[:end].decode("ascii").splitlines()[1:]
    except UnicodeDecodeError:
        raise FormatError(f"{path}: the PLY header is not ASCII") from None
    fmt, count, fields, element = None, None, [], None
    for ln in lines:
        parts = ln.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format" and len(parts) == 3:
            fmt = parts[1]
        elif parts[0] == "element" and len(parts) == 3:
            element = parts[1]
            if element == "vertex":
                if not parts[2].isdigit():
                    raise FormatError(f"{path}: bad vertex count {parts[2]!r}")
                count = int(parts[2])
        elif parts[0] == "property" and element == "vertex":
            if len(parts) != 3 or parts[1] not in _TYPES:
                raise FormatError(f"{path}: unsupported vertex property {ln!r}")
            fields.append((parts[2], _TYPES[parts[1]]))
        elif parts[0] == "element":
            raise FormatError(f"{path}: malformed line {ln!r}")
    names = [n for n, _ in fields]
    if count is None or not {"x", "y", "z"} <= set(names) or fmt not in ("binary_little_endian", "ascii"):
        raise FormatError(f"{path}: expected vertices with x, y, z in binary_little_endian or ascii format")
    body = raw[end + len(b"end_header\n") :]
    try:
        if fmt == "ascii":
            rows = [r.split() for r in body.decode("ascii").splitlines() if r.strip()][:count]
            rec = np.array([tuple(float(v) for v in r) for r in rows], dtype=[(n, "<f8") for n in names])
        else:
            dtype = np.dtype(fields)
            if len(body) < count * dtype.itemsize:
                raise FormatError(f"{path}: truncated: {count} vertices need {count * dtype.itemsize} bytes")
            rec = np.frombuffer(body, dtype=dtype, count=count)
    except (ValueError, UnicodeDecodeError, TypeError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{path}: malformed vertex data ({e})") from None
    if len(rec) != count:
        raise FormatError(f"{path}: the header says {count} vertices, the file holds {len(rec)}")
    pts = np.stack([rec["x"], rec["y"], rec["z"]], 1).astype(np.float32)
    if not np.isfinite(pts).all():
        raise FormatError(f"{path}: NaN or inf vertex coordinates")
    cols = None
    if {"red", "green", "blue"} <= set(names):
        cols = torch.from_numpy(np.stack([rec["red"], rec["green"], rec["blue"]], 1).astype(np.uint8))
    return torch.from_numpy(pts), cols
