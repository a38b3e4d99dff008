"""The trainer: optimiser, LR schedule, clipping, non-finite and loss-spike skipping, checkpoints, logs, DDP.

A method supplies model, data, loss and evaluation (see :class:`unrender.methods.Method`);
everything about optimisation belongs here. Runs resume exactly: data order is a
function of (seed, step), and weights, optimiser, scheduler and RNG states are
restored from the newest intact checkpoint. The RNG state is restored last, after
everything that draws from it at start-up (model, dataset, loader), and evaluation
during training leaves it untouched, so dropout and other random draws in the loss
continue on the same stream as in an uninterrupted run. One trainer at a time holds
a run folder (an OS file lock).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler, default_collate
from tqdm.auto import tqdm

from ..io import FolderLock, atomic_write_text
from ..methods.base import Method
from ..viz import save_eval_images
from .checkpoint import (
    clean_leftovers,
    get_rng_state,
    load_resumable_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig, check_config, config_to_json
from .distributed import DistInfo, all_true, cleanup_distributed, init_distributed, pick_device
from .logging import RunLogger

__all__ = [
    "Trainer",
    "StepBatchSampler",
    "build_optimizer",
    "build_scheduler",
    "preserved_rng",
    "seed_everything",
    "unwrap",
]


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving the Python, NumPy or torch RNG streams (evaluation during training)."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


class StepBatchSampler(Sampler[list[int]]):
    """Per-rank index batches that depend only on (seed, step): exact resume and DDP == 1 process.

    Epoch ``e`` is a permutation drawn from ``seed + e``; global step ``s`` takes
    the next ``global_batch`` indices of the endless stream of epochs, and rank
    ``r`` takes every ``world``-th of them from position ``r``.
    """

    def __init__(self, n: int, global_batch: int, *, seed: int, rank: int, world: int, start_step: int, steps: int):
        if n <= 0:
            raise ValueError("the training dataset is empty")
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world} DDP processes")
        self.n, self.gb, self.seed, self.rank, self.world = n, global_batch, seed, rank, world
        self.start, self.steps = start_step, steps

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def _perm(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))

    def __iter__(self) -> Iterator[list[int]]:
        pos = self.start * self.gb
        epoch, off = divmod(pos, self.n)
        perm = self._perm(epoch)
        for _ in range(len(self)):
            batch: list[int] = []
            while len(batch) < self.gb:
                take = perm[off : off + self.gb - len(batch)].tolist()
                batch += take
                off += len(take)
                if off >= self.n:
                    epoch, off = epoch + 1, 0
                    perm = self._perm(epoch)
            yield batch[self.rank :: self.world]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 or cfg.decay_1d else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.betas[0])


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant, cosine or linear decay to ``min_lr_ratio``."""

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        shape = 0.5 * (1 + math.cos(math.pi * t)) if cfg.schedule == "cosine" else 1 - t
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Train ``method`` with config ``cfg`` (a method config with a ``train: TrainConfig`` field).

    ``hooks`` are called as ``hook(trainer, step)`` after every optimiser step
    (tests use one to simulate a crash).
    """

    def __init__(self, method: Method, cfg: Any, *, hooks: list[Callable[[Trainer, int], None]] | None = None):
        check_config(cfg)
        self.method, self.cfg, self.tc = method, cfg, cfg.train
        self.hooks = hooks or []
        self.device = pick_device(self.tc.device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.out_dir = Path(self.tc.out_dir)
        self.step = 0
        self.skipped = 0
        self.bad_in_a_row = 0
        self.loss_ema, self.loss_seen = 0.0, 0  # running loss of the spike filter
        self.lock: FolderLock | None = None
        self._rng_to_restore: dict[str, Any] | None = None

    # ----------------------------------------------------------------------------------- set-up
    def _setup(self) -> None:
        seed_everything(self.tc.seed)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.lock = FolderLock(self.out_dir, "unrender trainer").acquire()
            clean_leftovers(self.out_dir / "checkpoints")
        self.model = self.method.build_model(self.cfg).to(self.device)
        self.optimizer = build_optimizer(self.model, self.tc)
        self.scheduler = build_scheduler(self.optimizer, self.tc)
        self.config_json = config_to_json(self.cfg)
        ck = load_resumable_checkpoint(self.out_dir, self.model) if self.tc.resume else None
        self._rng_to_restore = self._restore(ck) if ck is not None else None
        if self.dist.enabled:
            self.ddp = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        else:
            self.ddp = self.model
        self.logger = RunLogger(self.out_dir, enabled=self.dist.is_main, tensorboard=self.tc.tensorboard,
                                start_step=self.step)  # fmt: skip
        if self.dist.is_main:
            atomic_write_text(self.out_dir / "config.json", self.config_json)

    def _restore(self, ck: dict[str, Any]) -> dict[str, Any]:
        """Restore optimiser, scheduler and counters from a checkpoint read by :func:`load_resumable_checkpoint`
        (the weights are in the model already); return the RNG state to set once start-up is done."""
        if ck["state"].get("method") not in (None, self.method.name):
            raise ValueError(
                f"checkpoint {ck['path']} is of method {ck['state']['method']!r}, not {self.method.name!r}"
            )
        ts = ck["train_state"]
        self.optimizer.load_state_dict(ts["optimizer"])
        self.scheduler.load_state_dict(ts["scheduler"])
        rng = ts["rng"]
        self.step = int(ck["state"]["step"])
        self.skipped = int(ck["state"].get("skipped", 0))
        self.loss_ema = float(ck["state"].get("loss_ema", 0.0))
        self.loss_seen = int(ck["state"].get("loss_seen", 0))
        if self.dist.is_main:
            tqdm.write(f"resuming from {ck['path']} at step {self.step}")
        return rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0]

    def _loader(self) -> DataLoader:
        data = self.method.build_dataset(self.cfg, "train")
        sampler = StepBatchSampler(
            len(data), self.tc.batch_size, seed=self.tc.seed, rank=self.dist.rank, world=self.dist.world_size,
            start_step=self.step, steps=self.tc.max_steps,
        )  # fmt: skip
        return DataLoader(
            data,
            batch_sampler=sampler,
            num_workers=self.tc.num_workers,
            collate_fn=self.method.collate or default_collate,
            pin_memory=self.device.type == "cuda",
            # the loader's own seed stream (worker seeds) is a function of (seed, step), not of the global RNG
            generator=torch.Generator().manual_seed(self.tc.seed * 100_003 + self.step),
        )

    # ------------------------------------------------------------------------------------ steps
    def _autocast(self):
        if self.tc.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: Any) -> dict[str, float]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            losses = self.method.loss(self.ddp, batch, self.cfg)
        if "loss" not in losses:
            raise KeyError(f"method {self.method.name!r}: loss() must return a dict with a 'loss' entry")
        loss = losses["loss"]
        ok = all_true(bool(torch.isfinite(loss.detach()).all()), self.device, self.dist)
        # a loss spike is skipped too, but is not a non-finite step: the running loss it lifts ends a
        # lasting rise, so it never counts towards max_bad_steps
        spike = ok and self.tc.spike_factor > 0 and not all_true(not self._spike(float(loss.detach())),
                                                                  self.device, self.dist)  # fmt: skip
        grad_norm = float("nan")
        if ok and not spike:
            loss.backward()
            params = [p for p in self.model.parameters() if p.grad is not None]
            if self.tc.grad_clip > 0:
                gn = torch.nn.utils.clip_grad_norm_(params, self.tc.grad_clip)
            else:
                gn = (
                    torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params]))
                    if params
                    else torch.zeros(())
                )
            grad_norm = float(gn)
            ok = all_true(math.isfinite(grad_norm), self.device, self.dist)
        if ok and not spike:
            self.optimizer.step()
            self.bad_in_a_row = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.bad_in_a_row += 0 if spike else 1
            if self.bad_in_a_row > self.tc.max_bad_steps:
                raise FloatingPointError(
                    f"{self.bad_in_a_row} consecutive steps had a non-finite loss or gradient (step {self.step}); "
                    "lower the learning rate or check the data"
                )
        with warnings.catch_warnings():  # a skipped first step still advances the schedule
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()
        out = {k: float(v.detach()) for k, v in losses.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
        out.update(grad_norm=grad_norm, lr=self.scheduler.get_last_lr()[0], skipped=self.skipped)
        return out

    def _spike(self, loss: float) -> bool:
        """Whether ``loss`` is a spike (above ``spike_factor`` x the running loss); updates the running loss."""
        limit = self.tc.spike_factor * self.loss_ema
        spike = self.loss_seen >= 20 and loss > limit
        value = min(loss, limit) if spike else loss
        self.loss_ema = value if self.loss_seen == 0 else 0.98 * self.loss_ema + 0.02 * value
        self.loss_seen += 1
        return spike

    def save(self) -> Path | None:
        rng = get_rng_state()
        if self.dist.enabled:
            gathered: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        path = None
        if self.dist.is_main:
            train_state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": gathered,
            }
            path = save_checkpoint(
                self.out_dir / "checkpoints",
                self.step,
                self.model,
                config_json=self.config_json,
                state={
                    "method": self.method.name,
                    "skipped": self.skipped,
                    "loss_ema": self.loss_ema,
                    "loss_seen": self.loss_seen,
                },
                train_state=train_state,
                keep=self.tc.keep_ckpts,
            )
        if self.dist.enabled:
            dist.barrier()
        return path

    def evaluate(self) -> dict[str, Any]:
        if not self.dist.is_main:
            return {}
        self.model.eval()
        with torch.no_grad(), self._autocast(), preserved_rng():
            metrics = self.method.evaluate(self.model, self.cfg, self.device)
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        self.logger.log(self.step, scalars, prefix="eval/")
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train to ``max_steps`` (resuming if a checkpoint exists), evaluate, save; return the metrics."""
        try:
            self._setup()
            tc = self.tc
            loader = self._loader()  # builds (and may first generate) the data: not training time
            batches = iter(loader)
            if self._rng_to_restore is not None:  # after everything that drew from it at start-up
                set_rng_state(self._rng_to_restore)
            bar = tqdm(total=tc.max_steps, initial=self.step, disable=not (tc.progress and self.dist.is_main),
                       desc=f"train {self.method.name}", dynamic_ncols=True)  # fmt: skip
            t0 = time.time()
            for batch in batches:
                stats = self.train_step(_to_device(batch, self.device))
                self.step += 1
                bar.update(1)
                if self.step % max(1, tc.log_every) == 0 or self.step == tc.max_steps:
                    stats["steps_per_s"] = self.step / max(1e-9, time.time() - t0)
                    self.logger.log(self.step, stats, prefix="train/")
                    bar.set_postfix(loss=f"{stats['loss']:.4g}")
                elif any(k.startswith("epoch_") for k in stats):  # a method's per-epoch summaries: always logged
                    self.logger.log(self.step, {k: v for k, v in stats.items() if k.startswith("epoch_")},
                                    prefix="train/")  # fmt: skip
                if tc.ckpt_every and self.step % tc.ckpt_every == 0 and self.step < tc.max_steps:
                    self.save()
                if tc.eval_every and self.step % tc.eval_every == 0 and self.step < tc.max_steps:
                    self.evaluate()
                for hook in self.hooks:
                    hook(self, self.step)
                if tc.time_limit_min and self.step < tc.max_steps:
                    in_time = all_true(time.time() - t0 <= 60 * tc.time_limit_min, self.device, self.dist)
                    if not in_time:  # every rank agrees, so every rank stops here
                        tqdm.write(f"time limit of {tc.time_limit_min} min reached at step {self.step}")
                        break
            bar.close()
            final_ckpt = self.save()
            metrics = self.evaluate()
            if self.dist.is_main:
                scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
                # skipped steps (non-finite loss or gradient, loss spikes) are part of what a result is
                record = {"step": self.step, "max_steps": tc.max_steps, "skipped_steps": self.skipped, **scalars}
                if self.step < tc.max_steps:  # only the time limit ends a run early
                    record["stopped_by"] = f"time limit ({tc.time_limit_min} min)"
                atomic_write_text(self.out_dir / "eval.json", json.dumps(record, indent=2))
                if self.skipped > 0.01 * max(1, self.step):
                    tqdm.write(
                        f"warning: {self.skipped} of {self.step} steps were skipped (a non-finite loss or "
                        "gradient, or a loss spike); see train/skipped in metrics.jsonl"
                    )
                if final_ckpt is not None and metrics.get("images"):  # the pictures go beside the weights
                    for png, title in zip(save_eval_images(final_ckpt, metrics["images"]), metrics["images"],
                                          strict=True):  # fmt: skip
                        tqdm.write(f"wrote {png} ({title})")
                metrics = {**metrics, "checkpoint": str(final_ckpt)}
            self.logger.close()
            cleanup_distributed()
            return metrics
        finally:
            cleanup_distributed(barrier=False)
            if self.lock is not None:
                self.lock.release()
