"""Config and presets of composing scenes from a learned dictionary of 3D prototypes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...engine.config import TrainConfig


@dataclass
class ProtoData:
    """Rooms of a mapping model's held-out split (through the method registry: the same rooms, views, memory
    frame and exact occupancy as its evaluation). The partial view a model sees is the occupancy carved from
    the input depths; the targets are the exact occupancy and the held-out view."""

    mapping: Path | None = None
    """A mapping run or checkpoint naming the rooms (None: the shipped mapping weights); in the ``compose``
    stage also the frozen net whose features, occupancy, colour and detections the composition builds on."""
    scenes: int = 8
    """The debugging stage's rooms (the first of the held-out split)."""
    train_scenes: int = 200
    """The ``compose`` stage's training rooms (the first of the mapping training split; evaluated on all of its
    held-out rooms)."""
    root: Path = Path("runs/data")


@dataclass
class ProtoModel:
    stage: Literal["debug", "compose"] = "debug"
    """``debug``: K rooms, K whole-room prototypes weighted by a classifier of the partial view. ``compose``:
    small prototypes pasted at a frozen mapping net's boxes into a grid finer than its own
    (:mod:`unrender.methods.prototypes.compose`)."""
    prototypes: int = 8
    """Dictionary entries (the debugging stage: one per scene, each the size of the whole grid)."""
    width: int = 16
    """Channels of the 3D encoder of the partial view."""
    selection: Literal["softmax", "noise", "epsilon", "sinkhorn", "assign"] = "softmax"
    """How the classifier's scores weight the prototypes in training: ``softmax`` (of logits / temperature),
    ``noise`` (Gaussian noise of ``noise`` deviation added to the logits first), ``epsilon`` (with probability
    epsilon, decaying linearly from ``epsilon`` to 0 over ``epsilon_steps``, a random prototype alone),
    ``sinkhorn`` (the batch's softmax made doubly balanced by Sinkhorn iterations, as in SwAV: every room's
    weights sum to 1 and every prototype gets the same total weight over the batch, so with a batch of all K
    rooms no prototype can take two of them; the plain softmax is also trained to predict those balanced
    weights, a cross-entropy), ``assign`` (a hard one-to-one assignment of the batch's rooms to the prototypes,
    the least summed occupancy cross-entropy of each prototype alone; each room trains only its prototype, and
    the classifier is trained to predict the assignment, a cross-entropy: min-over-K, balanced). At evaluation
    every variant takes the plain softmax."""
    temperature: float = 1.0
    noise: float = 1.0
    epsilon: float = 0.5
    epsilon_steps: int = 300
    init_std: float = 0.01
    """Prototypes start as Gaussian noise of this deviation (in logits): equal prototypes give the
    classifier nothing to choose between."""
    depth_planes: int = 24
    """Planes the held-out view is composited over (as the mapping net's view)."""
    size: int = 16
    """``compose``: voxels along each edge of a prototype (it is scaled to its box)."""
    upsample: int = 2
    """``compose``: the output grid has this many times the mapping memory's resolution along each axis."""
    id_lattice: int = 4
    """``compose``: the id head reads the net's features at this many points along each edge of a box."""
    det_score: float = 0.3
    """``compose``: the net's detections kept for pasting (score at least this)."""
    match_radius: float = 0.5
    """``compose``: a detection counts as landing on the true object whose centre is nearest within this many
    metres (ground plane), for the prototype-to-class table."""


@dataclass
class ProtoLoss:
    occupancy: float = 1.0
    view: float = 1.0
    """MSE of the held-out view composited from the weighted prototypes (alpha = occupancy)."""
    pick: float = 1.0
    """``compose``: weight of the id head's cross-entropy against the min-over-K assignment."""
    balance: float = 0.0
    """Weight of a mutual-information term between rooms and prototypes (as in IIC's clustering): log K minus
    the entropy of the batch's mean prototype weights (0 when the batch spreads over the prototypes evenly,
    log K when one prototype takes every room) plus the mean entropy of each room's weights (0 when every room
    is sure of its prototype). The first half alone is minimised by every room weighting all prototypes
    evenly."""


@dataclass
class ProtoConfig:
    """K rooms and K whole-room RGBA prototypes: a classifier of the partial view weights the prototypes, and
    should end with one prototype per room; reports how often one prototype takes over instead."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: ProtoData = field(default_factory=ProtoData)
    model: ProtoModel = field(default_factory=ProtoModel)
    loss: ProtoLoss = field(default_factory=ProtoLoss)


def debug() -> ProtoConfig:
    """8 rooms, 8 whole-room prototypes, 400 steps of 4 rooms."""
    return ProtoConfig(
        train=TrainConfig(max_steps=400, batch_size=4, lr=1e-2, grad_clip=0.0, ckpt_every=200, log_every=20,
                          out_dir=Path("runs/prototypes-debug"), time_limit_min=20.0),
    )  # fmt: skip


def tiny() -> ProtoConfig:
    return ProtoConfig(
        train=TrainConfig(max_steps=4, batch_size=2, lr=1e-2, grad_clip=0.0, ckpt_every=2, log_every=2,
                          out_dir=Path("runs/prototypes-tiny")),
        data=ProtoData(scenes=2),
        model=ProtoModel(prototypes=2, width=4, depth_planes=6, epsilon_steps=2),
    )  # fmt: skip


def cpu() -> ProtoConfig:
    """The ``compose`` stage: 8 prototypes of 16^3 on 200 training rooms, 1500 steps of 4 rooms, output at
    twice the memory's resolution."""
    return ProtoConfig(
        train=TrainConfig(max_steps=1500, batch_size=4, lr=3e-3, grad_clip=0.0, ckpt_every=500, log_every=25,
                          out_dir=Path("runs/prototypes"), time_limit_min=40.0),
        model=ProtoModel(stage="compose"),
    )  # fmt: skip


def tiny_compose() -> ProtoConfig:
    cfg = tiny()
    cfg.train.out_dir = Path("runs/prototypes-tiny-compose")
    cfg.data.train_scenes = 4
    cfg.model = ProtoModel(stage="compose", prototypes=3, size=4, id_lattice=2, depth_planes=6, det_score=0.0)
    return cfg


PRESETS = {"debug": debug, "tiny": tiny, "cpu": cpu, "tiny-compose": tiny_compose}
