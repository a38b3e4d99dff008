"""Speed of dynamic-scene mapping's two inner loops, each as a ratio against a reference timed in the same run.

(1) The parameter-free flow's correlation: every voxel of the traffic grid (64 x 9 x 64, C channels) against
its (2r + 1)^3 neighbours, ``unrender.nn.local_correlation`` (gathered, chunked) against the cost-volume loop
people write first (one shifted slice of the padded volume per offset); the two agree. The ratio is the
reference's time over ours (> 1: ours is faster). Also timed: ours on 512 sampled voxels, as training uses it.

(2) One frame of render-and-compare tracking (``unrender.methods.dynamic.track``): every pose hypothesis
placed into the background and rendered into the rig's 3 cameras, against rendering the background alone
that many times (the ratio: what placing the object adds to the renders). (3) One frame of the occupancy
tracker (the default: every hypothesis's object occupancy against the frame's foreground and free space, no
rendering), against the render-and-compare frame (the ratio: how much cheaper it is).

    python benchmarks/bench_dynamic.py [--device cuda] [--channels 16] [--radius 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F
from _timing import median_time

from unrender.geometry import look_at, make_intrinsics
from unrender.methods.dynamic.config import TrackConfig
from unrender.methods.dynamic.track import (
    crop_object,
    pose_hypotheses,
    render_planes,
    render_volume,
    track,
    track_occupancy,
)
from unrender.nn import local_correlation, neighbourhood_offsets
from unrender.world.generators.traffic import ANCHOR_GRID


def correlation_by_shifts(f0: torch.Tensor, f1: torch.Tensor, radius: int) -> torch.Tensor:
    """The reference: ``(K, Z, Y, X)`` dot products, one shifted slice of the zero-padded ``f1`` per offset."""
    C, Z, Y, X = f0.shape
    r = radius
    pad = F.pad(f1, (r, r, r, r, r, r))
    out = [
        (f0 * pad[:, r + dz : r + dz + Z, r + dy : r + dy + Y, r + dx : r + dx + X]).sum(0)
        for dx, dy, dz in neighbourhood_offsets(radius).tolist()
    ]
    return torch.stack(out) / math.sqrt(C)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--radius", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    g = ANCHOR_GRID
    C, r = args.channels, args.radius
    f0 = F.normalize(torch.randn(C, *g.shape, device=dev), dim=0)
    f1 = torch.roll(f0, 1, dims=-1)
    ours, ok = local_correlation(f0, f1, r)
    ref = correlation_by_shifts(f0, f1, r).reshape(ours.shape)
    torch.testing.assert_close(ours, ref * ok, atol=1e-5, rtol=1e-5)
    t_ours = median_time(lambda: local_correlation(f0, f1, r), args.repeats, device=dev)
    t_ref = median_time(lambda: correlation_by_shifts(f0, f1, r), args.repeats, device=dev)
    index = torch.randint(g.num_voxels, (512,), device=dev)
    t_sampled = median_time(lambda: local_correlation(f0, f1, r, index=index), args.repeats, device=dev)

    # one tracking step: a car-sized object in an empty street volume, seen by the rig at 48 x 72
    cfg = TrackConfig()
    H, W, V = 48, 72, 3
    bg = torch.zeros(4, *g.shape, device=dev)
    bg[:, :, -1] = 1.0  # the road layer
    box = torch.tensor([0.0, -0.8, 8.0, 4.5, 1.6, 1.9, 0.0], device=dev)
    volume = bg.clone()
    volume[:, 10:30, 5:8, 28:36] = 1.0
    obj, og = crop_object(volume, g, box)
    K = make_intrinsics(50.0, 50.0, (W - 1) / 2, (H - 1) / 2, device=dev).expand(2, V, 3, 3)
    eyes = torch.tensor([[0.0, -1.65, 0.0]] * V, device=dev)
    yaws = torch.tensor([0.0, -1.05, 1.05], device=dev)
    targets = eyes + torch.stack([torch.sin(yaws), torch.zeros(V, device=dev), torch.cos(yaws)], -1)
    cams = look_at(eyes, targets).expand(2, V, 4, 4)
    images = torch.rand(2, V, 3, H, W, device=dev)
    n = len(pose_hypotheses(box, torch.zeros(3, device=dev), step=cfg.step, reach=cfg.reach, yaw_step=cfg.yaw_step))
    depths = render_planes(cfg, dev)
    t_track = median_time(lambda: track(bg, g, obj, og, box, images, K, cams, cfg), args.repeats, device=dev)
    t_render = median_time(lambda: [render_volume(bg, g, K[1], cams[1], H, W, depths) for _ in range(n)],
                           args.repeats, device=dev)  # fmt: skip

    occupied = volume[0] > 0.5
    fg, free = occupied[None].expand(2, *g.shape), (~occupied)[None].expand(2, *g.shape)
    t_occ = median_time(lambda: track_occupancy(fg, free, g, obj[:1], og, box, cfg), args.repeats, device=dev)

    rows = [
        {"op": f"correlation {g.shape} C={C} r={r}", "ms": 1000 * t_ours, "reference_ms": 1000 * t_ref,
         "ratio": t_ref / t_ours},
        {"op": "correlation, 512 sampled voxels", "ms": 1000 * t_sampled, "reference_ms": 1000 * t_ref,
         "ratio": t_ref / t_sampled},
        {"op": f"tracking step, {n} hypotheses x {V} views {H}x{W}", "ms": 1000 * t_track,
         "reference_ms": 1000 * t_render, "ratio": t_render / t_track},
        {"op": f"occupancy tracking step, {n} hypotheses", "ms": 1000 * t_occ, "reference_ms": 1000 * t_track,
         "ratio": t_track / t_occ},
    ]  # fmt: skip
    print(f"device: {dev}  threads: {torch.get_num_threads()}  (median of {args.repeats} runs)")
    print(f"{'operation':<52}{'ms':>10}{'ref ms':>10}{'ratio':>8}")
    for row in rows:
        print(f"{row['op']:<52}{row['ms']:>10.1f}{row['reference_ms']:>10.1f}{row['ratio']:>8.2f}")
    print(json.dumps({"device": str(dev), "threads": torch.get_num_threads(), "results": rows}))
    assert all(math.isfinite(r["ratio"]) for r in rows)


if __name__ == "__main__":
    main()
