"""Metric monocular depth speed: training steps/s and inference frames/s at 192x64 and 640x192.

Random frames with the model and batch of the ``cpu`` preset (192x64) and of the ``gpu`` preset
(640x192); masks are empty, so the metric-scale terms cost only their road-plane fit. The
reference measured in the same run is one forward+backward pass of a single 3x3 convolution
(3 -> first-level channels) over the batch at full resolution: the ratios say how many such
convolutions a training step and an inference cost.

    python benchmarks/bench_depth.py [--steps 5] [--device cpu]
"""

from __future__ import annotations

import json

import torch
from _timing import median_time, steps_and_device, train_step

from unrender.geometry import make_intrinsics
from unrender.methods import get_method


def bench(preset: str, steps: int, device: torch.device) -> dict[str, float]:
    method = get_method("depth")
    cfg = method.make_config(preset)
    B, H, W = cfg.train.batch_size, cfg.data.height, cfg.data.width
    torch.manual_seed(0)
    batch = {
        "rgb": torch.rand(B, 3, 3, H, W, device=device),
        "K": make_intrinsics(0.58 * W, 0.58 * W, (W - 1) / 2, (H - 1) / 2)[None].expand(B, 3, 3).to(device),
        "masks": torch.zeros(B, cfg.data.max_objects, H, W, dtype=torch.bool, device=device),
        "labels": torch.full((B, cfg.data.max_objects), -1, dtype=torch.long, device=device),
        "road": torch.zeros(B, 1, H, W, dtype=torch.bool, device=device),
    }
    batch["road"][:, :, H // 2 :] = True
    model = method.build_model(cfg).to(device)
    step = train_step(method, model, batch, cfg)

    t_step = median_time(step, steps, device=device)
    model.eval()
    frame = batch["rgb"][:1, 1]
    with torch.no_grad():
        t_inf = median_time(lambda: model.predict_depth(frame), steps, device=device)
    conv = torch.nn.Conv2d(3, cfg.model.channels[0], 3, padding=1).to(device)
    x = torch.rand(B, 3, H, W, device=device, requires_grad=True)
    t_ref = median_time(lambda: conv(x).sum().backward(), steps, device=device)
    return {"preset": preset, "size": f"{W}x{H}", "batch": B, "steps_per_s": 1 / t_step, "frames_per_s": 1 / t_inf,
            "step_over_ref": t_step / t_ref, "inference_over_ref": t_inf / t_ref, "ref_ms": 1000 * t_ref}  # fmt: skip


def main() -> None:
    steps, device = steps_and_device(__doc__)
    for preset in ("cpu", "gpu"):
        r = bench(preset, steps, device)
        print(f"{r['size']} ({r['preset']} preset, batch {r['batch']}): training {r['steps_per_s']:.2f} steps/s "
              f"({r['step_over_ref']:.0f}x the reference conv), inference {r['frames_per_s']:.1f} frames/s "
              f"({r['inference_over_ref']:.1f}x); reference {r['ref_ms']:.1f} ms")  # fmt: skip
        print(json.dumps(r))


if __name__ == "__main__":
    main()
