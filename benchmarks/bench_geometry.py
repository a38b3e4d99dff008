"""Throughput of the voxel <-> image maps of neural 3D mapping, as a ratio of a plain copy.

Times (1) unprojecting 4 views of 128x416 (C channels) into a 128x32x128 grid
(X x Y x Z) and (2) sampling a C-channel volume on a camera frustum at D depth
planes. For each it prints the bytes moved (inputs read + outputs written) per
second, and that rate as a fraction of a plain ``Tensor.copy_`` of the same
number of bytes timed in the same run on the same device: 1.0 would mean the
op runs at copy speed.

    python benchmarks/bench_geometry.py [--device cuda] [--channels 4] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import math

import torch
from _timing import median_time

from unrender.geometry import VoxelGrid, look_at, make_intrinsics, sample_frustum, unproject_to_grid


def copy_time(nbytes: int, device: torch.device, repeats: int) -> float:
    """Time to copy ``nbytes`` (read + write counted as nbytes moved, like the ops)."""
    n = max(1, nbytes // 8)  # copy n float32: reads 4n and writes 4n bytes = nbytes moved
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    return median_time(lambda: dst.copy_(src), repeats, device=device, warmup=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--depth-planes", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)

    N, H, W, C, D = 4, 128, 416, args.channels, args.depth_planes
    grid = VoxelGrid((-16.0, -4.0, 0.0), (16.0, 4.0, 32.0), (128, 32, 128))  # X, Y, Z
    K = make_intrinsics(300.0, 300.0, (W - 1) / 2, (H - 1) / 2, device=dev).expand(N, 3, 3)
    eyes = torch.stack([torch.tensor([x, -1.0, -2.0]) for x in torch.linspace(-2, 2, N).tolist()]).to(dev)
    T = look_at(eyes, eyes + torch.tensor([0.0, 0.2, 10.0], device=dev))
    images = torch.rand(1, N, C, H, W, device=dev)
    el = images.element_size()

    results = []
    t = median_time(lambda: unproject_to_grid(grid, images, K[None], T[None]), args.repeats, device=dev, warmup=2)
    moved = images.numel() * el + (C + 1) * grid.num_voxels * el  # images read, features + count written
    results.append(("unproject 4x128x416 -> 128x32x128", t, moved))

    vol = torch.rand(1, C, *grid.shape, device=dev)
    depths = torch.linspace(1.0, 31.0, D, device=dev)
    t = median_time(lambda: sample_frustum(vol, grid, K[0], T[0], H, W, depths), args.repeats, device=dev, warmup=2)
    moved = vol.numel() * el + C * D * H * W * el  # volume read, frustum features written
    results.append((f"frustum sample 128x32x128 -> {D}x128x416", t, moved))

    print(f"device: {dev}  channels: {C}  (median of {args.repeats} runs)")
    print(f"{'operation':<42}{'time (ms)':>11}{'GB/s':>9}{'copy GB/s':>11}{'ratio':>8}")
    rows = []
    for name, t, moved in results:
        tc = copy_time(moved, dev, args.repeats)
        rate, copy_rate = moved / t / 1e9, moved / tc / 1e9
        ratio = rate / copy_rate
        print(f"{name:<42}{1000 * t:>11.1f}{rate:>9.2f}{copy_rate:>11.2f}{ratio:>8.3f}")
        rows.append({"op": name, "ms": 1000 * t, "gb_per_s": rate, "copy_gb_per_s": copy_rate, "ratio": ratio})
    print(json.dumps({"device": str(dev), "threads": torch.get_num_threads(), "results": rows}))
    assert all(math.isfinite(r["ratio"]) for r in rows)


if __name__ == "__main__":
    main()
