"""``mapping``: neural 3D mapping from a few posed RGB-D views of a room (voxel memory, occupancy,
semantics, view prediction, oriented 3D boxes)."""

from __future__ import annotations

import torch
from torch import nn

from ...resources import check_memory
from ..base import Method
from .config import PRESETS, MappingConfig
from .data import MappingDataset
from .dump import DumpArgs, dump_codes
from .evaluate import evaluate_mapping
from .losses import mapping_losses
from .model import MappingNet
from .predict import MappingPredictArgs, predict_mapping_files

# Peak training bytes per voxel of the memory and per sample of the batch at 16 first-level channels
# (~5.3 kB with the cpu preset: 597 MB peak RSS in benchmarks/bench_mapping.py, less the interpreter's
# ~250 MB, over 4 x 32 x 16 x 32 voxel-samples; rounded up).
BYTES_PER_VOXEL_SAMPLE = 8192


def build_dataset(cfg: MappingConfig, split: str) -> MappingDataset:
    if split == "train":  # before its batches (and the data) exist; eval and predict need no such room
        X, Y, Z = cfg.data.resolution
        need = BYTES_PER_VOXEL_SAMPLE * cfg.train.batch_size * X * Y * Z * max(1.0, cfg.model.channels[0] / 16)
        check_memory(need, f"training batches of {cfg.train.batch_size} on a {X} x {Y} x {Z} voxel memory",
                     hint="lower --data.resolution, --train.batch-size or --model.channels")  # fmt: skip
    return MappingDataset(cfg, "train" if split == "train" else "val")


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: MappingConfig) -> dict[str, torch.Tensor]:
    return mapping_losses(model(batch), batch, cfg)


METHOD = Method(
    name="mapping",
    description="Neural 3D mapping: posed RGB-D views of a room -> voxel memory -> occupancy, semantics, "
    "held-out views and oriented 3D boxes.",
    config=MappingConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=MappingNet,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate_mapping,
    extra={"predict": (MappingPredictArgs, predict_mapping_files), "dump": (DumpArgs, dump_codes)},
)
