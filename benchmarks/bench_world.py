"""Ray-caster throughput and synthetic-dataset generation time.

1. Renders one 128x128 view (with shadows) of a generated room cut down to 30
   primitives and reports rays x primitives per second, next to a reference
   measured in the same run: one dot product per ray-primitive pair over the
   same (primitives, rays, 3) tensors, the least work any intersection test does.
   The ratio says how many such dot products one full ray-primitive test costs.
2. Times ``unrender synth rooms --num N`` (4 views of 128x128 each, 2 workers)
   into a temporary folder.

    python benchmarks/bench_world.py [--num 200] [--workers 2] [--skip-synth]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from _timing import median_time

from unrender.data.synth import write_dataset
from unrender.world import Scene, render
from unrender.world.generators import rooms
from unrender.world.sample import SynthConfig


def room_with(n_prims: int, H: int, W: int):
    """A generated room keeping whole objects in scene order until ``n_prims`` primitives."""
    lay = rooms(np.random.default_rng(0), views=1, H=H, W=W)
    objs, count = [], 0
    for o in lay.scene.objects:
        if count + len(o.parts) > n_prims:
            continue
        objs.append(o)
        count += len(o.parts)
    return Scene(objs, light_dir=lay.scene.light_dir), lay.K, lay.cam_from_world, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-synth", action="store_true")
    args = ap.parse_args()
    H = W = 128
    scene, K, T, P = room_with(30, H, W)
    R = H * W
    t_render = median_time(lambda: render(scene, K, T, H, W), args.repeats)
    o = torch.rand(P, R, 3)
    d = torch.rand(P, R, 3)
    t_dot = median_time(lambda: (o * d).sum(-1), args.repeats)
    rate = P * R / t_render
    print(f"threads: {torch.get_num_threads()}")
    print(
        f"render 128x128, {P} primitives, shadows: {1000 * t_render:.1f} ms = {rate / 1e6:.2f} M ray-primitive tests/s "
        f"(camera rays only; shadow rays double the work)"
    )
    ratio = t_render / t_dot
    print(f"reference: one dot product per ray-primitive pair: {1000 * t_dot:.2f} ms; render/reference = {ratio:.1f}")
    result = {"primitives": P, "render_ms": 1000 * t_render, "ray_prims_per_s": rate, "ref_dot_ms": 1000 * t_dot,
              "ratio_to_dot": t_render / t_dot}  # fmt: skip
    if not args.skip_synth:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SynthConfig(kind="rooms", num=args.num, views=4, height=H, width=W)
            t0 = time.perf_counter()
            write_dataset(cfg, tmp, workers=args.workers, progress=False)
            dt = time.perf_counter() - t0
        print(f"unrender synth rooms --num {args.num} (4 views of 128x128, {args.workers} workers): {dt:.1f} s")
        result["synth_rooms_s"] = dt
        result["synth_num"] = args.num
    print(json.dumps(result))


if __name__ == "__main__":
    main()
