"""The training engine: one trainer for every method."""

from .checkpoint import (
    CheckpointError,
    MissingCheckpointError,
    find_latest_checkpoint,
    find_resumable_checkpoint,
    load_checkpoint,
    load_for_inference,
    load_resumable_checkpoint,
    save_checkpoint,
)
from .config import TrainConfig, check_config, config_from_dict, config_to_dict, config_to_json
from .trainer import StepBatchSampler, Trainer, build_optimizer, build_scheduler, seed_everything, unwrap

__all__ = [
    "CheckpointError",
    "MissingCheckpointError",
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "check_config",
    "config_from_dict",
    "config_to_dict",
    "config_to_json",
    "find_latest_checkpoint",
    "find_resumable_checkpoint",
    "load_checkpoint",
    "load_for_inference",
    "load_resumable_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "unwrap",
]
