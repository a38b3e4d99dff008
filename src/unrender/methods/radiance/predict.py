"""``unrender predict radiance``: fit a radiance grid to a user's capture (a transforms.json with its images)
with the ``fox`` settings, then write what it learned.

Fitting is an ordinary training run (in ``<out>/fit``: checkpoints, resumable, ``eval.json`` with the
held-out scores); ``--ckpt`` skips it and uses a fitted run or the shipped fox grid instead. Writes, under
``--out``: ``orbit.mp4`` and ``orbit_0000.png`` (a pinhole camera circling the capture's look-at point at
its cameras' mean distance and height), ``occupancy.ply`` (the occupied voxels' centres with their colours,
in the capture's own coordinates) and ``occupancy.binvox`` (the same voxels, on a cube around the look-at
point), and ``predictions.json`` (the held-out scores, the fitting time and the files).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...data.capture import orbit_cameras
from ...data.formats import VideoWriter, write_binvox, write_ply
from ...geometry import VoxelGrid, camera_rays
from .data import load_frame
from .model import RadianceGrid

__all__ = ["RadiancePredictArgs", "export_occupancy", "predict_radiance", "render_orbit"]


@dataclass
class RadiancePredictArgs:
    """``unrender predict radiance`` arguments."""

    input: Path | None = None
    """The capture to fit: a transforms.json (instant-ngp / NeRF layout) with its images."""
    ckpt: Path | None = None
    """Instead of fitting: a fitted run or checkpoint (``shipped``: the fox grid shipped with unrender)."""
    out: Path = Path("predictions/radiance")
    """Where the fit, orbit.mp4, the occupancy files and predictions.json go."""
    preset: str = "fox"
    """The fitting settings (``unrender train radiance --preset``)."""
    steps: int = 0
    """Fitting steps (0: the preset's)."""
    downscale: int = 0
    """Fit at 1/downscale of the image size (0: the preset's, 8)."""
    holdout: int = 8
    """Every N-th image is held out of the fit and scored (0: fit all)."""
    orbit: int = 60
    """Frames of the orbit video."""
    fps: float = 15.0
    device: str = "auto"


def render_orbit(model: RadianceGrid, n: int, *, chunk: int = 8192):
    """Yield ``n`` frames ``(3, H, W)`` of a pinhole camera (the capture's first intrinsics at the fitted
    size) circling the capture (:func:`unrender.data.capture.orbit_cameras` of the model's ``circle``)."""
    from .evaluate import render_rays

    H, W = (int(v) for v in model.size)
    if H < 1 or W < 1:
        raise ValueError("this radiance grid has no capture frame (its size is 0): it was never fitted")
    for T in orbit_cameras(None, n, circle=model.circle.cpu()):
        o, d = camera_rays(model.K.cpu(), T, H, W)
        out = render_rays(model, o.reshape(-1, 3).float(), d.reshape(-1, 3).float(), chunk)
        yield out["rgb"].T.reshape(3, H, W).clamp(0, 1)


def export_occupancy(
    model: RadianceGrid, alpha: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, VoxelGrid]:
    """The occupied voxels of the linearly mapped ball's cube (half the finest grid's resolution per edge).

    A voxel is occupied when a ray crossing it would stop with probability ``alpha`` or more
    (``1 - exp(-density x voxel size) >= alpha``).

    Returns:
        ``points (P, 3)`` voxel centres and ``colours (P, 3)`` in [0, 1], in the capture's coordinates;
        ``occupancy (Z, Y, X)`` bool; its :class:`VoxelGrid` (the capture's coordinates).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    m = model.m
    n = max(2, m.resolution // 2)
    r = m.inner_radius
    size = 2 * r / n
    axis = -r + (torch.arange(n, dtype=torch.float32) + 0.5) * size
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    pts = torch.stack([x, y, z], -1)  # (Z, Y, X, 3), normalised frame
    device = next(model.parameters()).device
    with torch.no_grad():
        sigma, rgb = zip(*(model.query(p.to(device)) for p in pts), strict=True)
    sigma, rgb = torch.stack(sigma).cpu(), torch.stack(rgb).cpu()
    occ = (1 - torch.exp(-sigma * size)) >= alpha
    scale, centre = float(model.scale), model.centre.cpu().float()
    world = pts[occ] / scale + centre
    lo = (centre - r / scale).tolist()
    grid = VoxelGrid(tuple(lo), tuple(v + 2 * r / scale for v in lo), (n, n, n))
    return world, rgb[occ], occ, grid


def predict_radiance(args: RadiancePredictArgs) -> dict[str, Any]:
    """Fit a radiance grid to a transforms.json capture (or take a fitted one with --ckpt), then write
    orbit.mp4, occupancy.ply, occupancy.binvox and predictions.json under --out."""
    from ...engine import Trainer
    from ...io import atomic_write_text
    from ...viz import save_png, to_uint8
    from ...weights import load_trained
    from . import METHOD

    if (args.input is None) == (args.ckpt is None):
        raise ValueError("give the capture to fit (--input TRANSFORMS_JSON) or a fitted grid (--ckpt RUN|shipped)")
    if args.orbit < 1 or not args.fps > 0:
        raise ValueError(f"--orbit must be >= 1 and --fps > 0, got {args.orbit} and {args.fps}")
    summary: dict[str, Any] = {}
    if args.input is not None:
        cfg = METHOD.make_config(args.preset)
        cfg.data.capture = args.input
        cfg.data.holdout = args.holdout
        if args.downscale:
            cfg.data.downscale = args.downscale
        if args.steps:
            cfg.train.max_steps = args.steps
        cfg.train.out_dir = args.out / "fit"
        cfg.train.device = args.device
        frame = load_frame(args.input, cfg.data.downscale, cfg.data.holdout)  # fails before a run folder exists
        summary["normalisation"] = {"centre": frame.centre.tolist(), "scale": frame.scale, "how": frame.how}
        t0 = time.time()
        metrics = Trainer(METHOD, cfg).fit()
        record = json.loads((cfg.train.out_dir / "eval.json").read_text())
        summary.update(input=str(args.input), fit=str(cfg.train.out_dir), fit_minutes=(time.time() - t0) / 60,
                       steps=record["step"], max_steps=record["max_steps"])  # fmt: skip
        if "stopped_by" in record:
            summary["stopped_by"] = record["stopped_by"]
        summary["held_out"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        ckpt = cfg.train.out_dir
    else:
        ckpt = None if str(args.ckpt) == "shipped" else args.ckpt
    cfg, model, folder, _ = load_trained("radiance", ckpt, args.device)
    summary["checkpoint"] = str(folder)
    args.out.mkdir(parents=True, exist_ok=True)
    video = VideoWriter(args.out / "orbit.mp4", fps=args.fps)
    try:
        frames = render_orbit(model, args.orbit)
        for i, frame in enumerate(tqdm(frames, total=args.orbit, desc="orbit", unit="frame", dynamic_ncols=True)):
            image = to_uint8(frame)
            video.add(image)
            if i == 0:
                save_png(args.out / "orbit_0000.png", image)
    except BaseException:
        video.abort()
        raise
    summary["video"] = str(video.close())
    points, colours, occ, grid = export_occupancy(model, cfg.eval.export_alpha)
    write_ply(args.out / "occupancy.ply", points, colours)
    write_binvox(args.out / "occupancy.binvox", occ, grid)
    summary.update(occupied_voxels=int(occ.sum()), ply=str(args.out / "occupancy.ply"),
                   binvox=str(args.out / "occupancy.binvox"))  # fmt: skip
    atomic_write_text(args.out / "predictions.json", json.dumps(summary, indent=2))
    return summary
