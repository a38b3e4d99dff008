"""Config of dynamic-scene mapping (issue 30): the data, background subtraction and tracking."""

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


@dataclass
class SubtractionConfig:
    signal: Literal["carved", "memory"] = "carved"
    """What is compared with the background: ``carved`` occupancy (1 where a depth point falls, 0 where a ray
    passed through, the rest unknown: a voxel a car drives through is free in the other frames, while a
    static surface is never seen through) or the ``memory`` (occupancy and occupancy x colour, unknown where
    no view looks: a voxel a surface only sometimes has a depth point in flickers)."""
    statistic: Literal["median", "mean"] = "median"
    threshold: float = 0.5
    """A voxel moves when its signal differs from the background by more (Euclidean over channels)."""
    margin: int = 0
    """Voxels within this many voxels of what a frame did not see do not count (:func:`reliably_seen`; carved
    free space is sparse, so with ``carved`` any margin drops most of what is known)."""
    above_road: float = 0.2
    """Only voxels whose centre is at least this high above the road (``y = 0`` of the anchor frame) count:
    at grazing angles a road voxel's centre projects into a pixel whose ray meets the road metres away, so
    carving marks the road free in some frames and occupied in others."""
    min_voxels: int = 4
    """Components smaller than this are dropped."""
    shell: float = 1.0
    """Thickness of the centre-surround shell, metres."""
    amodal: bool = True
    """Grow each component's box to a whole object (:func:`unrender.methods.dynamic.detect.amodal_boxes`): a
    component is the surface the cameras saw, one side of a car. Measured on 8 mixed sequences (48 x 72,
    moving vehicles, size score): AP3d@0.25 0.17 around the seen voxels, 0.60 grown."""


@dataclass
class TrackConfig:
    step: float = 0.5
    """Spacing of the search grid of positions around the constant-velocity hypothesis, metres."""
    reach: int = 2
    """Search positions on each side of it along x and z."""
    yaw_step: float = 0.0
    """Also try turning by this much either way (radians; 0: no turns)."""
    depth_planes: int = 48
    near: float = 1.0
    far: float = 40.0
    """Depth planes of the renders, evenly spaced in disparity between ``near`` and ``far`` metres."""
