"""Checkpoints: safetensors weights + JSON config + optimiser/scheduler/RNG state, written atomically.

Layout of ``<out_dir>/checkpoints/step_00001234/``::

    model.safetensors   weights (no pickle)
    config.json         the full method config
    state.json          step, counters, method name
    train_state.pt      optimiser, scheduler and RNG states (loaded with weights_only=True)

A checkpoint is written into a temporary folder next to its final place and
renamed when complete, then ``latest`` (a text file naming it) is replaced
atomically: a crash or a kill leaves either the previous checkpoint or the new
one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ..io import atomic_write_text, fsync_dir

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "find_latest_checkpoint",
    "get_rng_state",
    "set_rng_state",
]


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as plain Python values
    (picklable across processes, loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    model: nn.Module,
    *,
    config_json: str,
    state: dict[str, Any],
    train_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``ckpt_root`` atomically and keep the newest ``keep``."""
    ckpt_root = Path(ckpt_root)
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(train_state, tmp / "train_state.pt")
        (tmp / "config.json").write_text(config_json)
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # re-saving a step: move the old one out of the way first
            trash = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=".old.", suffix=".tmp"))
            os.replace(final, trash / final.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckpt_root / "latest", final.name + "\n")
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p != final)
    for p in old[: max(0, len(old) - (keep - 1))] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
    for p in ckpt_root.glob(".*.tmp"):  # leftovers of a killed writer
        shutil.rmtree(p, ignore_errors=True)
    return final


def _complete(p: Path) -> bool:
    return all((p / n).is_file() for n in ("model.safetensors", "train_state.pt", "config.json", "state.json"))


def find_latest_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint under a run folder, a ``checkpoints`` folder, or ``path`` itself."""
    path = Path(path)
    if _complete(path):
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not root.is_dir():
        return None
    latest = root / "latest"
    if latest.is_file():
        cand = root / latest.read_text().strip()
        if _complete(cand):
            return cand
    for cand in sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True):
        if _complete(cand):
            return cand
    return None


def load_checkpoint(path: Path, model: nn.Module | None = None) -> dict[str, Any]:
    """Read a checkpoint folder; load weights into ``model`` if given.

    Returns:
        ``{"config": dict, "state": dict, "train_state": dict (lazily loaded), "path": Path}``.

    Raises:
        FileNotFoundError: no complete checkpoint at ``path``.
        ValueError: a file that does not parse, or weights that do not fit the model.
    """
    found = find_latest_checkpoint(Path(path))
    if found is None:
        raise FileNotFoundError(f"no complete checkpoint at {path} (expected model.safetensors, config.json, ...)")
    try:
        config = json.loads((found / "config.json").read_text())
        state = json.loads((found / "state.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt checkpoint {found}: {e}") from None
    if model is not None:
        try:
            missing, unexpected = load_model(model, str(found / "model.safetensors"), strict=True)
        except RuntimeError as e:
            raise ValueError(f"checkpoint {found} does not fit the model: {e}") from None
    out = {"config": config, "state": state, "path": found}
    out["train_state"] = torch.load(found / "train_state.pt", weights_only=True, map_location="cpu")
    return out
