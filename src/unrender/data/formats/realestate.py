"""RealEstate10K camera files.

Line 1 is the video URL; every other line is ``timestamp fx fy cx cy k1 k2 r11 r12 r13 t1 r21 ... t3``
with intrinsics normalised by the image size and a 3x4 world-to-camera matrix in
OpenCV axes. Normalised ``cx = 0.5`` means the image centre, i.e. pixel edges scale:
``cx_px = cx * W - 0.5`` in unrender's integer-centre convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import FormatError, require_file

__all__ = ["RealEstateClip", "read_realestate10k"]


@dataclass
class RealEstateClip:
    url: str
    timestamps: torch.Tensor  # (N,) long, microseconds
    intrinsics: torch.Tensor  # (N, 4) fx, fy, cx, cy normalised by (W, H)
    cam_from_world: torch.Tensor  # (N, 4, 4)

    def K(self, H: int, W: int) -> torch.Tensor:
        """``(N, 3, 3)`` pixel intrinsics for images of ``H x W``."""
        fx, fy, cx, cy = self.intrinsics.unbind(-1)
        K = torch.zeros(len(fx), 3, 3, dtype=torch.float64)
        K[:, 0, 0], K[:, 1, 1] = fx * W, fy * H
        K[:, 0, 2], K[:, 1, 2] = cx * W - 0.5, cy * H - 0.5
        K[:, 2, 2] = 1
        return K


def read_realestate10k(path: str | Path) -> RealEstateClip:
    path = require_file(path, "RealEstate10K camera file")
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not a text file ({e})") from None
    if len(lines) < 2:
        raise FormatError(f"{path}: expected a URL line and at least one camera line")
    ts, intr, mats = [], [], []
    for n, ln in enumerate(lines[1:], 2):
        parts = ln.split()
        if len(parts) != 19:
            raise FormatError(f"{path}:{n}: expected 19 fields, got {len(parts)}")
        try:
            ts.append(int(parts[0]))
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise FormatError(f"{path}:{n}: non-numeric field") from None
        intr.append(vals[:4])
        mats.append(vals[6:])
    intr_t = torch.tensor(intr, dtype=torch.float64)
    m = torch.tensor(mats, dtype=torch.float64).reshape(-1, 3, 4)
    if not bool(torch.isfinite(m).all() & torch.isfinite(intr_t).all()) or bool((intr_t[:, :2] <= 0).any()):
        raise FormatError(f"{path}: non-finite values or non-positive focal lengths")
    T = torch.eye(4, dtype=torch.float64).repeat(len(m), 1, 1)
    T[:, :3, :] = m
    return RealEstateClip(lines[0], torch.tensor(ts), intr_t, T)
