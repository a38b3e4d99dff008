"""Synthetic datasets on disk: a versioned folder of compressed ``.npz`` samples, a JSON index
and PNG previews, written in parallel, resumable, and crash-safe; and the torch ``Dataset``
that reads it back (or generates the same samples on the fly).

Layout::

    DIR/index.json               {"format": "unrender-synth", "schema": 1, "config": {...},
                                  "classes": [...], "samples": [{"index", "file", "preview"}, ...]}
    DIR/samples/000042.npz       one sample (see unrender.world.sample.make_sample)
    DIR/previews/000042.png      RGB, depth and semantics of its views
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..io import FolderLock, atomic_path, atomic_write_text
from ..resources import check_memory
from ..world.generators import GENERATOR_VERSIONS, IMAGES_PER_VIEW
from ..world.sample import SCHEMA_VERSION, SynthConfig, make_sample
from ..world.scene import CLASSES

__all__ = [
    "SynthArgs",
    "write_dataset",
    "export_kitti_raw",
    "dataset_folder",
    "split_dataset",
    "SynthDataset",
    "sample_to_tensors",
    "DatasetError",
    "preview_image",
]

FORMAT = "unrender-synth"


@dataclass
class SynthArgs:
    """``unrender synth`` arguments."""

    out: Path
    """Output folder (created; a rerun resumes, skipping finished samples)."""
    synth: SynthConfig
    workers: int = 2
    """Worker processes."""
    format: Literal["npz", "kitti-raw"] = "npz"
    """``npz``: unrender's own layout. ``kitti-raw``: videos (``streets``) in the KITTI raw layout,
    ``<out>/<date>/<drive>/image_02/data/*.png`` + ``<out>/<date>/calib_cam_to_cam.txt`` with
    ground-truth depth under ``<drive>/proj_depth/groundtruth/image_02`` (the npz samples are kept
    in ``<out>/npz`` so a rerun resumes)."""


class DatasetError(ValueError):
    """A dataset folder or sample file that is missing, malformed or of another version."""


def _name(i: int) -> str:
    return f"{i:06d}"


def preview_image(s: dict[str, np.ndarray], max_views: int = 4) -> np.ndarray:
    """RGB, depth and semantic rows for the first views of a sample, ``(H', W', 3)`` uint8."""
    from ..viz import colorize_depth, colorize_labels, image_grid

    n = min(max_views, s["rgb"].shape[0])
    rows = [
        [s["rgb"][i].transpose(1, 2, 0) for i in range(n)],
        [colorize_depth(s["depth"][i, 0]) for i in range(n)],
        [colorize_labels(s["semantic"][i, 0]) for i in range(n)],
    ]
    return image_grid(rows)


def _valid(path: Path) -> bool:
    """Whether a sample file is complete and undamaged: a zip with ``meta.npy`` whose every entry
    passes its CRC check (a rerun rewrites samples that fail)."""
    try:
        with zipfile.ZipFile(path) as z:
            return "meta.npy" in z.namelist() and z.testzip() is None
    except Exception:  # missing, truncated, bad CRC, bad deflate stream: a dozen error types
        return False


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker exit when the process that started it dies, even by kill -9: the kernel's
    parent-death signal on Linux, and everywhere a watchdog thread that polls the parent PID."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass  # not Linux

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="unrender-parent-watch").start()


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no worker tracebacks
    torch.set_num_threads(1)
    _die_with_parent(parent_pid)


def _write_task(args: tuple[SynthConfig, int, str]) -> int:
    return _write_one(*args)


# Peak bytes of rendering one pixel of one view with its ground truth (measured: ~120 B at 512 x 512
# rooms; doubled for the other generators and the sample's arrays).
BYTES_PER_PIXEL = 256


def check_synth_memory(cfg: SynthConfig, workers: int = 1) -> None:
    """Refuse up front (:class:`~unrender.resources.ResourceError`) a dataset whose samples cannot be
    rendered in this machine's memory by ``workers`` processes at once."""
    images = cfg.views * IMAGES_PER_VIEW.get(cfg.kind, 1)
    need = BYTES_PER_PIXEL * images * cfg.height * cfg.width * max(1, workers)
    check_memory(need, f"rendering {images} views of {cfg.height} x {cfg.width} in {max(1, workers)} process(es)",
                 hint="lower --height/--width/--views or --workers")  # fmt: skip


def _write_one(cfg: SynthConfig, index: int, root: str) -> int:
    from ..viz import save_png

    torch.set_num_threads(1)
    s = make_sample(cfg, index)
    with atomic_path(Path(root) / "samples" / f"{_name(index)}.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **s)
    save_png(Path(root) / "previews" / f"{_name(index)}.png", preview_image(s))
    return index


def write_dataset(cfg: SynthConfig, out: str | Path, *, workers: int = 2, progress: bool = True) -> Path:
    """Write ``cfg.num`` samples under ``out``; samples already there (complete) are skipped.

    Raises:
        DatasetError: ``out`` holds a dataset made with another config or schema.
    """
    out = Path(out)
    index_path = out / "index.json"
    config = asdict(cfg)
    if index_path.exists():
        try:
            old = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{index_path}: not JSON ({e})") from None
        # settings added since the folder was written take their defaults
        old_config = {**asdict(SynthConfig()), **old.get("config", {})}
        same = {k: v for k, v in old_config.items() if k != "num"} == {k: v for k, v in config.items() if k != "num"}
        if (old.get("format") != FORMAT or old.get("schema") != SCHEMA_VERSION or not same
                or old.get("generator", 1) != GENERATOR_VERSIONS[cfg.kind]):  # fmt: skip
            raise DatasetError(f"{out} holds another dataset (format/schema/generator/config differ); use a new --out")
    check_synth_memory(cfg, workers)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "previews").mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out, "unrender synth writer")
    if not lock.try_acquire():
        tqdm.write(f"waiting for {lock.holder()} to finish writing {out}")
        lock.acquire(blocking=True)
    try:
        _write_samples(cfg, out, workers, progress)
    finally:
        lock.release()
    index = {
        "format": FORMAT,
        "schema": SCHEMA_VERSION,
        "generator": GENERATOR_VERSIONS[cfg.kind],
        "config": config,
        "classes": list(CLASSES),
        "samples": [
            {"index": i, "file": f"samples/{_name(i)}.npz", "preview": f"previews/{_name(i)}.png"}
            for i in range(cfg.num)
        ],
    }
    atomic_write_text(index_path, json.dumps(index, indent=1))
    return out


def _write_samples(cfg: SynthConfig, out: Path, workers: int, progress: bool) -> None:
    """Write the samples that are missing or damaged, in ``workers`` processes that die with this one."""
    done = lambda i: _valid(out / "samples" / f"{_name(i)}.npz") and (out / "previews" / f"{_name(i)}.png").is_file()
    todo = [i for i in range(cfg.num) if not done(i)]
    bar = tqdm(
        total=cfg.num, initial=cfg.num - len(todo), desc=f"synth {cfg.kind}", disable=not progress, dynamic_ncols=True
    )
    try:
        if todo and workers <= 1:
            for i in todo:
                _write_one(cfg, i, str(out))
                bar.update(1)
        elif todo:
            pool = mp.get_context("spawn").Pool(min(workers, len(todo)), _worker_init, (os.getpid(),))
            try:
                for _ in pool.imap_unordered(_write_task, [(cfg, i, str(out)) for i in todo]):
                    bar.update(1)
                pool.close()
            except BaseException:  # Ctrl-C or a worker's error: stop every worker now
                pool.terminate()
                raise
            finally:
                pool.join()
    finally:
        bar.close()


def sample_to_tensors(s: dict[str, np.ndarray]) -> dict[str, Any]:
    """Convert a stored sample to tensors in unrender's conventions: images float in [0, 1],
    depth float32 metres, ids long; JSON fields parsed."""
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in ("scene_json", "meta"):
            out[k] = json.loads(str(v))
        elif k == "rgb":
            out[k] = torch.from_numpy(np.asarray(v)).float() / 255
        elif v.dtype in (np.int16, np.int32, np.int64, np.uint8) and k not in ("occupancy",):
            out[k] = torch.from_numpy(np.asarray(v).astype(np.int64))
        elif v.dtype == np.float16:
            out[k] = torch.from_numpy(np.asarray(v).astype(np.float32))
        else:
            out[k] = torch.from_numpy(np.asarray(v))
    if "occupancy" in out:
        out["occupancy"] = out["occupancy"].float()[None]
    return out


class SynthDataset(Dataset):
    """Samples of a synthetic dataset, from disk (``root``) or generated on the fly (``config``).

    Both go through :func:`~unrender.world.sample.make_sample` and
    :func:`sample_to_tensors`, so an item is the same either way.
    """

    def __init__(self, root: str | Path | None = None, *, config: SynthConfig | None = None):
        if (root is None) == (config is None):
            raise ValueError("SynthDataset: give exactly one of root (a folder) or config (generate on the fly)")
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            path = self.root / "index.json"
            if not path.is_file():
                raise DatasetError(f"no dataset at {self.root}: {path} is missing (run `unrender synth`)")
            try:
                index = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}: not JSON ({e})") from None
            if index.get("format") != FORMAT:
                raise DatasetError(f"{path}: not an unrender synthetic dataset")
            if index.get("schema") != SCHEMA_VERSION:
                raise DatasetError(f"{path}: schema {index.get('schema')}, this unrender reads {SCHEMA_VERSION}")
            self.config = SynthConfig(**index["config"])
            gen = index.get("generator", 1)
            if gen != GENERATOR_VERSIONS[self.config.kind]:
                want = GENERATOR_VERSIONS[self.config.kind]
                raise DatasetError(f"{path}: made by version {gen} of the {self.config.kind!r} generator, "
                                   f"this unrender has version {want}; generate it again")  # fmt: skip
            self.files = [self.root / e["file"] for e in index["samples"]]
        else:
            self.config = config
            self.files = []

    def __len__(self) -> int:
        return len(self.files) if self.root is not None else self.config.num

    def raw(self, i: int) -> dict[str, np.ndarray]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range 0..{len(self) - 1}")
        if self.root is None:
            return make_sample(self.config, i)
        path = self.files[i]
        if not path.is_file():
            raise DatasetError(f"sample file missing: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                s = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile, zlib, numpy header and OS errors: a dozen types
            raise DatasetError(f"corrupt sample file {path}: {type(e).__name__}: {e}") from None
        for key in ("depth", "K", "cam_from_world"):  # what geometry is computed from
            if key in s and not np.isfinite(s[key]).all():
                raise DatasetError(f"sample file {path}: {key!r} holds NaN or infinite values")
        if "depth" in s and (s["depth"] < 0).any():
            raise DatasetError(f"sample file {path}: 'depth' holds negative values (0 means unknown)")
        return s

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.raw(i)
        try:
            return sample_to_tensors(s)
        except (ValueError, TypeError, KeyError) as e:  # a damaged JSON field or array
            raise DatasetError(f"corrupt sample {i} of {self.root}: {type(e).__name__}: {e}") from None


def dataset_folder(root: str | Path, cfg: SynthConfig) -> Path:
    """The folder under ``root`` that a method keeps the dataset of ``cfg`` in, named by its settings
    (kind, size, views, seed and the generator's version; the sample count is left out, so a larger
    ``num`` extends the same folder).

    Example:
        >>> dataset_folder("runs/data", SynthConfig(kind="rooms", num=4, views=2, height=32, width=32)).name
        'rooms-32x32-v2-s0-a52a2085'
    """
    settings = [cfg.kind, cfg.views, cfg.height, cfg.width, cfg.seed]
    if GENERATOR_VERSIONS[cfg.kind] > 1:  # version 1 folders keep the names they had
        settings.append(GENERATOR_VERSIONS[cfg.kind])
    if cfg.antialias != 1:  # so do folders of one ray per pixel
        settings.append({"antialias": cfg.antialias})
    key = hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:8]
    return Path(root) / f"{cfg.kind}-{cfg.height}x{cfg.width}-v{cfg.views}-s{cfg.seed}-{key}"


VAL_SEED_OFFSET = 7919
"""Held-out splits are generated with ``seed + VAL_SEED_OFFSET``, so they share no scene with training."""


def split_dataset(
    root: str | Path, split: str, *, kind: str, num_train: int, num_val: int, views: int, height: int, width: int,
    seed: int, antialias: int = 1, generate: bool = True, workers: int = 2,
) -> SynthDataset:  # fmt: skip
    """The ``train`` or held-out (any other ``split``) part of a method's generated data, written
    under ``root`` (once, resumably) unless ``generate`` is False."""
    train = split == "train"
    cfg = SynthConfig(kind=kind, num=num_train if train else num_val, views=views, height=height, width=width,
                      seed=seed if train else seed + VAL_SEED_OFFSET, occupancy=False, antialias=antialias)  # fmt: skip
    folder = dataset_folder(root, cfg)
    if generate:
        write_dataset(cfg, folder, workers=workers, progress=True)
    return SynthDataset(folder)


KITTI_RAW_DATE = "2026_01_01"


def export_kitti_raw(dataset: str | Path, out: str | Path) -> list[Path]:
    """Write every video (sample) of a ``streets`` dataset folder in the KITTI raw layout, one
    drive per sample (``<out>/2026_01_01/2026_01_01_drive_<index>_sync``); returns the drive folders."""
    from .formats import write_kitti_raw

    ds = SynthDataset(dataset)
    kind = ds.config.kind
    if kind != "streets":
        raise DatasetError(f"kitti-raw export needs a video dataset (kind 'streets'), got {kind!r}")
    drives = []
    for i in tqdm(range(len(ds)), desc="export kitti-raw", dynamic_ncols=True):
        s = ds[i]
        K = s["K"][0]
        if not bool((s["K"] == K).all()):
            raise DatasetError(f"sample {i}: the intrinsics change within the video; KITTI raw has one per drive")
        drive = f"{KITTI_RAW_DATE}_drive_{i:04d}_sync"
        drives.append(write_kitti_raw(out, KITTI_RAW_DATE, drive, s["rgb"], K, depth=s["depth"]))
    return drives
