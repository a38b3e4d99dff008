"""Checkpoints: safetensors weights + JSON config + optimiser/scheduler/RNG state, written atomically
and verified on load.

Layout of ``<out_dir>/checkpoints/step_00001234/``::

    model.safetensors   weights (no pickle)
    config.json         the full method config
    state.json          step, counters, method name, SHA-256 of the weights and of train_state.pt
    train_state.pt      optimiser, scheduler and RNG states (loaded with weights_only=True)

A checkpoint is written into a temporary folder next to its final place (named with the writer's
PID) and renamed when complete, then ``latest`` (a text file naming it) is replaced atomically: a
crash or a kill leaves either the previous checkpoint or the new one, never a half-written one.

Loading checks what it reads: every problem (a truncated, zeroed or bit-flipped file, JSON that is
not an object, weights whose checksum does not match, non-finite parameters, weights of another
model) raises :class:`CheckpointError`, a ``ValueError`` naming the file and what is wrong.
``eval`` and ``predict`` read weights and config only; resume also reads ``train_state.pt`` and
falls back to the newest intact checkpoint (:func:`load_resumable_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ..io import atomic_write_text, fsync_dir, pid_alive
from .config import check_config, config_from_dict

__all__ = [
    "CheckpointError",
    "MissingCheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "find_latest_checkpoint",
    "find_resumable_checkpoint",
    "list_checkpoints",
    "load_resumable_checkpoint",
    "load_for_inference",
    "get_rng_state",
    "set_rng_state",
]

WEIGHTS, CONFIG, STATE, TRAIN_STATE = "model.safetensors", "config.json", "state.json", "train_state.pt"
FILES = (WEIGHTS, TRAIN_STATE, CONFIG, STATE)
INFERENCE_FILES = (WEIGHTS, CONFIG, STATE)
"""What ``eval`` and ``predict`` need: shipped weights carry no optimiser state."""


class CheckpointError(ValueError):
    """A checkpoint that is missing a file, corrupt, or does not fit the model; the message names the file."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """No complete checkpoint where one was asked for."""


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tmp_prefix(name: str, pid: int | None = None) -> str:
    return f".{name}.pid{os.getpid() if pid is None else pid}."


def _leftover_pid(p: Path) -> int | None:
    """The writer PID in a temporary folder's name (``.step_00000010.pid123.abc.tmp``), if any."""
    for part in p.name.split("."):
        if part.startswith("pid") and part[3:].isdigit():
            return int(part[3:])
    return None


def clean_leftovers(ckpt_root: Path) -> None:
    """Remove temporary folders of this process, or of writers that are no longer running.

    A folder being written by another live process is never touched.
    """
    for p in Path(ckpt_root).glob(".*.tmp"):
        pid = _leftover_pid(p)
        if pid is not None and (pid == os.getpid() or not pid_alive(pid)):
            shutil.rmtree(p, ignore_errors=True)


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
    """Write checkpoint ``step`` under ``ckpt_root`` atomically and keep the newest ``keep`` (at least 1)."""
    ckpt_root = Path(ckpt_root)
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=_tmp_prefix(final.name), suffix=".tmp"))
    try:
        save_model(model, str(tmp / WEIGHTS))
        torch.save(train_state, tmp / TRAIN_STATE)
        (tmp / CONFIG).write_text(config_json)
        sums = {"weights_sha256": _sha256(tmp / WEIGHTS), "train_state_sha256": _sha256(tmp / TRAIN_STATE)}
        (tmp / STATE).write_text(json.dumps({**state, "step": step, **sums}, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # re-saving a step: move the old one out of the way first
            trash = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=_tmp_prefix("old"), suffix=".tmp"))
            os.replace(final, trash / final.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckpt_root / "latest", final.name + "\n")
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p != final)
    for p in old[: max(0, len(old) - (max(1, keep) - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    clean_leftovers(ckpt_root)
    return final


def _complete(p: Path) -> bool:
    return all((p / n).is_file() for n in INFERENCE_FILES)


def list_checkpoints(path: Path) -> list[Path]:
    """Complete checkpoints under a run folder, a ``checkpoints`` folder, or ``path`` itself, newest first
    (the one ``latest`` names leads)."""
    path = Path(path)
    if _complete(path):
        return [path]
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not root.is_dir():
        return []
    found = sorted((p for p in root.glob("step_*") if p.is_dir() and _complete(p)), reverse=True)
    latest = root / "latest"
    try:
        named = root / latest.read_text().strip() if latest.is_file() else None
    except (OSError, UnicodeDecodeError):
        named = None
    if named in found:
        found.remove(named)
        found.insert(0, named)
    return found


def find_latest_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint under a run folder, a ``checkpoints`` folder, or ``path`` itself."""
    found = list_checkpoints(path)
    return found[0] if found else None


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"corrupt checkpoint file {path}: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"corrupt checkpoint file {path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_sum(path: Path, state: dict[str, Any], key: str) -> None:
    want = state.get(key)
    if want is None:  # checkpoints written before checksums
        return
    if _sha256(path) != want:
        raise CheckpointError(f"corrupt checkpoint file {path}: its SHA-256 does not match the one in state.json")


def _read_state(found: Path) -> dict[str, Any]:
    state = _read_json_object(found / STATE)
    if not isinstance(state.get("step"), int) or state["step"] < 0:
        raise CheckpointError(f"corrupt checkpoint file {found / STATE}: 'step' is {state.get('step')!r}")
    return state


def _load_train_state(found: Path, state: dict[str, Any]) -> dict[str, Any]:
    if not (found / TRAIN_STATE).is_file():
        raise CheckpointError(f"checkpoint {found} has no {TRAIN_STATE} (weights only): it cannot be resumed")
    _check_sum(found / TRAIN_STATE, state, "train_state_sha256")
    try:
        ts = torch.load(found / TRAIN_STATE, weights_only=True, map_location="cpu")
    except Exception as e:  # a pickle that is truncated or not ours: any of a dozen error types
        raise CheckpointError(f"corrupt checkpoint file {found / TRAIN_STATE}: {type(e).__name__}: {e}") from None
    if not isinstance(ts, dict) or not {"optimizer", "scheduler", "rng"} <= ts.keys():
        raise CheckpointError(f"corrupt checkpoint file {found / TRAIN_STATE}: not a training state")
    return ts


def _load_weights(found: Path, state: dict[str, Any], model: nn.Module | None) -> None:
    """Check the weights file against its checksum and, given a model, load it (strict, finite)."""
    path = found / WEIGHTS
    _check_sum(path, state, "weights_sha256")
    if model is None:
        return
    try:
        load_model(model, str(path), strict=True)
    except RuntimeError as e:
        if "Error(s) in loading state_dict" in str(e) or "Missing key" in str(e) or "Unexpected key" in str(e):
            raise CheckpointError(f"checkpoint {found} does not fit the model: {str(e).splitlines()[0]}") from None
        raise CheckpointError(f"corrupt checkpoint file {path}: {e}") from None
    except Exception as e:  # SafetensorError (bad header), OSError, ...
        raise CheckpointError(f"corrupt checkpoint file {path}: {type(e).__name__}: {e}") from None
    for name, t in model.named_parameters():  # buffers may hold NaN on purpose (an unset value)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"checkpoint file {path}: tensor {name!r} holds NaN or infinite values")


def load_resumable_checkpoint(path: Path, model: nn.Module | None = None) -> dict[str, Any] | None:
    """The newest intact checkpoint under a run folder, read for resuming (weights into ``model`` if
    given, optimiser state, checksums); broken newer ones are skipped with a warning that names them and
    why. None if there is none."""
    candidates = list_checkpoints(path)
    initial = {k: v.clone() for k, v in model.state_dict().items()} if model is not None and candidates else None
    for cand in candidates:
        try:
            return load_checkpoint(cand, model, train_state=True)
        except CheckpointError as e:
            warnings.warn(f"skipping broken checkpoint {cand}: {e}", RuntimeWarning, stacklevel=2)
    if initial is not None:  # none was intact: no weights of a broken one stay in the model
        model.load_state_dict(initial)
    return None


def find_resumable_checkpoint(path: Path) -> Path | None:
    """The folder :func:`load_resumable_checkpoint` would resume from."""
    ck = load_resumable_checkpoint(path)
    return None if ck is None else ck["path"]


def load_checkpoint(path: Path, model: nn.Module | None = None, *, train_state: bool = False) -> dict[str, Any]:
    """Read a checkpoint folder (or a run folder's newest checkpoint); load weights into ``model`` if given.

    Args:
        path: a checkpoint folder, a run folder or its ``checkpoints`` folder.
        model: filled with the weights (checksum and finiteness checked) when given.
        train_state: also read optimiser, scheduler and RNG state (only resume needs them); the
            weights' checksum is then checked even without ``model``.

    Returns:
        ``{"config": dict, "state": dict, "path": Path}``, plus ``"train_state"`` when asked for.

    Raises:
        MissingCheckpointError: no complete checkpoint at ``path`` (a ``FileNotFoundError`` too).
        CheckpointError: a file that does not parse or fails its checksum, non-finite weights,
            or weights that do not fit the model.
    """
    found = find_latest_checkpoint(Path(path))
    if found is None:
        raise MissingCheckpointError(f"no complete checkpoint at {path} (expected {', '.join(INFERENCE_FILES)})")
    config = _read_json_object(found / CONFIG)
    state = _read_state(found)
    if model is not None or train_state:
        _load_weights(found, state, model)
    out: dict[str, Any] = {"config": config, "state": state, "path": found}
    if train_state:
        out["train_state"] = _load_train_state(found, state)
    return out


DEFAULT_DATA_ROOT = Path("runs/data")
"""Where ``eval`` and ``probe`` write generated data unless told otherwise (relative to the working folder)."""


def load_for_inference(
    path: Path, method_name: str, config_cls: type, model_fn: Any, *, data_root: Path | None = None
) -> tuple[Any, nn.Module, Path]:
    """A trained model and its config for ``eval``, ``probe`` and ``predict``: weights and config only.

    The checkpoint's config is type-checked; its generated-data folder (``data.root``) is replaced
    by ``data_root`` (default :data:`DEFAULT_DATA_ROOT`), so a checkpoint from elsewhere never
    decides where this machine writes.

    Returns:
        ``(config, model, checkpoint folder)``.

    Raises:
        MissingCheckpointError, CheckpointError: see :func:`load_checkpoint`; also a checkpoint of
            another method.
    """
    ck = load_checkpoint(path)
    if ck["state"].get("method") not in (None, method_name):
        raise CheckpointError(f"{ck['path']} is a checkpoint of method {ck['state']['method']!r}, not {method_name!r}")
    try:
        cfg = config_from_dict(config_cls, ck["config"])
        check_config(cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint file {ck['path'] / CONFIG}: {e}") from None
    data = getattr(cfg, "data", None)
    if data is not None and hasattr(data, "root"):
        data.root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOT
    model = model_fn(cfg)
    _load_weights(ck["path"], ck["state"], model)
    return cfg, model, ck["path"]
