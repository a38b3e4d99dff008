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
    """A mapping run or checkpoint naming the rooms (None: the shipped mapping weights)."""
    scenes: int = 8
    root: Path = Path("runs/data")


@dataclass
class ProtoModel:
    prototypes: int = 8
    """Dictionary entries (the debugging stage: one per scene, each the size of the whole grid)."""
    width: int = 16
    """Channels of the 3D encoder of the partial view."""
    selection: Literal["softmax", "noise", "epsilon", "sinkhorn"] = "softmax"
    """How the classifier's scores weight the prototypes in training: ``softmax`` (of logits / temperature),
    ``noise`` (Gaussian noise of ``noise`` deviation added to the logits first), ``epsilon`` (with probability
    epsilon, decaying linearly from ``epsilon`` to 0 over ``epsilon_steps``, a random prototype alone),
    ``sinkhorn`` (the batch's softmax made doubly balanced by Sinkhorn iterations, as in SwAV: every room's
    weights sum to 1 and every prototype gets the same total weight over the batch, so with a batch of all K
    rooms no prototype can take two of them; the plain softmax is also trained to predict those balanced
    weights, a cross-entropy). At evaluation every variant takes the plain softmax."""
    temperature: float = 1.0
    noise: float = 1.0
    epsilon: float = 0.5
    epsilon_steps: int = 300
    init_std: float = 0.01
    """Prototypes start as Gaussian noise of this deviation (in logits): equal prototypes give the
    classifier nothing to choose between."""
    depth_planes: int = 24
    """Planes the held-out view is composited over (as the mapping net's view)."""


@dataclass
class ProtoLoss:
    occupancy: float = 1.0
    view: float = 1.0
    """MSE of the held-out view composited from the weighted prototypes (alpha = occupancy)."""
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


PRESETS = {"debug": debug, "tiny": tiny}
