"""``unrender dump mapping``: a quantised mapping model's code grids of every scene of its data, written to
disk (batched, resumable, the encoder only: no decoders, no renderer), so a prior over scenes trains on
the codes without touching the images (:class:`unrender.data.codes.CodeGrids` reads them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from ...data.codes import CodeDump

__all__ = ["DumpArgs", "dump_codes"]


@dataclass
class DumpArgs:
    """``unrender dump mapping`` arguments."""

    ckpt: Path
    """A mapping checkpoint or run folder trained with ``--model.codebook K`` (a quantised bottleneck)."""
    out: Path
    """The dump folder: ``train/`` and ``val/`` (each a :class:`~unrender.data.codes.CodeGrids` folder)."""
    split: Literal["train", "val", "both"] = "both"
    held_out: int | None = None
    """Held-out rooms to dump (default: the checkpoint's ``data.num_val``)."""
    batch_size: int = 16
    shard_size: int = 256
    """Scenes per file (the unit a killed dump resumes from)."""
    data_root: Path | None = None
    """Where the generated rooms are (default: the checkpoint's ``data.root``)."""
    device: str = "auto"


def dump_codes(args: DumpArgs) -> dict[str, Any]:
    """Write the code grids of a quantised mapping model's training and/or held-out rooms (training rooms
    mirrored too when its data was: each mirrored room is a scene of its own)."""
    from ...weights import load_trained
    from .data import MappingDataset

    if args.batch_size < 1 or args.shard_size < 1:
        raise ValueError(f"dump: --batch-size and --shard-size must be >= 1, got {args.batch_size}, {args.shard_size}")
    if args.held_out is not None and args.held_out < 1:
        raise ValueError(f"dump: --held-out must be >= 1, got {args.held_out}")
    cfg, model, folder, device = load_trained("mapping", args.ckpt, args.device, data_root=args.data_root)
    if not cfg.model.codebook:
        raise ValueError(f"dump: {folder} has a continuous bottleneck (model.codebook 0); train one with "
                         "--model.codebook K to dump codes")  # fmt: skip
    if args.held_out is not None:
        cfg.data.num_val = args.held_out
    Z, Y, X = (n // 2 ** (len(cfg.model.channels) - 1) for n in reversed(cfg.data.resolution))
    written: dict[str, Any] = {"checkpoint": str(folder), "out": str(args.out)}
    for split in ("train", "val") if args.split == "both" else (args.split,):
        data = MappingDataset(cfg, split)
        meta = {"checkpoint": str(Path(folder).resolve()), "split": split, "scenes": len(data),
                "mirrored": bool(data.mirror), "shard_size": args.shard_size, "grid": [Z, Y, X],
                "num_codes": cfg.model.codebook, "data": json_data(cfg)}  # fmt: skip
        dump = CodeDump(args.out / split, meta)
        todo = dump.missing()
        for k in tqdm(todo, desc=f"dump {split} codes (shards)", unit="shard", disable=not todo):
            idx = list(dump.shard_range(k))
            codes, Ks, cams = [], [], []
            for start in range(0, len(idx), args.batch_size):
                items = [data[i] for i in idx[start : start + args.batch_size]]
                batch = default_collate(items)
                with torch.no_grad():
                    codes.append(model.encode_codes({k2: v.to(device) for k2, v in batch.items()}).cpu())
                Ks.append(torch.cat([batch["K_in"], batch["K_out"][:, None]], 1))
                cams.append(torch.cat([batch["cam_from_mem_in"], batch["cam_from_mem_out"][:, None]], 1))
            dump.write(k, torch.cat(codes), torch.cat(Ks), torch.cat(cams))
        written[split] = {"scenes": len(data), "shards_written": len(todo), "shards_kept": dump.num_shards - len(todo)}
    return written


def json_data(cfg: Any) -> dict[str, Any]:
    """The data settings of a mapping config as JSON values (what a dump records of its rooms; not where
    they are stored)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg.data).items() if k != "root"}
