"""Transformer novel-view synthesis speed: training steps/s and tokens/s, and the fused attention kernel.

Both architectures of the ``cpu`` preset (64x64, patch 8) on random posed views; with ``--device
cuda`` also the ``gpu`` preset (bf16, gradient checkpointing). References measured in the same run:
(1) attention through ``scaled_dot_product_attention`` against the same attention written out
(softmax(QK^T / sqrt(d)) V) on the model's shapes -- the ratio shows what the fused kernel buys;
(2) one forward+backward of a single ``dim x dim`` linear layer over all of a step's tokens -- the
ratio says how many such layers a training step costs.

    python benchmarks/bench_nvs.py [--steps 5] [--device cpu]
"""

from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F
from _timing import median_time, steps_and_device, train_step

from unrender.geometry import look_at, make_intrinsics
from unrender.methods import get_method


def random_batch(cfg, device: torch.device) -> dict[str, torch.Tensor]:
    d = cfg.data
    B, V, T, H, W = cfg.train.batch_size, d.num_input, d.num_target, d.height, d.width
    g = torch.Generator().manual_seed(0)
    eyes = torch.randn(B, V + T, 3, generator=g, dtype=torch.float64)
    cams = look_at(eyes / eyes.norm(dim=-1, keepdim=True) * 2.5, torch.zeros(3, dtype=torch.float64)).float()
    K = make_intrinsics(1.1 * W, 1.1 * W, (W - 1) / 2, (H - 1) / 2).expand(B, V + T, 3, 3)
    return {k: v.to(device) for k, v in {
        "images": torch.rand(B, V, 3, H, W, generator=g), "K": K[:, :V], "cam_from_world": cams[:, :V],
        "target_images": torch.rand(B, T, 3, H, W, generator=g), "target_K": K[:, V:],
        "target_cam_from_world": cams[:, V:]}.items()}  # fmt: skip


def bench(preset: str, arch: str, steps: int, device: torch.device) -> dict:
    method = get_method("nvs")
    cfg = method.make_config(preset)
    cfg.model.arch = arch
    m, d = cfg.model, cfg.data
    batch = random_batch(cfg, device)
    model = method.build_model(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.train.precision == "bf16" else None
    step = train_step(method, model, batch, cfg)

    def run():
        if ctx is None:
            return step()
        with ctx:
            return step()

    t_step = median_time(run, steps, device=device)
    per_view = (d.height // m.patch) * (d.width // m.patch)
    B, T = cfg.train.batch_size, d.num_target
    if arch == "decoder":  # every target sequence carries all input tokens
        tokens = B * T * (d.num_input + 1) * per_view
        seq, rows = (d.num_input + 1) * per_view, B * T
    else:  # encoder once per sample, decoder once per target
        tokens = B * (m.latents + d.num_input * per_view) + B * T * (per_view + m.latents)
        seq, rows = per_view + m.latents, B * T
    # attention reference on the decoder's shapes
    hd = m.dim // m.heads
    q, k, v = (torch.randn(rows, m.heads, seq, hd, device=device) for _ in range(3))
    t_fused = median_time(lambda: F.scaled_dot_product_attention(q, k, v), steps, device=device)
    t_naive = median_time(lambda: torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v, steps, device=device)
    lin = torch.nn.Linear(m.dim, m.dim, bias=False).to(device)
    x = torch.randn(tokens, m.dim, device=device, requires_grad=True)
    t_ref = median_time(lambda: lin(x).sum().backward(), steps, device=device)
    return {"preset": preset, "arch": arch, "params": params, "batch": B, "tokens_per_step": tokens,
            "steps_per_s": 1 / t_step, "tokens_per_s": tokens / t_step, "step_over_linear": t_step / t_ref,
            "fused_attention_speedup": t_naive / t_fused}  # fmt: skip


def main() -> None:
    steps, device = steps_and_device(__doc__)
    presets = ("cpu", "gpu") if device.type == "cuda" else ("cpu",)
    for preset in presets:
        for arch in ("decoder", "encdec"):
            r = bench(preset, arch, steps, device)
            print(f"{preset} preset, {arch} ({r['params'] / 1e6:.2f}M parameters, batch {r['batch']}): "
                  f"{r['steps_per_s']:.2f} steps/s, {r['tokens_per_s']:.0f} tokens/s "
                  f"({r['step_over_linear']:.0f}x one linear layer over the step's tokens); fused attention "
                  f"{r['fused_attention_speedup']:.2f}x the written-out attention")  # fmt: skip
            print(json.dumps(r))


if __name__ == "__main__":
    main()
