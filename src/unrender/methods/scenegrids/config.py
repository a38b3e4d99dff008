"""Config and presets of per-scene latent grids (an auto-decoder) with shared decoders and renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...engine.config import TrainConfig


@dataclass
class GridsData:
    """The rooms of a mapping model's held-out split (the same rooms, views and memory frame its evaluation
    scores): each has input RGB-D views, one held-out view and exact occupancy. Only the input views are fitted;
    the held-out view and the exact occupancy are the scores."""

    mapping: Path | None = None
    """A mapping run or checkpoint whose config names the rooms, and whose net is the feed-forward baseline
    (None: the shipped mapping weights)."""
    scenes: int = 16
    """Rooms fitted jointly with the shared decoder (the first of the held-out split)."""
    new_scenes: int = 4
    """Rooms after those, fitted afterwards with the decoder frozen (the evaluation's steps-to-quality curve)."""
    pseudo_views: int = 24
    """With ``loss.net_views``: cameras per room, placed like its input cameras elsewhere on their ring
    (``ring_cameras``), whose mapping-net views give the grid the net's completion where no input view looked."""
    root: Path = Path("runs/data")
    """Where the generated rooms are (written there once, as the mapping method writes them)."""


@dataclass
class GridsModel:
    channels: int = 8
    """Feature channels of a scene's grid."""
    upsample: int = 2
    """The scene grids have this many times the mapping memory's resolution along each axis."""
    margin: float = 2.0
    """The scene grids cover the mapping memory's box grown by this many metres on every side (rounded to whole
    voxels): what the views see beyond the box (the walls above it, the room beside it) needs a place too, or
    a held-out view shows background there. Occupancy is scored on the memory's box alone."""
    renderer: Literal["composite", "linear", "nerf"] = "nerf"
    """``composite``: 1x1x1 convolutions decode occupancy and colour volumes, composited along each ray
    with occupancy as alpha (no parameters in the renderer). ``linear``: the features themselves are
    composited (occupancy as alpha) and one 1x1 map without bias turns them into colour, so the features
    must carry the appearance. ``nerf``: an MLP on trilinearly sampled features gives density and colour,
    volume rendered."""
    hidden: int = 32
    samples: int = 64
    """Points per ray, evenly spaced from ``near`` to ``far`` (stratified in training)."""
    near: float = 0.1
    far: float = 9.0
    init_std: float = 0.1
    """Scene grids start as Gaussian noise of this deviation."""
    background: bool = True
    """A learned background colour (shared by every scene; for the ``linear`` renderer a feature, composited
    behind the others and turned into colour with them) behind every ray: what a ray
    that leaves the box without hitting anything shows (the sky of the rooms). Without it the grids must put
    density somewhere to show that colour, floaters that other views see."""


@dataclass
class GridsLoss:
    rays: int = 1024
    """Rays per scene per step, drawn from its input views."""
    rgb: float = 1.0
    depth: float = 0.1
    """L1 of the rendered depth (expected distance along the ray, converted to z) against the input depth."""
    occupancy: float = 0.1
    """Cross-entropy of the occupancy against occupancy carved from the input depths (carved-known voxels)."""
    tv: float = 0.01
    """Total variation of the scene grids."""
    tv_block: int = 32
    """The total variation is taken over one random block of this many voxels along each edge per step (0: the
    whole grid)."""
    empty: float = 0.1
    """Rays whose input depth is 0 (nothing hit within range): cross-entropy pulling their opacity to 0."""
    prior: float = 0.1
    """Weight of the feed-forward prior: in mapping voxels the input depths say nothing about (neither carved
    nor seen free), the grid's occupancy is pulled to the mapping net's (cross-entropy) and its colour to the
    net's colour volume (MSE weighted by the net's occupancy). The net sees the same input views only."""
    net_views: float = 1.0
    """Weight of the feed-forward views: colour MSE against the mapping net's view from ``data.pseudo_views``
    cameras around the room, on the pixels that no input view saw (the net sees the same input views only):
    the net's completion of what lies outside every input view, where a grid has nothing else to go by."""
    view_rays: int = 512
    """Rays per scene per step drawn from those pixels."""
    prior_voxels: int = 4096
    """Unseen voxels drawn per scene per step for the prior."""
    scene_lr: float = 0.05
    """Adam learning rate of every scene's own optimiser (the trainer's ``lr`` is the decoder's)."""


@dataclass
class GridsEval:
    new_steps: int = 300
    """Steps of fitting each new scene with the decoder frozen."""
    every: int = 25
    """Score the new scenes' held-out views every this many of those steps."""


@dataclass
class GridsConfig:
    """One latent grid per room, each with its own optimiser, and one shared decoder and renderer; scored on
    the rooms' held-out views and exact occupancy against the feed-forward mapping net on the same rooms."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: GridsData = field(default_factory=GridsData)
    model: GridsModel = field(default_factory=GridsModel)
    loss: GridsLoss = field(default_factory=GridsLoss)
    eval: GridsEval = field(default_factory=GridsEval)


def cpu() -> GridsConfig:
    """16 rooms, 4 per step: 3200 steps = 800 optimiser steps per room."""
    return GridsConfig(
        train=TrainConfig(max_steps=3200, batch_size=4, lr=3e-3, grad_clip=0.0, ckpt_every=500, log_every=25,
                          out_dir=Path("runs/scene-grids"), time_limit_min=45.0),
    )  # fmt: skip


def tiny() -> GridsConfig:
    return GridsConfig(
        train=TrainConfig(max_steps=4, batch_size=2, lr=3e-3, grad_clip=0.0, ckpt_every=2, log_every=2,
                          out_dir=Path("runs/scene-grids-tiny")),
        data=GridsData(scenes=2, new_scenes=1),
        model=GridsModel(channels=4, upsample=1, hidden=8, samples=16, margin=0.0),
        loss=GridsLoss(rays=64),
        eval=GridsEval(new_steps=4, every=2),
    )  # fmt: skip


PRESETS = {"cpu": cpu, "tiny": tiny}
