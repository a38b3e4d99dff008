"""Learned-energy pose lifting speed: inference poses/s and ms per inner step for K = 1..8, training steps/s.

The ``cpu`` preset's energy model on synthetic poses (batch of the preset). References measured in the
same run: the initial network alone (K = 0) -- the ratio says what the unrolled steps cost on top of a
feed-forward lifter -- and the 1024 x 2 MLP baseline, which the energy model must match at 10x fewer
parameters.

    python benchmarks/bench_energy.py [--steps 5] [--device cpu]
"""

from __future__ import annotations

import json

import torch
from _timing import median_time, steps_and_device, train_step

from unrender.methods import get_method
from unrender.methods.energy.pose.data import SYNTH_K, synth_poses


def main() -> None:
    steps, device = steps_and_device(__doc__)
    method = get_method("energy-pose")
    cfg = method.make_config("cpu")
    B = cfg.train.batch_size
    J, uv = synth_poses(B, seed=0)
    batch = {"joints_2d": uv.float(), "K": SYNTH_K.float().expand(B, 3, 3), "joints_cam": J.float()}
    batch = {k: v.to(device) for k, v in batch.items()}
    torch.manual_seed(0)
    model = method.build_model(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    model.eval()
    t = {k: median_time(lambda k=k: model(batch, steps=k), steps, device=device) for k in range(9)}
    mlp_cfg = method.make_config("cpu")
    mlp_cfg.model.kind, mlp_cfg.model.width, mlp_cfg.model.blocks, mlp_cfg.model.dropout = "mlp", 1024, 2, 0.5
    mlp = method.build_model(mlp_cfg).to(device).eval()
    t_mlp = median_time(lambda: mlp(batch), steps, device=device)
    mlp_params = sum(p.numel() for p in mlp.parameters())
    print(f"energy model ({params / 1e3:.0f}k parameters), batch {B}: initial network alone {B / t[0]:.0f} poses/s; "
          f"1024x2 MLP ({mlp_params / 1e6:.2f}M parameters) {B / t_mlp:.0f} poses/s")  # fmt: skip
    for k in range(1, 9):
        print(f"K = {k}: {B / t[k]:.0f} poses/s, {1000 * (t[k] - t[0]) / k:.2f} ms per inner step, "
              f"time {t[k] / t[0]:.1f}x the initial network's, {t[k] / t_mlp:.1f}x the 1024x2 MLP's")  # fmt: skip
    model.train()
    t_train = median_time(train_step(method, model, batch, cfg), steps, device=device)
    mlp.train()
    t_train_mlp = median_time(train_step(method, mlp, batch, mlp_cfg), steps, device=device)
    print(
        f"training (K = {cfg.model.steps}, double backprop): {1 / t_train:.1f} steps/s; "
        f"the 1024x2 MLP {1 / t_train_mlp:.1f} steps/s ({t_train / t_train_mlp:.1f}x)"
    )
    print(json.dumps({"batch": B, "params": params, "poses_per_s": {k: B / t[k] for k in t},
                      "ms_per_step": {k: 1000 * (t[k] - t[0]) / k for k in range(1, 9)},
                      "train_steps_per_s": 1 / t_train, "mlp_poses_per_s": B / t_mlp,
                      "mlp_train_steps_per_s": 1 / t_train_mlp}))  # fmt: skip


if __name__ == "__main__":
    main()
