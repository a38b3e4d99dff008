"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def median_time(
    fn: Callable[[], object], repeats: int, *, device: torch.device | None = None, warmup: int = 1
) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` calls (CUDA is synchronised)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step(method, model: torch.nn.Module, batch: dict, cfg, *, lr: float = 1e-4) -> Callable[[], None]:
    """One optimiser step of ``method``'s loss on a fixed batch (AdamW), as a callable to time."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def step() -> None:
        loss = method.loss(model, batch, cfg)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def steps_and_device(doc: str) -> tuple[int, torch.device]:
    """The ``--steps`` and ``--device`` options every method benchmark takes; prints the thread count."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"{torch.get_num_threads()} threads, device {device}")
    return args.steps, device
