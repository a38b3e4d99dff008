"""Scenes composed from a dictionary of learned 3D RGBA prototypes: the debugging stage, where each of K
rooms should end up explained by one of K whole-room prototypes chosen by a classifier of its partial view.

The classifier (a small 3D CNN on the occupancy carved from the input depths, pooled to K scores) weights
the prototypes: the scene's occupancy is ``sum_k w_k sigmoid(P_k[3])`` and its colour ``sum_k w_k sigmoid(
P_k[:3])``. With a plain softmax every prototype gets a share of every scene's gradient at first, so all of
them drift towards the mean room and the classifier has nothing to tell apart: one prototype can take over.
The training-time alternatives of :class:`~unrender.methods.prototypes.config.ProtoModel` break that
symmetry (logit noise, a temperature, epsilon-greedy picks, a balanced soft assignment, and a hard one-to-one
assignment of the batch's rooms to the prototypes that explain them best, :func:`min_cost_assignment`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import VoxelGrid, sample_frustum
from ...render import alpha_composite
from .config import ProtoConfig

__all__ = ["PrototypeComposer", "min_cost_assignment", "occupancy_costs"]


def occupancy_costs(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(N, K)``: the mean cross-entropy of each of ``K`` prototype occupancies (``logits (K, ...)``) against
    each of ``N`` targets ``(N, ...)`` of the same size (0/1 or soft), probabilities clamped to ``[eps, 1 - eps]``.
    """
    p = torch.sigmoid(logits.detach()).flatten(1).clamp(eps, 1 - eps)  # (K, V)
    t = target.flatten(1).to(p.dtype)  # (N, V)
    return -(t @ torch.log(p).T + (1 - t) @ torch.log1p(-p).T) / t.shape[1]


def min_cost_assignment(cost: torch.Tensor) -> torch.Tensor:
    """The columns ``(B,)`` (long, all distinct) that rows ``0..B-1`` of ``cost (B, K)``, ``B <= K``, are given
    so that the summed cost is least (the Hungarian method with potentials, O(B^2 K); exact).

    Raises:
        ValueError: not a 2D matrix with at most as many rows as columns, or not finite.
    """
    if cost.dim() != 2 or cost.shape[0] > cost.shape[1] or not torch.isfinite(cost).all():
        raise ValueError(f"min_cost_assignment: expected a finite (B, K) cost with B <= K, got {tuple(cost.shape)}")
    a = cost.detach().double().cpu().tolist()
    n, m = len(a), len(a[0]) if a else 0
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: the row (1-based) holding column j; 0: free
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        least, used = [inf] * (m + 1), [False] * (m + 1)
        while owner[j0] != 0:  # grow the alternating tree from row i until it reaches a free column
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    c = a[i0 - 1][j - 1] - u[i0] - v[j]
                    if c < least[j]:
                        least[j], way[j] = c, j0
                    if least[j] < delta:
                        delta, j1 = least[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            j0 = j1
        while j0:  # flip the path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            cols[owner[j] - 1] = j - 1
    return torch.tensor(cols, dtype=torch.long, device=cost.device)


class PrototypeComposer(nn.Module):
    def __init__(self, cfg: ProtoConfig, grid: VoxelGrid):
        super().__init__()
        m = self.m = cfg.model
        self.grid = grid
        w = m.width
        self.encoder = nn.Sequential(
            nn.Conv3d(2, w, 3, padding=1), nn.ReLU(),
            nn.Conv3d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv3d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4 * w, m.prototypes),
        )  # fmt: skip
        g = torch.Generator().manual_seed(0)
        self.prototypes = nn.Parameter(m.init_std * torch.randn(m.prototypes, 4, *grid.shape, generator=g))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # training steps taken (epsilon's decay)
        self.register_buffer("planes", torch.linspace(0.2, 9.0, m.depth_planes), persistent=False)

    def select(self, logits: torch.Tensor) -> torch.Tensor:
        """Prototype weights ``(B, K)`` from scores ``(B, K)`` (the training-time variant while training)."""
        m = self.m
        if not self.training or m.selection in ("softmax", "assign"):
            return F.softmax(logits / m.temperature, -1)
        if m.selection == "sinkhorn":
            log_w = logits / m.temperature
            for _ in range(20):  # alternately: each prototype the same total weight, each room's weights sum to 1
                log_w = log_w - torch.logsumexp(log_w, 0, keepdim=True) + math.log(len(logits) / logits.shape[-1])
                log_w = log_w - torch.logsumexp(log_w, -1, keepdim=True)
            return log_w.exp()
        if m.selection == "noise":
            return F.softmax((logits + m.noise * torch.randn_like(logits)) / m.temperature, -1)
        eps = m.epsilon * max(0.0, 1 - float(self.step) / max(1, m.epsilon_steps))
        w = F.softmax(logits / m.temperature, -1)
        pick = torch.rand(len(w), device=w.device) < eps
        one_hot = F.one_hot(torch.randint(w.shape[-1], (len(w),), device=w.device), w.shape[-1]).to(w.dtype)
        return torch.where(pick[:, None], one_hot, w)

    def compose(self, weights: torch.Tensor) -> torch.Tensor:
        """``(B, 4, Z, Y, X)``: colour and occupancy probabilities, the prototypes weighted by ``(B, K)``."""
        return torch.einsum("bk,kczyx->bczyx", weights, torch.sigmoid(self.prototypes))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``logits``/``weights (B, K)``, the composed ``volume (B, 4, Z, Y, X)`` and, with a held-out camera in
        the batch, its composited ``view (B, 3, H, W)``."""
        logits = self.encoder(torch.cat([batch["carved"], batch["known"]], 1))
        out = {"logits": logits}
        if self.training and self.m.selection == "assign":  # each room alone on the prototype it is given
            out["assigned"] = min_cost_assignment(occupancy_costs(self.prototypes[:, 3], batch["occ"]))
            weights = F.one_hot(out["assigned"], logits.shape[-1]).to(logits.dtype)
        else:
            weights = self.select(logits)
        vol = self.compose(weights)
        out.update(weights=weights, volume=vol)
        if "K_out" in batch:
            H, W = batch["rgb_out"].shape[-2:]
            fr = sample_frustum(vol, self.grid, batch["K_out"], batch["cam_from_mem_out"], H, W, self.planes)
            out["view"], _ = alpha_composite(fr[:, 3:], fr[:, :3])
        return out
