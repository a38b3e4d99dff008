"""Typed training configuration shared by every method, and (de)serialisation of config dataclasses."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["TrainConfig", "check_config", "config_to_dict", "config_from_dict", "config_to_json"]


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
        if len(args) == 1:
            return _convert(args[0], value)
        errors = []
        for a in args:  # the first member the value converts to (``int | tuple[int, int, int]``: 3 or [4, 1, 4])
            try:
                return _convert(a, value)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise TypeError(" or ".join(errors))
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
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if tp is str and not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from :func:`config_to_dict` output.

    Unknown keys raise ``ValueError`` (a config from another version); missing
    keys take the dataclass defaults. A dataclass may name settings it no longer has in a class variable
    ``RETIRED`` (a tuple of names): checkpoints saved with them still load, and those keys are dropped.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    data = {k: v for k, v in data.items() if k not in getattr(cls, "RETIRED", ())}
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


# Range rules by field name, for every config of every method: (low, low_inclusive, high, high_inclusive).
_AT_LEAST_ONE = (1, True, math.inf, False)
_NON_NEGATIVE = (0, True, math.inf, False)
_RANGES: dict[str, tuple[float, bool, float, bool]] = {
    **dict.fromkeys(
        [
            "max_steps",
            "batch_size",
            "log_every",
            "keep_ckpts",
            "num",
            "num_train",
            "num_val",
            "num_eval",
            "views",
            "views_in",
            "views_per_scene",
            "frames",
            "height",
            "width",
            "eval_height",
            "eval_width",
            "resolution",
            "channels",
            "pose_channels",
            "patch",
            "dim",
            "heads",
            "layers",
            "hidden",
            "prior_width",
            "decoder_width",
            "energy_width",
            "latents",
            "depth_planes",
            "yaw_bins",
            "scales",
            "num_input",
            "num_target",
            "view_channels",
            "view_width",
            "antialias",
            "frequencies",
            "max_detections",
            "workers",
        ],
        _AT_LEAST_ONE,
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "seed",
            "data_seed",
            "warmup_steps",
            "eval_every",
            "ckpt_every",
            "max_bad_steps",
            "num_workers",
            "time_limit_min",
            "weight_decay",
            "grad_clip",
            "spike_factor",
            "max_objects",
            "align_iters",
        ],
        _NON_NEGATIVE,
    ),  # fmt: skip
    "lr": _NON_NEGATIVE,
    "betas": (0, True, 1, False),
    "min_lr_ratio": (0, True, 1, True),
    "dropout": (0, True, 1, False),
}


def _range_text(lo: float, lo_in: bool, hi: float, hi_in: bool) -> str:
    if hi == math.inf:
        return f"{'>=' if lo_in else '>'} {lo:g}"
    return f"in {'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"


def check_config(cfg: Any, prefix: str = "", *, flat: bool = False) -> None:
    """Check every number of a (nested) config dataclass: finite, and within the range its field
    name implies (sizes and counts >= 1, seeds and intervals >= 0, ``lr`` >= 0, ...).

    ``flat``: nested configs' options carry no prefix on the command line (``unrender synth --height``).

    Raises:
        ValueError: naming the option as the command line spells it, e.g. ``--train.batch-size``.

    Example:
        >>> check_config(TrainConfig(batch_size=0))
        Traceback (most recent call last):
        ...
        ValueError: --train.batch-size must be >= 1, got 0
    """
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        return
    if isinstance(cfg, TrainConfig) and not prefix:
        prefix = "train."
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            check_config(value, prefix if flat else name + ".", flat=flat)
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        option = "--" + name.replace("_", "-")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if not math.isfinite(v):
                raise ValueError(f"{option} must be a finite number, got {v}")
            rule = _RANGES.get(f.name)
            if rule is None:
                continue
            lo, lo_in, hi, hi_in = rule
            if not ((v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)):
                raise ValueError(f"{option} must be {_range_text(*rule)}, got {v:g}")
    if isinstance(cfg, TrainConfig) and 0 < cfg.spike_factor <= 1:
        raise ValueError(f"--{prefix}spike-factor must be 0 (off) or > 1, got {cfg.spike_factor:g}")
