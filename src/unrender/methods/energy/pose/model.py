"""2D -> 3D pose lifters: the Martinez et al. (2017) residual MLP, and the learned-energy model (an
initial network's guess refined by unrolled gradient steps on reprojection consistency + a prior).

Every model reads ``joints_2d (B, 17, 2)`` pixels and ``K (B, 3, 3)`` and returns camera-frame joints
``(B, 17, 3)`` in metres; the energy model returns the list of its iterates ``y_0 .. y_K``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ....geometry import check_args, unproject_points
from ..unrolled import FirstOrderUpdater, UnrolledOptimizer
from .config import EnergyPoseConfig

__all__ = ["normalized_joints", "lifter_features", "MLPLifter", "PairwisePrior", "EnergyPose", "build_pose_model",
           "REPROJECTION_SIGMA"]  # fmt: skip

JOINTS = 17
REPROJECTION_SIGMA = 0.01
"""Unit of the reprojection residual in normalised image coordinates (~11 px at f = 1145)."""
_FEATURE_SCALE = 10.0
_DEPTH_OFFSET = math.log(5.0)


def normalized_joints(joints_2d: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels ``(B, J, 2)`` -> normalised image coordinates ``K^-1 [u, v, 1]`` (the ray at depth 1)."""
    check_args(("joints_2d", joints_2d, ("B", "J", 2)), ("K", K, ("B", 3, 3)))
    if not torch.isfinite(joints_2d).all():
        raise ValueError("joints_2d has non-finite values")
    return unproject_points(joints_2d, torch.ones_like(joints_2d[..., 0]), K)[..., :2]


def lifter_features(xn: torch.Tensor) -> torch.Tensor:
    """Network input ``(B, 2 J + 2)``: the joints relative to the root (pelvis) and the root itself,
    in normalised coordinates x 10 (a person 5 m away spans about 3.4 units)."""
    root = xn[:, :1]
    return torch.cat([(xn - root).flatten(1), root.flatten(1)], 1) * _FEATURE_SCALE


def project(y: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(..., 3)`` -> normalised image coordinates, depth clamped at 0.1 m."""
    return y[..., :2] / y[..., 2:].clamp(min=0.1)


class _Block(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MLPLifter(nn.Module):
    """Martinez et al. (2017): linear -> [residual block of 2 x (linear, batch norm, ReLU, dropout)] x
    ``blocks`` -> linear. Predicts root-relative joints and the root's log-depth; the root sits on
    the ray through its 2D detection."""

    def __init__(self, width: int = 1024, blocks: int = 2, dropout: float = 0.5):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Linear(2 * JOINTS + 2, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)
        )
        self.blocks = nn.Sequential(*(_Block(width, dropout) for _ in range(blocks)))
        self.head = nn.Linear(width, 3 * JOINTS + 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        xn = normalized_joints(batch["joints_2d"], batch["K"])
        out = self.head(self.blocks(self.stem(lifter_features(xn))))
        rel = out[:, : 3 * JOINTS].view(-1, JOINTS, 3)
        rel = rel - rel[:, :1]
        depth = torch.exp(out[:, -1:] + _DEPTH_OFFSET)  # (B, 1)
        root = torch.cat([xn[:, 0], torch.ones_like(depth)], 1) * depth
        return root[:, None] + rel


def _softplus_mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:], strict=False):
        layers += [nn.Linear(a, b), nn.Softplus()]
    return nn.Sequential(*layers)  # ends in a softplus: the output is >= 0


def _normalized_sq_distances(points: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances ``(B, P(P-1)/2)`` of points ``(B, P, D)``, divided by their mean:
    invariant to rotation, translation and scale."""
    i, j = torch.triu_indices(points.shape[1], points.shape[1], 1, device=points.device)
    d2 = (points[:, i] - points[:, j]).pow(2).sum(-1)
    return d2 / d2.mean(1, keepdim=True).clamp(min=1e-8)


class PairwisePrior(nn.Module):
    """A softplus MLP on the normalised pairwise squared distances of a point set -> energy >= 0."""

    def __init__(self, points: int, width: int):
        super().__init__()
        self.net = _softplus_mlp([points * (points - 1) // 2, width, width, 1])

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(_normalized_sq_distances(points))[:, 0]


class EnergyPose(nn.Module):
    """``y_0`` from a small :class:`MLPLifter`, then ``steps`` unrolled steps on

    ``E(x, y) = w * mean_j |(proj(y_j) - x_j) / sigma|^2  [+ pair([proj(y) ; x])]  + prior(y)``

    with a learned ``w > 0``, ``proj`` the pinhole projection in normalised coordinates,
    ``prior`` a softplus MLP on ``y``'s normalised pairwise squared distances (invariant to
    rotation and scale) and the optional ``pair`` term one on the 2D point set.
    """

    def __init__(self, cfg: EnergyPoseConfig):
        super().__init__()
        m = cfg.model
        self.initial = MLPLifter(m.width, m.blocks, m.dropout)
        self.raw_weight = nn.Parameter(torch.zeros(()))
        self.prior = PairwisePrior(JOINTS, m.prior_width)
        self.pair = PairwisePrior(2 * JOINTS, m.prior_width) if m.pair_term else None
        if m.optimizer == "unrolled":
            self.optimizer = UnrolledOptimizer((JOINTS, 3), m.steps, m.alpha, m.momentum, m.max_grad_norm)
        elif m.optimizer == "first_order":
            self.optimizer = FirstOrderUpdater(3 * JOINTS, m.prior_width, m.steps, m.max_grad_norm)
        else:
            raise ValueError(f"model.optimizer must be 'unrolled' or 'first_order', got {m.optimizer!r}")

    def reprojection(self, y: torch.Tensor, xn: torch.Tensor) -> torch.Tensor:
        """``(B,)``: mean squared reprojection residual in units of :data:`REPROJECTION_SIGMA`."""
        return ((project(y) - xn) / REPROJECTION_SIGMA).pow(2).sum(-1).mean(-1)

    def energy(self, y: torch.Tensor, xn: torch.Tensor) -> torch.Tensor:
        """``E(x, y)`` per sample ``(B,)``, bounded below by 0."""
        e = F.softplus(self.raw_weight) * self.reprojection(y, xn) + self.prior(y)
        if self.pair is not None:
            e = e + self.pair(torch.cat([project(y), xn], 1))
        return e

    def forward(self, batch: dict[str, torch.Tensor], steps: int | None = None) -> list[torch.Tensor]:
        xn = normalized_joints(batch["joints_2d"], batch["K"])
        y0 = self.initial(batch)
        if isinstance(self.optimizer, FirstOrderUpdater):
            return self.optimizer(lambda y: self.reprojection(y, xn), y0, steps)
        return self.optimizer(lambda y: self.energy(y, xn), y0, steps)


def build_pose_model(cfg: EnergyPoseConfig) -> nn.Module:
    m = cfg.model
    if m.kind == "energy":
        return EnergyPose(cfg)
    if m.kind == "mlp":
        return MLPLifter(m.width, m.blocks, m.dropout)
    raise ValueError(f"model.kind must be 'energy' or 'mlp', got {m.kind!r}")
