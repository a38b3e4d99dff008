"""Scenes as grids of discrete codes on disk: what ``unrender dump mapping`` writes and the code prior reads.

A dump folder holds ``meta.json`` (what made it: the checkpoint, the split, the number of scenes, the grid
shape and codebook size) and shards ``shard_00000.npz``, ... of ``shard_size`` scenes each: ``codes (n, Z,
Y, X) int16``, ``index (n,)`` (the scene's index in its split), and the scene's cameras in the memory frame
(``K (n, V, 3, 3)``, ``cam_from_mem (n, V, 4, 4)``; the last view is the held-out one). Every file is
written atomically, so a dump that was killed is resumed shard by shard and never holds half a shard.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import atomic_path, atomic_write_text

__all__ = ["CodeDump", "CodeGrids", "CodeDumpError", "FORMAT"]

FORMAT = "unrender-codes-1"
META = "meta.json"


class CodeDumpError(ValueError):
    """A code dump that is missing, incomplete, damaged or made with other settings."""


def _shard(folder: Path, k: int) -> Path:
    return folder / f"shard_{k:05d}.npz"


class CodeDump:
    """Writer of one dump folder. ``meta`` must hold ``scenes``, ``shard_size``, ``grid`` (Z, Y, X) and
    ``num_codes``; a folder that already holds a dump with other ``meta`` is refused (so a resumed dump
    continues the same one), and the shards it holds are kept (:meth:`missing` lists the rest)."""

    def __init__(self, folder: str | Path, meta: dict[str, Any]) -> None:
        for k in ("scenes", "shard_size", "grid", "num_codes"):
            if k not in meta:
                raise ValueError(f"CodeDump: meta lacks {k!r}")
        self.folder = Path(folder)
        self.meta = json.loads(json.dumps({"format": FORMAT, **meta}))  # as it reads back (tuples as lists)
        path = self.folder / META
        if path.is_file():
            try:
                old = json.loads(path.read_text())
            except ValueError as e:
                raise CodeDumpError(f"{path} is damaged ({e}); delete the folder to dump again") from None
            if old != self.meta:
                diff = sorted(k for k in set(old) | set(self.meta) if old.get(k) != self.meta.get(k))
                raise CodeDumpError(f"{self.folder} holds a dump made with other settings (differing: {diff}); "
                                    "choose another --out or delete it")  # fmt: skip
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(self.meta, indent=2))

    @property
    def num_shards(self) -> int:
        return -(-int(self.meta["scenes"]) // int(self.meta["shard_size"]))

    def shard_range(self, k: int) -> range:
        s = int(self.meta["shard_size"])
        return range(k * s, min((k + 1) * s, int(self.meta["scenes"])))

    def missing(self) -> list[int]:
        """Shards not written yet (or unreadable: those are written again)."""
        return [k for k in range(self.num_shards) if _read_shard(_shard(self.folder, k), quiet=True) is None]

    def write(self, k: int, codes: torch.Tensor, K: torch.Tensor, cam_from_mem: torch.Tensor) -> Path:
        """Write shard ``k`` (its scenes in order), atomically."""
        idx = self.shard_range(k)
        Z, Y, X = self.meta["grid"]
        if tuple(codes.shape) != (len(idx), Z, Y, X):
            raise ValueError(
                f"CodeDump: shard {k} needs codes of shape {(len(idx), Z, Y, X)}, got {tuple(codes.shape)}"
            )
        if int(codes.min()) < 0 or int(codes.max()) >= int(self.meta["num_codes"]):
            raise ValueError(f"CodeDump: codes outside [0, {self.meta['num_codes']})")
        path = _shard(self.folder, k)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, codes=codes.cpu().numpy().astype(np.int16), index=np.asarray(idx, dtype=np.int64),
                     K=K.cpu().float().numpy(), cam_from_mem=cam_from_mem.cpu().float().numpy())  # fmt: skip
        return path


def _read_shard(path: Path, quiet: bool = False) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in ("codes", "index", "K", "cam_from_mem")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        if quiet:
            return None
        raise CodeDumpError(
            f"{path} is missing or damaged ({type(e).__name__}); rerun the dump to write it again"
        ) from None


class CodeGrids(Dataset):
    """The code grids of one dump folder, read whole into memory (a grid is a few hundred bytes).

    Item keys: ``codes (Z, Y, X)`` long, ``index`` (the scene's index in its split), ``K (V, 3, 3)``,
    ``cam_from_mem (V, 4, 4)``. ``meta`` is the dump's ``meta.json``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        path = self.folder / META
        if not path.is_file():
            raise CodeDumpError(f"{self.folder} holds no code dump (no {META}); write one with `unrender dump mapping "
                                f"--ckpt RUN --out DIR`")  # fmt: skip
        try:
            self.meta = json.loads(path.read_text())
        except ValueError as e:
            raise CodeDumpError(f"{path} is damaged ({e})") from None
        if self.meta.get("format") != FORMAT:
            raise CodeDumpError(f"{path}: format {self.meta.get('format')!r}, expected {FORMAT!r}")
        n, s = int(self.meta["scenes"]), int(self.meta["shard_size"])
        shards = [_read_shard(_shard(self.folder, k), quiet=True) for k in range(-(-n // s))]
        lost = [k for k, sh in enumerate(shards) if sh is None]
        if lost:
            raise CodeDumpError(f"{self.folder}: the dump is incomplete ({len(lost)} of {len(shards)} shards missing "
                                "or damaged); rerun the same `unrender dump` command to finish it")  # fmt: skip
        cat = {k: np.concatenate([sh[k] for sh in shards]) for k in shards[0]}
        if not np.array_equal(cat["index"], np.arange(n)):
            raise CodeDumpError(f"{self.folder}: the shards do not hold scenes 0..{n - 1} in order")
        self.codes = torch.from_numpy(cat["codes"].astype(np.int64))
        self.K, self.cam_from_mem = torch.from_numpy(cat["K"]), torch.from_numpy(cat["cam_from_mem"])
        if tuple(self.codes.shape[1:]) != tuple(self.meta["grid"]):
            raise CodeDumpError(
                f"{self.folder}: grids of shape {tuple(self.codes.shape[1:])}, meta says {self.meta['grid']}"
            )

    @property
    def num_codes(self) -> int:
        return int(self.meta["num_codes"])

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"CodeGrids: index {i} out of range for {len(self)} grids")
        return {"codes": self.codes[i], "index": i, "K": self.K[i], "cam_from_mem": self.cam_from_mem[i]}
