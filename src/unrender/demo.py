"""``unrender demo``: train the toy method briefly, carve its scene into voxels, write a report.

Grows with each method (see the issues); every part reuses an earlier run's
checkpoint when one is there, so a second ``unrender demo`` is fast.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    out: Path = Path("outputs/demo")
    """Where the report, pictures and checkpoints go."""
    steps: int = 1500
    """Training steps of the toy model."""
    max_minutes: float = 3.0
    """Stop training after this many minutes whatever the step."""
    fresh: bool = False
    """Ignore checkpoints of an earlier demo run."""


def _geometry_section(out: Path) -> dict:
    """Carve 4 depth views of the toy scene into a voxel grid and compare with the exact occupancy."""
    from .geometry import VoxelGrid, carve_depth, unproject_to_grid
    from .methods.toy.data import inside_scene, make_camera, render_view
    from .metrics import voxel_iou
    from .viz import colorize_depth, image_grid

    H, W = 60, 80
    grid = VoxelGrid((-2.4, -1.45, -2.4), (2.4, 0.15, 2.4), (48, 16, 48))  # ground mid-voxel
    g = torch.Generator().manual_seed(1234)
    Ks, Ts, depths, colours = [], [], [], []
    for _ in range(4):
        K, T = make_camera(g, H, W)
        view = render_view(K, T, H, W)
        Ks.append(K)
        Ts.append(T)
        depths.append(view["depth"])
        colours.append(torch.from_numpy(colorize_depth(view["depth"][0], max_depth=10)).permute(2, 0, 1).float() / 255)
    K, T, depth = torch.stack(Ks), torch.stack(Ts), torch.stack(depths)
    t0 = time.perf_counter()
    occ, free = carve_depth(grid, depth, K, T)
    feats, count = unproject_to_grid(grid, torch.stack(colours), K, T)
    ms = 1000 * (time.perf_counter() - t0)
    exact = inside_scene(grid.centers()).float()[None]
    known = (occ + free) > 0
    iou_known = voxel_iou(occ[None], exact[None], mask=known[None]).item()

    # top views (+z up the picture): above-ground max for occupancy, one horizontal slice for free space
    y = grid.centers()[0, :, 0, 1]
    above = y < -0.075
    mid = int((y + 0.35).abs().argmin())

    def top(v: torch.Tensor) -> torch.Tensor:  # (C, Z, Y, X) -> (C, Z, X)
        return v[:, :, above].amax(2).flip(1)

    ground = int(y.abs().argmin())
    pictures = {
        "input depth views": image_grid([[colorize_depth(d[0], max_depth=10) for d in depth]], scale=2),
        "top view: carved occupied (above ground) | exact occupied (above ground) | free at y = -0.35 m | "
        "colour unprojected onto the ground layer": image_grid(
            [[top(occ), top(exact), free[:, :, mid].flip(1), feats[:, :, ground].flip(1)]], scale=4
        ),
    }
    return {
        "grid": f"{grid.resolution} voxels over {grid.bounds_min}..{grid.bounds_max} m",
        "carve + unproject time (ms)": ms,
        "occupied voxels (carved)": int(occ.sum()),
        "free voxels (carved)": int(free.sum()),
        "voxels seen by >= 1 view": int((count > 0).sum()),
        "IoU carved vs exact (observed voxels)": iou_known,
        "images": pictures,
    }


def run_demo(cfg: DemoConfig) -> Path:
    from .engine import Trainer
    from .methods import get_method
    from .viz import write_report

    out = Path(cfg.out)
    t_start = time.time()
    if cfg.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    method = get_method("toy")
    tcfg = method.make_config("cpu")
    tcfg.train.out_dir = out / "toy"
    tcfg.train.max_steps = cfg.steps
    tcfg.train.time_limit_min = cfg.max_minutes
    tcfg.train.ckpt_every = max(1, cfg.steps // 3)
    print(f"[1/2] training the toy ray-depth model ({cfg.steps} steps, at most {cfg.max_minutes} min)")
    toy = Trainer(method, tcfg).fit()

    print("[2/2] carving depth views into a voxel grid")
    geo = _geometry_section(out)

    sections = {
        "Toy method: depth along Plücker rays (held-out views)": toy,
        "Geometry core: depth carving and unprojection": geo,
    }
    report = write_report(out, "unrender demo", sections)
    summary = {
        "toy": {k: v for k, v in toy.items() if isinstance(v, (int, float))},
        "geometry": {k: v for k, v in geo.items() if isinstance(v, (int, float))},
        "seconds": time.time() - t_start,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"report: {report.resolve()}")
    return report
