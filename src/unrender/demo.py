"""``unrender demo``: the synthetic world and the engine at a glance, in one self-contained page.

1. renders a street video (RGB, depth, semantics, 3D boxes drawn on the frames);
2. renders a room from several views, shows its exact voxel occupancy and the
   cameras in an interactive 3D view, and carves its depth into voxels;
3. trains a small neural 3D mapping model for at most a few minutes (or reuses an
   earlier run's checkpoint) and shows its occupancy, boxes and held-out views.

Writes ``<out>/index.html`` (no external files or CDN) and ``<out>/summary.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    """Where the page, summary and checkpoints go."""
    steps: int = 1500
    """Training steps of the mapping model."""
    max_minutes: float = 3.0
    """Stop training after this many minutes whatever the step."""
    seed: int = 0
    """Which street and room to draw."""
    fresh: bool = False
    """Ignore checkpoints of an earlier demo run."""


def _class_colors(ids: np.ndarray) -> list[tuple[int, int, int]]:
    from .viz import colorize_labels

    return [tuple(int(v) for v in colorize_labels(np.array([[i]]), 64)[0, 0]) for i in ids]


def _street_section(seed: int) -> dict:
    from .viz import box_edges_2d, colorize_depth, colorize_labels, draw_segments, image_grid
    from .world import CLASSES
    from .world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="streets", views=6, height=120, width=400, seed=seed, occupancy=False), 0)
    rows = []
    for v in range(0, 6, 2):
        visible = s["mask_pixels"][v] > 0
        segs, owner = box_edges_2d(torch.from_numpy(s["boxes_world"][v][visible]), torch.from_numpy(s["K"][v]),
                                   torch.from_numpy(s["cam_from_world"][v]))  # fmt: skip
        colors = _class_colors(s["box_classes"][visible][owner])
        rgb = s["rgb"][v].transpose(1, 2, 0)
        rows.append([draw_segments(rgb, segs, colors), colorize_depth(s["depth"][v, 0], max_depth=60)])
        rows.append([colorize_labels(s["semantic"][v, 0], 64), rgb])
    counts: dict[str, int] = {}
    for c in s["box_classes"]:
        counts[CLASSES[c]] = counts.get(CLASSES[c], 0) + 1
    return {
        "frames": "6 (1 m apart), every second one shown",
        "boxed objects": ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
        "camera height (m)": float(s["camera_height"][0]),
        "images": {"frames 0, 2, 4: 3D boxes on RGB | depth; semantics | RGB": image_grid(rows)},
    }


def _room_section(seed: int) -> tuple[dict, dict]:
    from .geometry import VoxelGrid, carve_depth
    from .metrics import voxel_iou
    from .viz import colorize_depth, colorize_labels, frustum_lines, image_grid
    from .world import CLASSES, Scene
    from .world.sample import SynthConfig, make_sample
    from .world.truth import occupancy

    s = make_sample(SynthConfig(kind="rooms", views=4, height=128, width=128, seed=seed), 0)
    grid = VoxelGrid.from_json(json.dumps(json.loads(str(s["meta"]))["grid"]))
    sem = torch.from_numpy(s["semantic_voxels"]).long()
    occ = sem > 0
    # a finer grid for the 3D view: surface voxels of everything but floor and walls
    scene = Scene.from_json(str(s["scene_json"]))
    fine = VoxelGrid(grid.bounds_min, grid.bounds_max, tuple(2 * r for r in grid.resolution))
    fine_occ, fine_sem = occupancy(scene, fine, include=tuple(c for c in CLASSES[1:] if c not in ("floor", "wall")))
    solid = fine_occ[0].bool()
    # surface voxels: solid ones with an empty voxel in their 3x3x3 neighbourhood (erosion by min-pooling)
    interior = -torch.nn.functional.max_pool3d(-solid[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0.5
    surface = solid & ~interior
    pts = fine.centers(dtype=torch.float64)[surface].numpy()
    cols = colorize_labels(fine_sem[surface].numpy()[None], 64)[0]
    K, T = torch.from_numpy(s["K"]), torch.from_numpy(s["cam_from_world"])
    cams = [{"lines": frustum_lines(K[i], T[i], 128, 128, 0.6), "color": "#d62728"} for i in range(len(K))]
    rows = [[s["rgb"][i].transpose(1, 2, 0) for i in range(4)], [colorize_depth(s["depth"][i, 0]) for i in range(4)],
            [colorize_labels(s["semantic"][i, 0], 64) for i in range(4)]]  # fmt: skip
    # geometry core: carve the rendered depth into the same grid and compare with the exact occupancy
    t0 = time.perf_counter()
    carved, free = carve_depth(grid, torch.from_numpy(s["depth"]).double(), K, T)
    ms = 1000 * (time.perf_counter() - t0)
    known = (carved + free) > 0
    iou = voxel_iou(carved[None], occ.double()[None, None], mask=known[None]).item()
    room = {
        "views": 4,
        "voxel grid": f"{grid.resolution} over {tuple(round(v, 2) for v in grid.bounds_min)}.."
        f"{tuple(round(v, 2) for v in grid.bounds_max)} m",
        "occupied voxels (exact)": int(occ.sum()),
        "images": {"RGB, depth and semantics of the 4 views": image_grid(rows, scale=2)},
        "scene3d": {"exact occupancy (floor hidden), coloured by class, and the 4 cameras": {
            "points": pts, "colors": cols, "point_size": float(min(fine.voxel_size)), "cameras": cams}},
    }  # fmt: skip
    geo = {
        "carve depth -> voxels (ms)": ms,
        "IoU carved vs exact (voxels the views observe)": iou,
    }
    return room, geo


def _box_lines(boxes: torch.Tensor) -> np.ndarray:
    """World/memory-frame end points ``(24 M, 3)`` of the 12 edges of each box."""
    from .geometry import BOX_EDGES, box_corners

    if len(boxes) == 0:
        return np.zeros((0, 3))
    c = box_corners(boxes.double())
    e = torch.tensor(BOX_EDGES)
    return torch.stack([c[:, e[:, 0]], c[:, e[:, 1]]], 2).reshape(-1, 3).numpy()


def _mapping_section(out: Path, cfg: DemoConfig) -> dict:
    """Train (or reuse) a small mapping model; show occupancy, boxes and a held-out view."""
    from .engine import Trainer, find_latest_checkpoint
    from .methods import get_method
    from .methods.mapping.data import MappingDataset, memory_grid
    from .methods.mapping.detection import decode_boxes
    from .viz import box_edges_2d, colorize_labels, draw_segments, frustum_lines, image_grid

    method = get_method("mapping")
    mcfg = method.make_config("cpu")
    mcfg.data.num_train, mcfg.data.num_val = 64, 4
    mcfg.data.root = out / "data"
    mcfg.train.out_dir = out / "mapping"
    mcfg.train.max_steps = cfg.steps
    mcfg.train.time_limit_min = cfg.max_minutes
    mcfg.train.ckpt_every = max(1, cfg.steps // 3)
    mcfg.train.warmup_steps = min(mcfg.train.warmup_steps, cfg.steps // 10)
    done = find_latest_checkpoint(mcfg.train.out_dir)
    if done is not None and (mcfg.train.out_dir / "eval.json").exists():  # an earlier demo finished: reuse it
        mcfg.train.max_steps = int(json.loads((done / "state.json").read_text())["step"])
    trainer = Trainer(method, mcfg)
    metrics = trainer.fit()
    model = trainer.model.eval()
    item = MappingDataset(mcfg, "val")[0]
    with torch.no_grad():
        o = model({k: v[None] for k, v in item.items()})
    grid = memory_grid(mcfg)
    centers = grid.centers(dtype=torch.float64)
    pred_occ = torch.sigmoid(o["occ_logits"][0, 0]) > 0.5
    pred_sem = o["sem_logits"][0].argmax(0)
    dets = decode_boxes(torch.sigmoid(o["heatmap_logits"]), o["reg"], o["yaw_logits"], o["yaw_res"], grid)[0]
    strong = dets["scores"] > 0.3
    gt_boxes = item["boxes"][item["box_labels"] >= 0]
    cams = [{"lines": frustum_lines(item["K_in"][i].double(), item["cam_from_mem_in"][i].double(), 64, 64, 0.5),
             "color": "#888888"} for i in range(len(item["K_in"]))]  # fmt: skip
    floorless_gt = item["sem"] > 1  # leave floor out of the view
    floorless_pred = pred_occ & (pred_sem > 1)

    def view(mask: torch.Tensor, sem: torch.Tensor, boxes: torch.Tensor, color: str) -> dict:
        return {
            "points": centers[mask].numpy(),
            "colors": colorize_labels(sem[mask].numpy()[None], 64)[0],
            "point_size": min(grid.voxel_size),
            "cameras": [*cams, {"lines": _box_lines(boxes), "color": color}],
        }

    # boxes on the held-out view: ground truth green, prediction red
    K, T = item["K_out"].double(), item["cam_from_mem_out"].double()
    img = (item["rgb_out"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    g_seg, _ = box_edges_2d(gt_boxes.double(), K, T)
    p_seg, _ = box_edges_2d(dets["boxes"][strong].double(), K, T)
    drawn = draw_segments(draw_segments(img, g_seg, [(40, 200, 40)] * len(g_seg)), p_seg, [(230, 40, 40)] * len(p_seg))
    pred_view = (o["rgb_pred"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    section = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and "/" not in k}
    section["trained steps"] = trainer.step
    section["images"] = {
        **metrics.get("images", {}),
        "held-out view: boxes (green truth, red prediction) | predicted view": image_grid(
            [[drawn, pred_view]], scale=3
        ),
    }
    section["scene3d"] = {
        "predicted occupancy (coloured by predicted class) and boxes (red), input cameras (grey)": view(
            floorless_pred, pred_sem, dets["boxes"][strong], "#d62728"
        ),
        "exact occupancy and boxes (green)": view(floorless_gt, item["sem"], gt_boxes, "#2ca02c"),
    }
    return section


def run_demo(cfg: DemoConfig) -> Path:
    from .viz import write_report

    out = Path(cfg.out)
    t_start = time.time()
    if cfg.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    print("[1/3] rendering a street video")
    street = _street_section(cfg.seed)
    print("[2/3] rendering a room from 4 views, sampling its occupancy, carving depth")
    room, geo = _room_section(cfg.seed)
    print(f"[3/3] neural 3D mapping: training ({cfg.steps} steps, at most {cfg.max_minutes} min) or reusing a run")
    mapping = _mapping_section(out, cfg)

    sections = {
        "Street video (synthetic world)": street,
        "Room from several views (synthetic world)": room,
        "Geometry core: depth carving vs exact occupancy": geo,
        "Neural 3D mapping (held-out rooms)": mapping,
    }
    page = write_report(out / "index.html", "unrender demo", sections)
    summary = {
        "street": {k: v for k, v in street.items() if isinstance(v, (int, float))},
        "room": {k: v for k, v in room.items() if isinstance(v, (int, float))},
        "geometry": geo,
        "mapping": {k: v for k, v in mapping.items() if isinstance(v, (int, float))},
        "seconds": time.time() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"open {page.resolve()}")
    return page
