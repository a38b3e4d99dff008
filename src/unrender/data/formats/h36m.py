"""Human3.6M-style annotations: an npz of 2D/3D joints (mmpose layout) and a camera JSON.

The npz holds ``imgname (N,)``, ``part (N, 17, 3)`` pixel joints + visibility and
``S (N, 17, 4)`` camera-frame joints in metres + visibility, in the Human3.6M
17-joint order. The camera JSON lists per (subject, camera) ``R`` (3x3), ``T``
(the camera *centre* in world, metres: ``p_cam = R (p_world - T)``), ``f``, ``c``
(pixels, integer pixel centres as OpenCV), ``k`` (3 radial) and ``p`` (2 tangential).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...geometry.camera import make_intrinsics
from ...geometry.poses import make_rigid
from .errors import FormatError, require_file

__all__ = ["H36MSamples", "read_h36m"]


@dataclass
class H36MSamples:
    image_names: list[str]
    joints_2d: torch.Tensor  # (N, 17, 2) pixels
    visible_2d: torch.Tensor  # (N, 17) bool
    joints_cam: torch.Tensor  # (N, 17, 3) metres, camera frame
    K: torch.Tensor  # (N, 3, 3)
    distortion: torch.Tensor  # (N, 5) k1, k2, p1, p2, k3 (OpenCV order)
    cam_from_world: torch.Tensor  # (N, 4, 4)
    subjects: list[str]
    camera_ids: list[str]


def _cameras(path: Path) -> dict[tuple[str, str], dict]:
    try:
        meta = json.loads(path.read_text())
        cams = meta["cameras"] if isinstance(meta, dict) else meta
        out = {}
        for c in cams:
            R = np.asarray(c["R"], dtype=np.float64).reshape(3, 3)
            T = np.asarray(c["T"], dtype=np.float64).reshape(3)
            f = np.asarray(c["f"], dtype=np.float64).reshape(2)
            cc = np.asarray(c["c"], dtype=np.float64).reshape(2)
            k = np.asarray(c["k"], dtype=np.float64).reshape(3)
            p = np.asarray(c["p"], dtype=np.float64).reshape(2)
            if not all(np.isfinite(a).all() for a in (R, T, f, cc, k, p)) or (f <= 0).any():
                raise ValueError("non-finite values or non-positive focal length")
            out[(str(c["subject"]), str(c.get("id", c.get("camera"))))] = {
                "R": R,
                "T": T,
                "f": f,
                "c": cc,
                "k": k,
                "p": p,
            }
        return out
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{path}: malformed Human3.6M camera file ({e})") from None


def read_h36m(npz_path: str | Path, cameras_path: str | Path) -> H36MSamples:
    npz_path = require_file(npz_path, "Human3.6M npz")
    cams = _cameras(require_file(cameras_path, "Human3.6M camera JSON"))
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            names = [str(x) for x in z["imgname"]]
            part = np.asarray(z["part"], dtype=np.float64)
            S = np.asarray(z["S"], dtype=np.float64)
    except Exception as e:  # zipfile, zlib, numpy header and OS errors: a dozen types
        raise FormatError(f"{npz_path}: not a readable Human3.6M npz with imgname, part and S ({e})") from None
    N = len(names)
    if part.shape != (N, 17, 3) or S.shape != (N, 17, 4):
        raise FormatError(f"{npz_path}: expected part (N, 17, 3) and S (N, 17, 4), got {part.shape} and {S.shape}")
    for key, arr in (("part", part), ("S", S)):
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(-1).sum())
            raise FormatError(f"{npz_path}: {key} holds NaN or inf in {bad} joint(s)")
    Ks, dist, Ts, subjects, cam_ids = [], [], [], [], []
    for name in names:
        m = re.search(r"(S\d+)[/_].*?\.(\d{8})", name)
        if m is None or (m.group(1), m.group(2)) not in cams:
            raise FormatError(f"{npz_path}: no camera for image {name!r} (subject and 8-digit camera id expected)")
        c = cams[(m.group(1), m.group(2))]
        Ks.append(make_intrinsics(c["f"][0], c["f"][1], c["c"][0], c["c"][1], dtype=torch.float64))
        dist.append([c["k"][0], c["k"][1], c["p"][0], c["p"][1], c["k"][2]])
        R = torch.tensor(c["R"])
        Ts.append(make_rigid(R, -R @ torch.tensor(c["T"])))
        subjects.append(m.group(1))
        cam_ids.append(m.group(2))
    return H36MSamples(
        names, torch.from_numpy(part[..., :2]), torch.from_numpy(part[..., 2] > 0), torch.from_numpy(S[..., :3]),
        torch.stack(Ks), torch.tensor(dist, dtype=torch.float64), torch.stack(Ts), subjects, cam_ids,
    )  # fmt: skip
