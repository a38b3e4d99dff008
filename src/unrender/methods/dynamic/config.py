"""Config and presets of dynamic-scene mapping (issue 30): the data, the 3D feature net and its training
(occupancy and synthetic-motion flow), background subtraction and tracking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ...engine.config import TrainConfig


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
    signal: Literal["carved", "memory", "features"] = "carved"
    """What is compared with the background: ``carved`` occupancy (1 where a depth point falls, 0 where a ray
    passed through, the rest unknown: a voxel a car drives through is free in the other frames, while a
    static surface is never seen through), the ``memory`` (occupancy and occupancy x colour, unknown where
    no view looks: a voxel a surface only sometimes has a depth point in flickers) or the trained feature
    net's unit ``features`` of each frame (where any view looks; evaluation scores this one beside the
    default with ``feature_threshold``)."""
    statistic: Literal["median", "mean"] = "median"
    threshold: float = 0.5
    """A voxel moves when its signal differs from the background by more (Euclidean over channels)."""
    feature_threshold: float = 1.4
    """The threshold of the ``features`` signal (unit vectors: distances in [0, 2]; only voxels the frame has
    a surface in count, as the features of the air around a moving car change too). Chosen on 4 training
    sequences with a 600-step run's features (moving vehicles, AP3d@0.25 by size): 1.0 -> 0.29, 1.2 -> 0.47,
    1.4 -> 0.66, 1.6 -> 0.55 (carved occupancy: 0.44); counting the air as well, 0.11 at best (1.6)."""
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
    score: Literal["render", "occupancy"] = "occupancy"
    """How a pose hypothesis is scored: ``render`` (the composed scene rendered into the cameras against their
    images) or ``occupancy`` (the object's carved occupancy against the frame's foreground and free space, in
    3D). Measured on the cpu data's 4 held-out sequences (6 moving vehicles, 73 frames): the render score
    rendered the true pose no better than the one it kept in 72 of the 73 frames and followed the vehicles at a
    mean IoU of 0.07; the occupancy score with no motion prior, 0.77 (constant velocity: 0.84)."""
    free_weight: float = 1.0
    """Occupancy score: weight of the object's matter in voxels its frame carved free."""
    smoothness: float = 3.0
    """Occupancy score: cost per square metre of a hypothesis's shift from the constant-velocity one
    (relative to the evidence, which lies in [-1, free_weight]). On those 12 training sequences: 0 -> mean IoU
    0.67, 0.3 -> 0.75, 1 -> 0.82, 3 -> 0.87 (constant velocity: 0.86)."""
    depth_planes: int = 48
    near: float = 1.0
    far: float = 40.0
    """Depth planes of the renders, evenly spaced in disparity between ``near`` and ``far`` metres."""


@dataclass
class SegmenterConfig:
    """The moving-voxel segmenter (:mod:`unrender.methods.dynamic.segment`), trained at evaluation on the weak
    labels of the training sequences (occupancy changes; no ground truth of motion) and scored on the held-out
    ones next to the weak labels themselves."""

    gap: int = 2
    """Frames between a frame and the neighbours its weak labels and its input compare it with."""
    dilation: int = 1
    """A surface counts as moved only when its whole neighbourhood (this many voxels) is free in a neighbour."""
    feature_threshold: float = 1.6
    """Weak labels from the feature net (:func:`~unrender.methods.dynamic.background.changed_features`): a
    surface whose feature moved farther than this between the frames ``gap`` apart (unit vectors: [0, 2]).
    Chosen on 4 training sequences with a 600-step run's features (moving-voxel IoU): 0.9 -> 0.01, 1.2 ->
    0.04, 1.4 -> 0.09, 1.6 -> 0.17, 1.8 -> 0.16 (the occupancy-change labels: 0.16). On static surfaces the
    features move by 0.48 between frames 2 apart (median; 1.12 at the 90th percentile: what a surface's
    neighbourhood shows changes with the view), on moving ones by 1.73 (0.68 at the 10th)."""
    channels: tuple[int, ...] = (8, 16)
    steps: int = 300
    batch: int = 4
    lr: float = 2e-3
    seed: int = 0


@dataclass
class DynamicModel:
    channels: tuple[int, ...] = (16, 32)
    """Feature channels at full and half resolution (a U-Net: the flow needs the full-resolution detail)."""
    features: int = 16
    """Channels of the correlation features (unit length per voxel)."""
    inputs: tuple[str, ...] = ("occupancy", "colour", "views", "carved", "free")
    """What of the memory the net sees (:data:`~unrender.methods.dynamic.model.INPUTS`): ``occupancy``, ``colour``
    (occupancy x colour, centred), ``views`` (the fraction of the cameras that look at a voxel), ``carved``
    (a depth point fell in it), ``free`` (a ray passed through it). All of them by default (what checkpoints
    without the setting saw); the presets use :data:`CONTENT_INPUTS`."""


CONTENT_INPUTS = ("occupancy", "colour", "carved")
"""The memory channels that move with what the cameras see, not with the cameras: the fraction of views and
the free space move with the rig (in the street's grid, with the ego car), and features that see them match
the rig's motion. Measured (``runs/x36/dynamic``, held-out, scripts): holding those two channels at their
mean over the sequence, without retraining, lowers the flow error on moving voxels from 0.627 to 0.587 m
(per piece 0.407 -> 0.357) and on static ones from 0.604 to 0.482."""


@dataclass
class FlowTraining:
    """The synthetic-motion objective: the memory moved by a random rigid motion, the features' soft-argmax
    correlation trained to land where each occupied voxel went (:func:`~unrender.methods.dynamic.motion.flow_loss`)."""

    RETIRED: ClassVar[tuple[str, ...]] = ("sharp_temperature", "piece_weight")
    """Settings of earlier versions that checkpoints may still carry (ignored when they load)."""

    weight: float = 1.0
    """0: features trained by the occupancy objective alone (the ablation)."""
    radius: int | tuple[int, int, int] = (4, 1, 4)
    """Correlation reach in voxels along x, y, z (or one for all three): 2 m along the street at 0.5 m voxels.
    A car moves up to 1.75 m between frames of the traffic data (13 % of the moving surface voxels of 4
    training sequences more than 1.5 m, beyond the earlier reach of 3 voxels); nothing moves vertically, so y
    reaches 1 voxel (243 offsets instead of 729 for 4 on every axis)."""
    samples: int = 512
    """Occupied voxels drawn per sample for the loss."""
    temperature: float = 0.05
    """Of the soft-argmax, in training and in evaluation's ``features/...``. Measured on 4 training sequences
    after 600 steps (end-point error on moving / static voxels, metres, scored at 0.03): trained at 0.1 ->
    0.55 / 0.52, at 0.05 -> 0.47 / 0.58 (zero flow 1.04 / 0)."""
    piece_temperature: float = 0.03
    """Evaluation's one motion per moving piece (``features+rigid/...``: :func:`~unrender.nn.flow.piece_flow`,
    the correlation averaged over the surface voxels of each component of background subtraction on carved
    occupancy, with the frames after and before) takes the soft-argmax at this temperature. Chosen on 4
    training sequences (``runs/x35/dynamic``; end-point error on moving voxels, metres; zero flow 1.04): with
    both frames 0.003 -> 0.25, 0.01 -> 0.22, 0.03 -> 0.22; with the frame after only 0.40 / 0.39 / 0.36; the mean
    of the pieces' per-voxel flows (the earlier rule) 0.40; each voxel's own flow 0.47. The pieces of
    subtraction on the features did as well (0.22 with both frames) but depend on the features scored (the
    run without synthetic motion finds none). Sharper per-voxel soft-argmax (0.03 instead of 0.05) was scored
    in earlier versions and did no better (held-out: 0.641 against 0.636 m, ``runs/x34``)."""
    max_yaw: float = 0.15
    """Largest synthetic turn about the vertical, radians."""
    max_shift: tuple[float, float, float] = (1.5, 0.0, 1.5)
    """Largest synthetic shift along x, y, z, metres."""
    objects: float = 0.5
    """Share of the loss's voxels drawn from a piece of the scene that moves on its own on top of the scene's
    motion (:func:`~unrender.methods.dynamic.motion.move_chunk`: a box of ``object_size`` around a random
    surface above the road, turned about its centre by up to ``max_yaw`` and shifted by up to
    ``object_shift``); 0: the whole scene moves as one. With the whole scene moving, features may match by
    their context; a car moves against its context. Measured on 4 training sequences after 600 steps
    (trained at temperature 0.1; moving / static error at 0.1): 0 -> 0.65 / 0.42, 0.5 -> 0.60 / 0.38."""
    crop: float = 0.3
    """The moved world's views lose a band of columns at a random side, up to this share of their width
    (:func:`~unrender.methods.dynamic.losses.crop_columns`): the cameras of a street do not move with a car, so
    where the seen part of a surface ends is no cue to its motion. Measured (the ``cpu`` preset, 1500 steps,
    4 held-out sequences; ``runs/x38``): 0 -> 0.3, flow error on moving voxels 0.541 -> 0.542 m (per piece
    0.301 -> 0.300), on static ones 0.505 -> 0.481; vehicles AP3d@0.25 of background subtraction on the
    features 0.592 -> 0.729."""
    object_size: tuple[float, float, float] = (2.5, 2.0, 5.0)
    """The moving piece's box, metres along x, y (up from 0.2 m above the road), z."""
    object_shift: tuple[float, float, float] = (1.0, 0.0, 1.0)
    """Largest shift of the piece against the scene, metres."""
    detach_moved: bool = False
    """Features of the moved memory without gradients (only the first memory's features learn from the flow):
    the step costs 0.70 s instead of 1.02 s on a 2-core Intel Xeon (cpu preset, batch 4), but the features
    match worse. On 4 training sequences after 600 steps (end-point error on moving voxels at temperature
    0.05 / 0.03, metres; zero flow 1.04): with gradients 0.51 / 0.47, detached 0.67 / 0.55."""


@dataclass
class DynamicConfig:
    data: DynamicData = field(default_factory=DynamicData)
    model: DynamicModel = field(default_factory=DynamicModel)
    flow: FlowTraining = field(default_factory=FlowTraining)
    occupancy_weight: float = 1.0
    """Weight of the occupancy objective (every voxel's true occupancy from the frame's memory)."""
    subtraction: SubtractionConfig = field(default_factory=SubtractionConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    segment: SegmenterConfig = field(default_factory=SegmenterConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir=Path("runs/dynamic")))


def tiny() -> DynamicConfig:
    return DynamicConfig(
        train=TrainConfig(
            max_steps=20, batch_size=2, lr=2e-3, ckpt_every=10, log_every=5, out_dir=Path("runs/dynamic-tiny")
        ),  # fmt: skip
        data=DynamicData(variant="one", num_train=2, num_val=1, frames=4, height=24, width=32),
        model=DynamicModel(channels=(8, 16), features=8, inputs=CONTENT_INPUTS),
        flow=FlowTraining(samples=64),
        segment=SegmenterConfig(steps=3, batch=2),
    )


def cpu() -> DynamicConfig:
    return DynamicConfig(
        train=TrainConfig(
            max_steps=1500,
            batch_size=4,
            lr=2e-3,
            warmup_steps=50,
            ckpt_every=250,
            out_dir=Path("runs/dynamic"),
            time_limit_min=28.0,
        ),  # fmt: skip
        data=DynamicData(num_train=24, num_val=4),
        model=DynamicModel(inputs=CONTENT_INPUTS),
    )


PRESETS = {"tiny": tiny, "cpu": cpu}
