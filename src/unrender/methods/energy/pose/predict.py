"""``unrender predict energy-pose``: 2D keypoints of people (17 joints in Human3.6M order, pixels) and
the camera's intrinsics -> camera-frame 3D joints in metres.

Input: a JSON file ``{"K": 3x3, "joints_2d": [[u, v] x 17]}`` (or a list of such poses under
``"joints_2d"``: ``N x 17 x 2``), or an ``.npz`` with ``joints_2d (N, 17, 2)`` (or ``(17, 2)``) and
``K (3, 3)`` or ``(N, 3, 3)``. Output, under ``--out``: ``joints_3d.json`` (per pose the 17 named joints,
x right, y down, z forward, metres) and ``skeletons.png`` (each pose seen from the side and from the
camera).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....data.formats.errors import FormatError, require_file
from ....world.generators import H36M_JOINTS

__all__ = ["PosePredictArgs", "eval_h36m_files", "predict_pose_files", "read_keypoints"]


@dataclass
class PosePredictArgs:
    """``unrender predict energy-pose`` arguments."""

    input: Path
    """JSON or npz with joints_2d (N x 17 x 2 pixels, Human3.6M joint order) and K (3 x 3)."""
    ckpt: Path | None = None
    """An energy-pose checkpoint or run folder; default: the shipped weights."""
    out: Path = Path("predictions/energy-pose")
    """Where joints_3d.json and skeletons.png go."""
    steps: int | None = None
    """Inner gradient steps of the energy model (default: what it was trained with)."""
    device: str = "auto"


def read_keypoints(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``joints_2d (N, 17, 2)`` pixels and ``K (N, 3, 3)`` from a JSON or npz file (see the module's docstring).

    Raises:
        MissingFileError, FormatError: naming the file and what is expected.
    """
    path = require_file(path, "keypoint file")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                j2d, K = np.asarray(z["joints_2d"], np.float64), np.asarray(z["K"], np.float64)
        else:
            meta = json.loads(path.read_text())
            if not isinstance(meta, dict):
                raise FormatError(f"{path}: expected a JSON object with joints_2d and K")
            j2d, K = np.asarray(meta["joints_2d"], np.float64), np.asarray(meta["K"], np.float64)
    except FormatError:
        raise
    except KeyError as e:
        raise FormatError(f"{path}: missing {e} (expected joints_2d (N, 17, 2) pixels and K (3, 3))") from None
    except Exception as e:  # JSON, zip, numpy and conversion errors
        raise FormatError(f"{path}: not a keypoint file with joints_2d and K ({type(e).__name__}: {e})") from None
    if j2d.ndim == 2:
        j2d = j2d[None]
    if j2d.ndim != 3 or j2d.shape[1:] != (17, 2):
        raise FormatError(f"{path}: joints_2d must be (N, 17, 2) or (17, 2): 17 joints in Human3.6M order "
                          f"({', '.join(H36M_JOINTS)}), got shape {j2d.shape}")  # fmt: skip
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (len(j2d), 3, 3))
    if K.shape != (len(j2d), 3, 3):
        raise FormatError(f"{path}: K must be (3, 3) or ({len(j2d)}, 3, 3), got {K.shape}")
    if not (np.isfinite(j2d).all() and np.isfinite(K).all()):
        raise FormatError(f"{path}: NaN or inf in joints_2d or K")
    if (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any() or not np.allclose(K[:, 2], [0, 0, 1]):
        raise FormatError(f"{path}: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0")
    return torch.from_numpy(j2d.copy()).float(), torch.from_numpy(np.ascontiguousarray(K)).float()


def predict_pose_files(args: PosePredictArgs) -> dict[str, Any]:
    """Lift 2D keypoints (Human3.6M order) to camera-frame 3D joints; write joints_3d.json and skeletons.png."""
    from ....io import atomic_write_text
    from ....viz import image_grid, save_png
    from ....weights import load_trained
    from .evaluate import _predict, _skeleton_panel

    joints_2d, K = read_keypoints(args.input)
    cfg, model, ck_path, device = load_trained("energy-pose", args.ckpt, args.device)
    batch = {"joints_2d": joints_2d.to(device), "K": K.to(device)}
    joints_3d = _predict(model, batch, args.steps)[-1].float().cpu()  # (N, 17, 3), the last iterate
    poses = [{name: [round(v, 4) for v in p.tolist()] for name, p in zip(H36M_JOINTS, pose, strict=True)}
             for pose in joints_3d]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    out = {"checkpoint": str(ck_path), "input": str(args.input), "frame": "camera: x right, y down, z forward, metres",
           "joints": list(H36M_JOINTS), "poses": poses}  # fmt: skip
    atomic_write_text(args.out / "joints_3d.json", json.dumps(out, indent=1))
    side = [_skeleton_panel([p], [(40, 90, 200)]) for p in joints_3d[:8]]
    front = [_skeleton_panel([p[:, [2, 1, 0]]], [(200, 80, 40)]) for p in joints_3d[:8]]  # x across
    save_png(args.out / "skeletons.png", image_grid([side, front]))
    return {"poses": len(poses), "out": str(args.out), "checkpoint": str(ck_path),
            "mean_root_depth_m": float(joints_3d[:, 0, 2].mean())}  # fmt: skip


def eval_h36m_files(ckpt: Path, data: Path, out: Path, device: str) -> dict[str, float]:
    """Human3.6M protocols #1 (MPJPE) and #2 (P-MPJPE) in mm on a folder with ``test_h36m_body3d.npz`` and
    ``cameras.json`` (2D joints and intrinsics in), next to the fit-to-2D baseline."""
    from ....weights import load_trained
    from .evaluate import evaluate_h36m

    cfg, model, _, dev = load_trained("energy-pose", ckpt, device)
    with torch.no_grad():
        return evaluate_h36m(model, cfg, Path(data), dev)
