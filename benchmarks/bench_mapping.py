"""Neural 3D mapping speed for the ``cpu`` preset: training steps/s, peak memory, inference ms per scene.

The reference measured in the same run is one forward+backward pass of a single 3x3x3
convolution at full grid resolution with the first level's channels (the most basic op of
the 3D net): the ratios say how many such convolutions a training step and an inference cost.

    python benchmarks/bench_mapping.py [--preset cpu] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

import torch
from _timing import median_time, train_step
from torch.utils.data import default_collate

from unrender.methods import get_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    method = get_method("mapping")
    cfg = method.make_config(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        cfg.data.root = Path(tmp)
        cfg.data.num_train = cfg.train.batch_size
        ds = method.build_dataset(cfg, "train")
        batch = default_collate([ds[i] for i in range(cfg.train.batch_size)])
    torch.manual_seed(0)
    model = method.build_model(cfg)
    step = train_step(method, model, batch, cfg)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_step = median_time(step, args.steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.eval()
    one = {k: v[:1] for k, v in batch.items()}
    with torch.no_grad():
        t_inf = median_time(lambda: model(one), args.steps)
    c0 = cfg.model.channels[0]
    X, Y, Z = cfg.data.resolution
    conv = torch.nn.Conv3d(c0, c0, 3, padding=1)
    x = torch.randn(cfg.train.batch_size, c0, Z, Y, X, requires_grad=True)
    t_ref = median_time(lambda: conv(x).sum().backward(), args.steps)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"preset {args.preset}: grid {cfg.data.resolution}, batch {cfg.train.batch_size}, "
          f"{n_params / 1e6:.2f} M parameters, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"training step: {1000 * t_step:.0f} ms ({1 / t_step:.2f} steps/s); peak RSS {peak_mb:.0f} MB "
          f"(before the steps: {rss0 / 1024:.0f} MB)")  # fmt: skip
    print(f"inference: {1000 * t_inf:.0f} ms per scene")
    print(f"reference conv3d fwd+bwd ({c0} ch, batch): {1000 * t_ref:.1f} ms; step = {t_step / t_ref:.1f}x, "
          f"inference = {t_inf / t_ref:.1f}x")  # fmt: skip
    print(json.dumps({"steps_per_s": 1 / t_step, "peak_rss_mb": peak_mb, "inference_ms": 1000 * t_inf,
                      "ref_conv_ms": 1000 * t_ref, "params": n_params}))  # fmt: skip


if __name__ == "__main__":
    main()
