"""Weights shipped with unrender, trained with its own code: one folder per method holding a checkpoint
without optimiser state (``model.safetensors``, ``config.json``, ``state.json``) and ``card.md``, which
says the command and commit that made it, the data, and what it measured.

``unrender predict`` and ``unrender eval`` use them when no ``--ckpt`` is given.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = [
    "SHIPPED",
    "load_trained",
    "ship_checkpoint",
    "shipped_checkpoint",
    "trained_config",
    "trained_dataset",
    "trained_model",
]

SHIPPED = Path(__file__).resolve().parent


def shipped_checkpoint(method: str) -> Path:
    """The shipped checkpoint folder of ``method``.

    Raises:
        FileNotFoundError: unrender ships no weights for this method (yet).
    """
    path = SHIPPED / method
    if not (path / "model.safetensors").is_file():
        have = sorted(p.name for p in SHIPPED.iterdir() if (p / "model.safetensors").is_file())
        raise FileNotFoundError(
            f"unrender ships no weights for {method!r} (it has: {', '.join(have) or 'none'}); "
            f"train a model (unrender train {method}) and pass --ckpt"
        )
    return path


def load_trained(method: str, ckpt: Path | None = None, device: str = "auto", *, data_root: Path | None = None):
    """A trained model of ``method`` for ``eval``, ``probe``, ``predict`` and the demo: ``ckpt`` (a checkpoint
    or run folder), or the shipped weights when it is None; weights and config only
    (:func:`unrender.engine.load_for_inference`), on ``device`` (``"auto"``: CUDA when there is one), in eval
    mode.

    Returns:
        ``(config, model, checkpoint folder, torch.device)``.

    Raises:
        FileNotFoundError: no ``ckpt`` and no shipped weights for ``method``; CheckpointError: a bad checkpoint.
    """
    from ..engine import load_for_inference
    from ..engine.distributed import pick_device
    from ..methods import get_method

    m = get_method(method)
    path = Path(ckpt) if ckpt is not None else shipped_checkpoint(method)
    cfg, model, folder = load_for_inference(path, method, m.config, m.build_model, data_root=data_root)
    dev = pick_device(device)
    return cfg, model.to(dev).eval(), folder, dev


@functools.lru_cache(maxsize=4)
def trained_model(method: str, ckpt: Path | None = None, device: str = "cpu"):
    """:func:`load_trained`'s model alone, loaded once per ``(method, ckpt, device)`` and kept (a frozen net that
    another method reads, e.g. the mapping net behind scene grids and prototype composition). Do not train it."""
    return load_trained(method, ckpt, device)[1]


def trained_config(method: str, ckpt: Path | None = None):
    """The config a trained model of ``method`` was made with (``ckpt``: a run or checkpoint folder; None: the
    shipped weights), read without its weights.

    Raises:
        FileNotFoundError: no checkpoint there (or no shipped weights); ValueError: a config of another version.
    """
    import json

    from ..engine import config_from_dict
    from ..engine.checkpoint import find_latest_checkpoint
    from ..methods import get_method

    folder = shipped_checkpoint(method) if ckpt is None else find_latest_checkpoint(Path(ckpt))
    if folder is None:
        raise FileNotFoundError(f"no {method} checkpoint under {ckpt}")
    return config_from_dict(get_method(method).config, json.loads((folder / "config.json").read_text()))


def trained_dataset(method: str, ckpt: Path | None = None, split: str = "val", *, root: Path | None = None):
    """``(config, dataset)``: the ``split`` a trained model of ``method`` was made for (its config's data,
    generated under ``root`` instead of the config's own data root when given), e.g. the held-out rooms a
    mapping model's evaluation scores."""
    from ..methods import get_method

    cfg = trained_config(method, ckpt)
    if root is not None:
        cfg.data.root = Path(root)
    return cfg, get_method(method).build_dataset(cfg, split)


def ship_checkpoint(checkpoint: Path, method: str, *, card: str, half: bool = False) -> Path:
    """Copy a trained checkpoint's weights, config and state (no optimiser state) into the package as
    ``method``'s shipped weights, with ``card`` (Markdown) as its ``card.md``. ``half``: store the float32
    tensors as float16 (half the size; loading converts them back, so the model's dtype is unchanged) and
    record the new file's checksum. A maintainer's tool."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from ..engine import load_checkpoint
    from ..engine.checkpoint import WEIGHTS, _sha256
    from ..io import atomic_path

    ck = load_checkpoint(checkpoint)  # checks the files
    dest = SHIPPED / method
    dest.mkdir(parents=True, exist_ok=True)
    state = json.loads((ck["path"] / "state.json").read_text())
    with atomic_path(dest / WEIGHTS) as tmp:
        if half:
            tensors = load_file(ck["path"] / WEIGHTS)
            save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}, tmp)
            state["weights_sha256"] = _sha256(tmp)
        else:
            shutil.copyfile(ck["path"] / WEIGHTS, tmp)
    for name in ("config.json",):
        with atomic_path(dest / name) as tmp:
            shutil.copyfile(ck["path"] / name, tmp)
    with atomic_path(dest / "state.json") as tmp:
        tmp.write_text(json.dumps(state, indent=2))
    with atomic_path(dest / "card.md") as tmp:
        tmp.write_text(card)
    return dest
