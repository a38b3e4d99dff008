"""``unrender predict mapping``: posed RGB-D views of a room -> occupancy, semantics, oriented 3D boxes
and rendered views.

Input (``--input``): a ``transforms.json`` whose frames give ``depth_file_path`` (nerfstudio's RGB-D
layout, ``depth_unit_scale_factor`` metres per unit), or a TUM RGB-D folder (``rgb.txt``,
``depth.txt``, ``groundtruth.txt``; depth / 5000; TUM's default intrinsics unless ``--intrinsics``).
The model sees ``views_in`` of the views (``--inputs``, default: spread evenly over the capture) in a
voxel memory fixed to the first of them (gravity-aligned, 6.4 x 3.2 x 6.4 m ahead of it, as in
training); gravity is the direction perpendicular to every camera's image-right axis (cameras held
without roll, as hand-held and robot captures roughly are), signed by their image-down direction.

Writes, under ``--out``:

* ``occupancy.ply``: centres of the occupied voxels in the input's world frame, coloured by class;
* ``occupancy.binvox``: the same occupancy on a cube in the memory frame (the memory box padded
  along y; ``mem_from_world`` in predictions.json places it in the world);
* ``semantics.npz``: ``classes (Z, Y, X)`` class ids (``class_names``), ``occupancy_probability``,
  ``mem_from_world`` and the memory box;
* ``boxes.json``: per detected object its class, score, the box in the memory frame
  ``(cx, cy, cz, sx, sy, sz, yaw)`` and its 8 corners in the world frame;
* ``view_<i>.png``: for ``--render`` views the model did not see, the model's rendering next to the
  real image (scored by PSNR, next to the mean-colour image);
* ``predictions.json``: all of the above's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.capture import gravity_direction
from ...data.formats import (
    FormatError,
    fit_map,
    fit_view,
    read_intrinsics,
    read_kitti_depth_png,
    read_rgb,
    read_transforms_json,
    read_tum_rgbd,
    tum_default_intrinsics,
    write_binvox,
    write_ply,
)
from ...geometry import VoxelGrid, box_corners, invert_rigid, make_rigid, transform_points

__all__ = ["MappingPredictArgs", "level_rotation", "predict_mapping_files"]


@dataclass
class MappingPredictArgs:
    """``unrender predict mapping`` arguments."""

    input: Path
    """A transforms.json with depth_file_path per frame, or a TUM RGB-D folder (rgb.txt, depth.txt,
    groundtruth.txt)."""
    ckpt: Path | None = None
    """A mapping checkpoint or run folder; default: the shipped weights."""
    intrinsics: Path | None = None
    """TUM only: the camera (JSON with K); default: TUM's fx = fy = 525, cx = 319.5, cy = 239.5."""
    inputs: tuple[int, ...] = ()
    """Indices of the input views (as many as the model takes); default: spread evenly."""
    render: int = 4
    """Render this many of the other views (spread evenly) and score them against their images."""
    score_threshold: float = 0.3
    """Boxes below this detection score are left out of boxes.json."""
    out: Path = Path("predictions/mapping")
    device: str = "auto"


@dataclass
class _Capture:
    rgb: list[Path]
    depth: list[Path]
    depth_units_per_metre: float
    K: torch.Tensor  # (N, 3, 3) pixels of the full images
    cam_from_world: torch.Tensor  # (N, 4, 4)
    source: str


def _read_capture(args: MappingPredictArgs) -> _Capture:
    path = Path(args.input)
    if path.is_dir():
        seq = read_tum_rgbd(path)
        if args.intrinsics is not None:
            K, src = read_intrinsics(args.intrinsics).K, f"TUM RGB-D folder, intrinsics from {args.intrinsics}"
        else:
            K, src = tum_default_intrinsics(), "TUM RGB-D folder, TUM's default intrinsics (525, 525, 319.5, 239.5)"
        n = len(seq.rgb_paths)
        return _Capture(seq.rgb_paths, seq.depth_paths, 5000.0, K.expand(n, 3, 3), seq.cam_from_world, src)
    scene = read_transforms_json(path)
    if scene.depth_paths is None:
        raise FormatError(f"{path}: its frames give no depth_file_path; mapping needs RGB-D views")
    return _Capture(scene.image_paths, scene.depth_paths, 1.0 / scene.depth_scale, scene.K, scene.cam_from_world,
                    f"transforms.json ({path})")  # fmt: skip


def level_rotation(cam_from_world: torch.Tensor) -> torch.Tensor:
    """``(3, 3)`` rotation taking :func:`gravity_direction` to +y (unrender's down)."""
    g = gravity_direction(cam_from_world)
    y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    v, c = torch.linalg.cross(g, y), float(g @ y)
    if c < -1 + 1e-9:  # upside down: half a turn about x
        return torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    vx = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + vx + vx @ vx / (1 + c)


def _spread(candidates: list[int], k: int) -> list[int]:
    if k <= 0 or not candidates:
        return []
    idx = np.linspace(0, len(candidates) - 1, min(k, len(candidates))).round().astype(int)
    return [candidates[i] for i in dict.fromkeys(idx.tolist())]


def predict_mapping_files(args: MappingPredictArgs) -> dict[str, Any]:
    """Posed RGB-D views -> occupancy (PLY, binvox), semantics (npz), oriented 3D boxes (JSON) and
    rendered held-out views (PNG) under --out."""
    from ...io import atomic_path, atomic_write_text
    from ...metrics import psnr
    from ...viz import colorize_labels, image_grid, save_png, to_uint8
    from ...weights import load_trained
    from ...world import CLASSES
    from .data import mem_from_world, memory_grid

    if args.render < 0 or not 0 <= args.score_threshold <= 1:
        raise ValueError("--render must be >= 0 and --score-threshold in [0, 1]")
    cap = _read_capture(args)
    cfg, model, ck_path, device = load_trained("mapping", args.ckpt, args.device)
    d = cfg.data
    n = len(cap.rgb)
    chosen = list(args.inputs) if args.inputs else _spread(list(range(n)), d.views_in)
    if len(chosen) != d.views_in or len(set(chosen)) != len(chosen) or not all(0 <= i < n for i in chosen):
        raise ValueError(f"--inputs must name {d.views_in} different views in 0..{n - 1}, got {chosen}")
    others = _spread([i for i in range(n) if i not in chosen], args.render)
    R = level_rotation(cap.cam_from_world)
    R4 = make_rigid(R, torch.zeros(3, dtype=torch.float64))
    T = cap.cam_from_world.double() @ invert_rigid(R4)  # cameras in the levelled world
    M = mem_from_world(T[chosen[0]])
    cam_from_mem = T @ invert_rigid(M)
    mem_from_user_world = M @ R4

    def view(i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        full = read_rgb(cap.rgb[i])
        raw = read_kitti_depth_png(cap.depth[i], scale=cap.depth_units_per_metre)
        if raw.shape[-2:] != full.shape[-2:]:
            h, w = raw.shape[-2:]
            raise FormatError(f"{cap.depth[i]}: the depth map is {w} x {h}, its image {cap.rgb[i].name} is "
                              f"{full.shape[-1]} x {full.shape[-2]}; they must be the same size")  # fmt: skip
        img, Kn = fit_view(full, cap.K[i], d.height, d.width)
        return img, Kn, fit_map(raw, d.height, d.width)

    ins = [view(i) for i in chosen]
    batch = {
        "rgb_in": torch.stack([v[0] for v in ins])[None],
        "depth_in": torch.stack([v[2] for v in ins])[None],
        "K_in": torch.stack([v[1] for v in ins])[None].float(),
        "cam_from_mem_in": cam_from_mem[chosen][None].float(),
    }
    targets = others or chosen[:1]
    tgt = [fit_view(read_rgb(cap.rgb[i]), cap.K[i], d.height, d.width) for i in targets]
    outputs = []
    with torch.no_grad():
        for (img, Kt), i in zip(tgt, targets, strict=True):
            b = {**batch, "rgb_out": img[None], "K_out": Kt[None].float(),
                 "cam_from_mem_out": cam_from_mem[i][None].float()}  # fmt: skip
            outputs.append({k: v.cpu() for k, v in model({k: v.to(device) for k, v in b.items()}).items()})
    o = outputs[0]
    grid = memory_grid(cfg)
    prob = torch.sigmoid(o["occ_logits"][0, 0])
    occ = prob > 0.5
    sem = o["sem_logits"][0].argmax(0) if "sem_logits" in o else torch.zeros_like(occ, dtype=torch.long)
    args.out.mkdir(parents=True, exist_ok=True)
    world_from_mem = invert_rigid(mem_from_user_world)
    centres = transform_points(world_from_mem, grid.centers(dtype=torch.float64)[occ])
    write_ply(args.out / "occupancy.ply", centres, colorize_labels(sem[occ].numpy()[None], 64)[0])
    cube, cube_grid = _cube(occ, grid)
    write_binvox(args.out / "occupancy.binvox", cube, cube_grid)
    with atomic_path(args.out / "semantics.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, classes=sem.numpy().astype(np.uint8),
                            occupancy_probability=prob.numpy().astype(np.float16),
                            mem_from_world=mem_from_user_world.numpy(), bounds_min=np.array(grid.bounds_min),
                            bounds_max=np.array(grid.bounds_max), class_names=np.array(CLASSES))  # fmt: skip
    boxes = []
    if "heatmap_logits" in o:
        det = model.detect(o)[0]
        for box, score, label in zip(det["boxes"], det["scores"], det["labels"], strict=True):
            if float(score) < args.score_threshold:
                continue
            corners = transform_points(world_from_mem, box_corners(box.double()[None])[0])
            boxes.append({"class": cfg.model.det_classes[int(label)], "score": round(float(score), 4),
                          "box_mem": [round(float(v), 4) for v in box],
                          "corners_world": [[round(float(v), 4) for v in c] for c in corners]})  # fmt: skip
    box_doc = {"frame": "box_mem: (cx, cy, cz, sx, sy, sz, yaw about y) in the memory frame; corners_world: the "
               "input's world frame", "mem_from_world": mem_from_user_world.tolist(), "boxes": boxes}  # fmt: skip
    atomic_write_text(args.out / "boxes.json", json.dumps(box_doc, indent=1))
    rendered = []
    for (img, _), i, out in zip(tgt, targets, outputs, strict=True):
        if "rgb_pred" not in out:
            break
        pred = out["rgb_pred"][0].clamp(0, 1)
        path = save_png(args.out / f"view_{i:04d}.png", image_grid([[to_uint8(pred), to_uint8(img)]], scale=4))
        mean = img.mean((1, 2), keepdim=True).expand_as(img)
        rendered.append({"view": i, "png": str(path), "seen_by_model": i in chosen,
                         "psnr": float(psnr(pred[None], img[None])),
                         "mean_colour_psnr": float(psnr(mean[None], img[None]))})  # fmt: skip
    summary = {
        "checkpoint": str(ck_path), "input": str(args.input), "source": cap.source, "views": n,
        "input_views": [str(cap.rgb[i]) for i in chosen],
        "gravity": {"down_in_world": gravity_direction(cap.cam_from_world).tolist(),
                    "how": "perpendicular to every camera's image-right axis, signed by their image-down axis"},
        "mem_from_world": mem_from_user_world.tolist(),
        "memory_box_m": {"min": list(grid.bounds_min), "max": list(grid.bounds_max),
                         "resolution_xyz": list(grid.resolution)},
        "occupied_voxels": int(occ.sum()), "boxes": len(boxes), "rendered": rendered,
        "files": {k: str(args.out / k) for k in ("occupancy.ply", "occupancy.binvox", "semantics.npz",
                                                   "boxes.json")},
    }  # fmt: skip
    atomic_write_text(args.out / "predictions.json", json.dumps(summary, indent=2))
    return {"out": str(args.out), "occupied_voxels": summary["occupied_voxels"], "boxes": len(boxes),
            "rendered_views": len(rendered), "checkpoint": str(ck_path)}  # fmt: skip


def _cube(occ: torch.Tensor, grid: VoxelGrid) -> tuple[torch.Tensor, VoxelGrid]:
    """Occupancy ``(Z, Y, X)`` of a box of cubic voxels padded, centred, to a cube (for binvox)."""
    size = torch.tensor(grid.voxel_size)
    if (size - size[0]).abs().max() > 1e-6:
        raise ValueError(f"binvox needs cubic voxels; the memory's are {tuple(size.tolist())} m")
    res = max(grid.resolution)
    X, Y, Z = grid.resolution
    out = torch.zeros(res, res, res, dtype=torch.bool)
    oz, oy, ox = (res - Z) // 2, (res - Y) // 2, (res - X) // 2
    out[oz : oz + Z, oy : oy + Y, ox : ox + X] = occ
    lo = [b - o * float(size[0]) for b, o in zip(grid.bounds_min, (ox, oy, oz), strict=True)]
    side = res * float(size[0])
    return out, VoxelGrid(tuple(lo), tuple(v + side for v in lo), (res, res, res))
