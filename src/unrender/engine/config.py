"""Typed training configuration shared by every method, and (de)serialisation of config dataclasses."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["TrainConfig", "config_to_dict", "config_from_dict", "config_to_json"]


@dataclass
class TrainConfig:
    """What the trainer owns: optimisation, schedule, checkpoints, logging, devices."""

    max_steps: int = 1000
    """Optimiser steps (skipped non-finite steps count too)."""
    batch_size: int = 8
    """Global batch size, split evenly over DDP ranks."""
    lr: float = 1e-3
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    decay_1d: bool = False
    """Apply weight decay to 1-D parameters (biases, norms) too."""
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    """Final learning rate as a fraction of ``lr`` (cosine and linear)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""
    spike_factor: float = 0.0
    """Skip a step whose loss exceeds this multiple of the running (EMA) loss, once 20 steps have
    set it (0 disables). A loss that stays high lifts the running loss, so training never stalls."""
    max_bad_steps: int = 50
    """Stop after this many consecutive steps with a non-finite loss or gradient."""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast (CUDA, or CPU where supported)."""
    num_workers: int = 0
    log_every: int = 10
    eval_every: int = 0
    """Evaluate every N steps (0: only at the end)."""
    ckpt_every: int = 100
    keep_ckpts: int = 2
    out_dir: Path = Path("runs/default")
    time_limit_min: float = 0.0
    """Stop early (then save and evaluate as usual) after this many minutes of training (0: no limit)."""
    resume: bool = True
    """Continue from the newest checkpoint in ``out_dir`` if there is one."""
    progress: bool = True
    tensorboard: bool = True
    """Also log to TensorBoard when the ``tb`` extra is installed."""


def config_to_dict(cfg: Any) -> Any:
    """A JSON-ready dict of a (nested) config dataclass."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def config_to_json(cfg: Any) -> str:
    return json.dumps(config_to_dict(cfg), indent=2, sort_keys=True)


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value)
    if tp is Path:
        return Path(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value) if len(args) == 1 else value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [_convert(arg, v) for v in value]
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"expected one of {typing.get_args(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from :func:`config_to_dict` output.

    Unknown keys raise ``ValueError`` (a config from another version); missing
    keys take the dataclass defaults.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {}
    for k, v in data.items():
        try:
            kwargs[k] = _convert(hints[k], v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{cls.__name__}.{k}: {e}") from None
    return cls(**kwargs)
