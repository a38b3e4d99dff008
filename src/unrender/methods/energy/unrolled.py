"""Unrolled energy minimisation: a few differentiable gradient steps with a learned step size and
momentum (the generic optimiser both learned-energy tasks share), and the first-order ablation.

Inference is ``y_{k+1} = y_k - alpha * v_{k+1}`` with ``v_{k+1} = mu * v_k + clip(grad_y E(x, y_k))``,
starting from ``y_0`` (an initial network's guess). In training the gradient is taken with
``create_graph=True`` so the loss on every step reaches the energy's parameters, ``alpha`` and
``mu`` (double backprop); at test time the same loop runs without a graph, for any number of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UnrolledOptimizer", "FirstOrderUpdater", "clip_per_sample", "step_weights"]

Energy = Callable[[torch.Tensor], torch.Tensor]
"""``y (B, ...) -> energies (B,)``: the energy of each sample's hypothesis (the evidence is bound in)."""


def clip_per_sample(g: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each sample's gradient ``g[b]`` down to L2 norm at most ``max_norm`` (NaN/inf-free:
    non-finite entries become 0 first, so one bad sample cannot poison a step).

    Example:
        >>> clip_per_sample(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
        tensor([[0.6000, 0.8000],
                [0.3000, 0.4000]])
    """
    g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    norm = g.flatten(1).norm(dim=1).clamp(min=1e-12)
    return g * (max_norm / norm).clamp(max=1.0).view(-1, *([1] * (g.dim() - 1)))


def step_weights(steps: int, growth: float = 1.0) -> torch.Tensor:
    """Loss weights of the iterates ``y_0 .. y_steps``: proportional to ``(k + 1) ** growth``, summing
    to 1, so later steps count more.

    Example:
        >>> step_weights(3)
        tensor([0.1000, 0.2000, 0.3000, 0.4000])
    """
    w = torch.arange(1, steps + 2, dtype=torch.float64) ** growth
    return (w / w.sum()).float()


def _inverse_softplus(x: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(x, dtype=torch.float64))))


class UnrolledOptimizer(nn.Module):
    """``steps`` momentum gradient steps on an energy, with learned step size and momentum.

    Args:
        shape: shape of one sample's ``y`` that ``alpha`` is learned for: ``()`` for one scalar, or
            e.g. ``(17, 3)`` for one step size per coordinate (a learned diagonal preconditioner).
        steps: default number of steps (``forward(..., steps=k)`` overrides it, e.g. at test time).
        alpha: initial step size (kept positive by a softplus).
        momentum: initial momentum (kept in (0, 1) by a sigmoid).
        max_grad_norm: per-sample gradient-norm clipping.
    """

    def __init__(
        self,
        shape: tuple[int, ...] = (),
        steps: int = 4,
        alpha: float = 0.1,
        momentum: float = 0.5,
        max_grad_norm: float = 10.0,
    ):
        super().__init__()
        if steps < 0 or alpha <= 0 or not 0 < momentum < 1 or max_grad_norm <= 0:
            raise ValueError(
                f"UnrolledOptimizer: need steps >= 0, alpha > 0, 0 < momentum < 1 and max_grad_norm > 0, "
                f"got {steps}, {alpha}, {momentum}, {max_grad_norm}"
            )
        self.steps = steps
        self.max_grad_norm = max_grad_norm
        self.raw_alpha = nn.Parameter(torch.full(shape, _inverse_softplus(alpha)))
        self.raw_momentum = nn.Parameter(torch.logit(torch.tensor(momentum)))

    @property
    def alpha(self) -> torch.Tensor:
        return F.softplus(self.raw_alpha)

    @property
    def momentum(self) -> torch.Tensor:
        return torch.sigmoid(self.raw_momentum)

    def forward(self, energy: Energy, y0: torch.Tensor, steps: int | None = None) -> list[torch.Tensor]:
        """The iterates ``[y_0, ..., y_steps]``.

        Differentiable (graph through every step, ``create_graph=True``) when gradients are enabled
        and the module is training; otherwise each step is detached and runs under
        ``torch.enable_grad`` only to get ``grad_y E`` (so it also works inside ``torch.no_grad``).
        """
        steps = self.steps if steps is None else steps
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        train = self.training and torch.is_grad_enabled()
        ys, y, v = [y0], y0, torch.zeros_like(y0)
        alpha, mu = self.alpha, self.momentum
        for _ in range(steps):
            with torch.enable_grad():
                yk = y if train and y.requires_grad else y.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(energy(yk).sum(), yk, create_graph=train)
            g = clip_per_sample(g, self.max_grad_norm)
            if not train:
                g, alpha, mu = g.detach(), alpha.detach(), mu.detach()
            v = mu * v + g
            y = yk - alpha * v
            if not train:
                y = y.detach()
            ys.append(y)
        return ys


class FirstOrderUpdater(nn.Module):
    """The first-order ablation: ``y <- y + f([y ; grad_y L(y)])`` with a small MLP ``f`` and the
    gradient of a fixed loss ``L`` (e.g. the reprojection error) taken *without* a graph, so no
    second derivatives are needed. Same interface as :class:`UnrolledOptimizer`.

    Args:
        dim: flattened size of one sample's ``y``; hidden: MLP width; steps: default number of steps.
        max_grad_norm: per-sample clipping of the input gradient.
    """

    def __init__(self, dim: int, hidden: int = 256, steps: int = 4, max_grad_norm: float = 10.0):
        super().__init__()
        self.steps = steps
        self.max_grad_norm = max_grad_norm
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden), nn.Softplus(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity update
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, loss: Energy, y0: torch.Tensor, steps: int | None = None) -> list[torch.Tensor]:
        steps = self.steps if steps is None else steps
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        ys, y = [y0], y0
        for _ in range(steps):
            with torch.enable_grad():
                yk = y.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(loss(yk).sum(), yk)
            g = clip_per_sample(g, self.max_grad_norm).detach()
            y = y + self.net(torch.cat([y.flatten(1), g.flatten(1)], 1)).view_as(y)
            ys.append(y)
        return ys
