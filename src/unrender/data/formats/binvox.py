"""binvox voxel files (``#binvox 1``): run-length encoded occupancy with a metric placement.

binvox stores voxels with y fastest, then z, then x (index ``x * D * D + z * D + y``);
unrender volumes are ``(Z, Y, X)``. The grid covers ``translate + [0, scale]`` on
every axis. Axes are kept as in the file (binvox carries no camera convention).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...geometry.grids import VoxelGrid
from ...io import atomic_path
from .errors import FormatError, require_file

__all__ = ["read_binvox", "write_binvox"]


def read_binvox(path: str | Path) -> tuple[torch.Tensor, VoxelGrid]:
    """Occupancy ``(Z, Y, X)`` bool and its :class:`VoxelGrid`."""
    path = require_file(path, "binvox file")
    raw = path.read_bytes()
    header, pos = [], 0
    try:
        while True:
            end = raw.index(b"\n", pos)
            line = raw[pos:end].decode("ascii").strip()
            pos = end + 1
            header.append(line)
            if line == "data":
                break
            if len(header) > 10:
                raise ValueError("no 'data' line")
        if not header[0].startswith("#binvox"):
            raise ValueError("missing '#binvox' magic")
        fields = {ln.split()[0]: ln.split()[1:] for ln in header[1:-1]}
        dims = [int(v) for v in fields["dim"]]
        translate = [float(v) for v in fields["translate"]]
        scale = float(fields["scale"][0])
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: malformed binvox header ({e})") from None
    if (len(dims) != 3 or min(dims) <= 0 or len(translate) != 3 or not 0 < scale < math.inf
            or not all(math.isfinite(t) for t in translate)):  # fmt: skip
        raise FormatError(f"{path}: bad dim/translate/scale in the header")
    runs = np.frombuffer(raw[pos:], dtype=np.uint8)
    if len(runs) % 2:
        raise FormatError(f"{path}: truncated run-length data (odd byte count)")
    values, counts = runs[0::2], runs[1::2].astype(np.int64)
    total = int(dims[0]) * dims[1] * dims[2]
    if counts.sum() != total:
        raise FormatError(f"{path}: run lengths cover {counts.sum()} voxels, the header says {total}")
    flat = np.repeat(values > 0, counts)
    vox = flat.reshape(dims[0], dims[2], dims[1])  # (X, Z, Y)
    occ = torch.from_numpy(np.ascontiguousarray(vox.transpose(1, 2, 0)))  # (Z, Y, X)
    lo = tuple(translate)
    grid = VoxelGrid(lo, tuple(t + scale for t in translate), (dims[0], dims[1], dims[2]))
    return occ, grid


def write_binvox(path: str | Path, occupancy: torch.Tensor, grid: VoxelGrid) -> None:
    """Write ``(Z, Y, X)`` occupancy on a cubic grid (equal resolution and extent on all axes)."""
    X, Y, Z = grid.resolution
    ext = [hi - lo for lo, hi in zip(grid.bounds_min, grid.bounds_max, strict=True)]
    if not (X == Y == Z) or max(ext) - min(ext) > 1e-9:
        raise ValueError("binvox needs a cubic grid (same resolution and extent on every axis)")
    flat = occupancy.bool().cpu().numpy().transpose(2, 0, 1).reshape(-1).astype(np.uint8)  # (X, Z, Y) order
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(flat)]]))
    out = bytearray()
    for s, n in zip(starts, lengths, strict=True):
        while n > 0:
            k = min(int(n), 255)
            out += bytes([flat[s], k])
            n -= k
    head = f"#binvox 1\ndim {X} {Y} {Z}\ntranslate {grid.bounds_min[0]} {grid.bounds_min[1]} {grid.bounds_min[2]}\n"
    head += f"scale {ext[0]}\ndata\n"
    with atomic_path(path) as tmp:
        tmp.write_bytes(head.encode() + bytes(out))
