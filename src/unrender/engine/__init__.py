"""The training engine: one trainer for every method."""

from .checkpoint import find_latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig, config_from_dict, config_to_dict, config_to_json
from .trainer import StepBatchSampler, Trainer, build_optimizer, build_scheduler, seed_everything, unwrap

__all__ = [
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "config_from_dict",
    "config_to_dict",
    "config_to_json",
    "find_latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "unwrap",
]
