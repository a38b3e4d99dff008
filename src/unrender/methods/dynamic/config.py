"""Config of dynamic-scene mapping (issue 30): the data so far."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass
class DynamicData:
    """Generated traffic sequences (:func:`unrender.world.generators.traffic.traffic`): ``frames`` frames of a
    rig of 3 RGB-D cameras on an ego car, the voxel grid in the anchor frame (the middle one)."""

    variant: Literal["mixed", "one", "empty"] = "mixed"
    """``mixed`` traffic, exactly ``one`` moving object, or ``empty`` streets (the clean background)."""
    num_train: int = 32
    num_val: int = 8
    frames: int = 20
    height: int = 48
    width: int = 72
    seed: int = 0
    root: Path = Path("runs/data")
    """Datasets are written (once, resumably) under this folder, named by their settings."""
