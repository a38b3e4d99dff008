"""``unrender predict energy-voxels``: one image of an object (or a folder of them) and the camera ->
its occupancy on the model's voxel grid.

For every image it writes, under ``--out``:

* ``<image>.binvox``: occupancy on a cube in the camera frame (x right, y down, z forward, metres),
  ``resolution`` voxels a side, covering x, y in ``[-L/2, L/2]`` and z in ``[c - L/2, c + L/2]`` with
  ``L = max(far - near, 2 half_width)`` and ``c = (near + far) / 2``; each cube voxel takes the value of
  the model's grid cell holding its centre (the frustum grid's cells follow the rays, so they are
  resampled; empty outside the frustum);
* ``<image>.ply``: the centres of the model's occupied cells (camera frame, metres);
* ``<image>_preview.png``: the model's input and, per pixel block, the nearest occupied cell (brighter
  when nearer);

and ``predictions.json`` (the camera and where it came from, the grid, per image the files and the
occupied fraction). The model works where it was trained: one object of about 1 m some 2.2-2.8 m in
front of the camera (``near`` to ``far`` bound the grid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ....data.formats import camera_for_image, fit_view_undistorted, iter_frames, write_binvox, write_ply
from ....geometry import VoxelGrid
from .config import VoxelData

__all__ = ["VoxelsPredictArgs", "cube_from_grid", "eval_binvox_pairs", "predict_voxel_files", "resample_to_grid"]


@dataclass
class VoxelsPredictArgs:
    """``unrender predict energy-voxels`` arguments."""

    input: Path
    """An image or a folder of images (each one object, centred, about 2.5 m away)."""
    ckpt: Path | None = None
    """An energy-voxels checkpoint or run folder; default: the shipped weights."""
    intrinsics: Path | None = None
    """The camera: a JSON file with K (and optional distortion), or a KITTI calib file."""
    fov: float | None = None
    """Without --intrinsics: guess the camera from this horizontal field of view in degrees."""
    out: Path = Path("predictions/energy-voxels")
    """Where the binvox, PLY and preview files and predictions.json go."""
    steps: int | None = None
    """Inner gradient steps of the energy model (default: what it was trained with)."""
    max_frames: int = 0
    """Stop after this many images (0: all)."""
    device: str = "auto"


def _cube(d: VoxelData) -> VoxelGrid:
    side = max(d.far - d.near, 2 * d.half_width)
    c = (d.near + d.far) / 2
    R = d.resolution
    return VoxelGrid((-side / 2, -side / 2, c - side / 2), (side / 2, side / 2, c + side / 2), (R, R, R))


def resample_to_grid(occupancy: torch.Tensor, d: VoxelData, K: torch.Tensor, target: VoxelGrid) -> torch.Tensor:
    """Occupancy ``(R, R, R)`` on the model's grid (``d``, camera ``K`` of the model's input) at the voxel
    centres of ``target`` (a grid in the same camera frame): ``(Z, Y, X)`` bool, each voxel taking the
    value of the model's cell holding its centre (empty outside the model's grid)."""
    p = target.centers(dtype=torch.float64).reshape(-1, 3)
    R = d.resolution
    if d.grid == "frustum":
        uv = (K.double() @ p.T).T
        z = uv[:, 2].clamp(min=1e-9)
        j = torch.floor((uv[:, 0] / z + 0.5) / (d.width / R))
        i = torch.floor((uv[:, 1] / z + 0.5) / (d.height / R))
    else:
        j = torch.floor((p[:, 0] + d.half_width) / (2 * d.half_width) * R)
        i = torch.floor((p[:, 1] + d.half_width) / (2 * d.half_width) * R)
    k = torch.floor((p[:, 2] - d.near) / (d.far - d.near) * R)
    idx = torch.stack([k, i, j], -1).long()
    inside = ((idx >= 0) & (idx < R)).all(-1) & (p[:, 2] > 0)
    out = torch.zeros(len(p), dtype=torch.bool)
    sel = idx[inside]
    out[inside] = occupancy.bool()[sel[:, 0], sel[:, 1], sel[:, 2]]
    X, Y, Z = target.resolution
    return out.reshape(Z, Y, X)


def cube_from_grid(occupancy: torch.Tensor, d: VoxelData, K: torch.Tensor) -> tuple[torch.Tensor, VoxelGrid]:
    """Resample occupancy ``(R, R, R)`` on the model's grid to the camera-frame cube written as binvox:
    ``(occupancy (R, R, R) bool, grid)``."""
    cube = _cube(d)
    return resample_to_grid(occupancy, d, K, cube), cube


def _predict_one(model: torch.nn.Module, d: VoxelData, rgb: torch.Tensor, cam, steps: int | None,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """``(occupancy (R, R, R) bool on the model's grid, the model's input image, its K)`` of one image."""
    from .evaluate import _iterates

    net_img, Kn = fit_view_undistorted(rgb, cam.K, cam.distortion, d.height, d.width)
    batch = {"image": net_img[None].to(device), "K": Kn[None].float().to(device)}
    with torch.no_grad():
        logits = _iterates(model, batch, steps)[-1][0].float().cpu()  # (R, R, R) z, y, x
    return logits > 0, net_img, Kn


def predict_voxel_files(args: VoxelsPredictArgs) -> dict[str, Any]:
    """One image of an object -> its occupancy: binvox (camera-frame cube), PLY of occupied cells and a
    preview per image, and predictions.json, under --out."""
    from ....io import atomic_write_text
    from ....viz import image_grid, save_png, to_uint8
    from ....weights import load_trained
    from .data import grid_points

    if args.max_frames < 0 or (args.steps is not None and args.steps < 0):
        raise ValueError("--max-frames and --steps must be >= 0")
    if args.intrinsics is None and args.fov is None:
        camera_for_image(None, None, 1, 1)  # says what to give, before any work
    cfg, model, ck_path, device = load_trained("energy-voxels", args.ckpt, args.device)
    d = cfg.data
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "checkpoint": str(ck_path), "input": str(args.input), "images": [],
        "grid": {"kind": d.grid, "resolution": d.resolution, "near_m": d.near, "far_m": d.far},
        "binvox_frame": "camera frame of the model's input: x right, y down, z forward, metres",
    }  # fmt: skip
    with tqdm(desc="predict energy-voxels", unit="image", dynamic_ncols=True) as bar:
        for name, rgb in iter_frames(args.input, max_frames=args.max_frames):
            cam = camera_for_image(args.intrinsics, args.fov, rgb.shape[-1], rgb.shape[-2])
            occ, net_img, Kn = _predict_one(model, d, rgb, cam, args.steps, device)
            cube, grid = cube_from_grid(occ, d, Kn)
            write_binvox(args.out / f"{name}.binvox", cube, grid)
            centres = grid_points(d, Kn)[occ]
            write_ply(args.out / f"{name}.ply", centres, np.full((len(centres), 3), 200, np.uint8))
            ramp = torch.linspace(1, 0.2, d.resolution)[:, None, None]
            near = (occ.float() * ramp).amax(0)  # (R, R): nearest occupied cell per block
            small = F.interpolate(net_img[None], size=near.shape, mode="area")[0]
            shown = [[to_uint8(small), to_uint8(near.expand(3, -1, -1))]]
            preview = image_grid(shown, scale=max(1, 256 // d.resolution))
            save_png(args.out / f"{name}_preview.png", preview)
            summary["camera"] = {"K": cam.K.tolist(), "source": cam.source, "model_input_K": Kn.tolist()}
            summary["images"].append({"name": name, "binvox": str(args.out / f"{name}.binvox"),
                                      "ply": str(args.out / f"{name}.ply"),
                                      "preview": str(args.out / f"{name}_preview.png"),
                                      "occupied_fraction": float(occ.float().mean())})  # fmt: skip
            bar.update(1)
    atomic_write_text(args.out / "predictions.json", json.dumps(summary, indent=2))
    return {"images": len(summary["images"]), "out": str(args.out), "checkpoint": str(ck_path),
            "camera": summary["camera"]["source"]}  # fmt: skip


def eval_binvox_pairs(ckpt: Path, data: Path, out: Path, device: str) -> dict[str, float]:
    """A folder of image + binvox pairs: ``<name>.png`` (or .jpg), ``<name>.binvox`` (the object's occupancy
    in that image's camera frame: x right, y down, z forward, metres) and the camera (``<name>.json`` or one
    ``intrinsics.json``). IoU of the prediction at each binvox grid's voxel centres, averaged over pairs."""
    from ....data.formats import IMAGE_SUFFIXES, read_binvox, read_rgb
    from ....data.formats.errors import MissingFileError
    from ....weights import load_trained

    data = Path(data)
    images = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if data.is_dir() else []
    if not images:
        raise MissingFileError(f"{data}: a binvox-pairs folder holds <name>.png + <name>.binvox + a camera JSON")
    cfg, model, _, dev = load_trained("energy-voxels", ckpt, device)
    ious = []
    for img in tqdm(images, desc="eval binvox pairs", unit="pair", dynamic_ncols=True):
        truth = img.with_suffix(".binvox")
        cam_file = img.with_suffix(".json") if img.with_suffix(".json").is_file() else data / "intrinsics.json"
        if not truth.is_file() or not cam_file.is_file():
            raise MissingFileError(f"{img}: no {truth.name} or camera file ({cam_file.name}) beside it")
        rgb = read_rgb(img)
        cam = camera_for_image(cam_file, None, rgb.shape[-1], rgb.shape[-2])
        occ, _, Kn = _predict_one(model, cfg.data, rgb, cam, None, dev)
        gt, grid = read_binvox(truth)
        pred = resample_to_grid(occ, cfg.data, Kn, grid)
        union = (pred | gt).sum()
        ious.append(float((pred & gt).sum() / union) if union else 1.0)
    return {"pairs": len(ious), "iou": float(np.mean(ious))}
