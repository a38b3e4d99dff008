"""``unrender demo``: the synthetic world and the engine at a glance, in one self-contained page.

1. renders a street video (RGB, depth, semantics, 3D boxes drawn on the frames);
2. renders a room from several views and shows its exact voxel occupancy and the
   cameras in an interactive 3D view;
3. trains the toy ray-depth model briefly (or reuses an earlier run's checkpoint)
   and carves the room's depth views into voxels with the geometry core.

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
    """Training steps of the toy model."""
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
    padded = torch.nn.functional.pad(solid[None, None].float(), (1, 1, 1, 1, 1, 1))[0, 0].bool()
    interior = solid.clone()
    for dim in range(3):
        for step in (0, 2):
            interior &= (
                padded.narrow(dim, step, solid.shape[dim])
                .narrow((dim + 1) % 3, 1, solid.shape[(dim + 1) % 3])
                .narrow((dim + 2) % 3, 1, solid.shape[(dim + 2) % 3])
            )
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


def run_demo(cfg: DemoConfig) -> Path:
    from .engine import Trainer
    from .methods import get_method
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

    method = get_method("toy")
    tcfg = method.make_config("cpu")
    tcfg.train.out_dir = out / "toy"
    tcfg.train.max_steps = cfg.steps
    tcfg.train.time_limit_min = cfg.max_minutes
    tcfg.train.ckpt_every = max(1, cfg.steps // 3)
    print(f"[3/3] training the toy ray-depth model ({cfg.steps} steps, at most {cfg.max_minutes} min)")
    toy = Trainer(method, tcfg).fit()

    sections = {
        "Street video (synthetic world)": street,
        "Room from several views (synthetic world)": room,
        "Geometry core: depth carving vs exact occupancy": geo,
        "Toy method: depth along Plücker rays (held-out views)": toy,
    }
    page = write_report(out / "index.html", "unrender demo", sections)
    summary = {
        "street": {k: v for k, v in street.items() if isinstance(v, (int, float))},
        "room": {k: v for k, v in room.items() if isinstance(v, (int, float))},
        "geometry": geo,
        "toy": {k: v for k, v in toy.items() if isinstance(v, (int, float))},
        "seconds": time.time() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"open {page.resolve()}")
    return page
