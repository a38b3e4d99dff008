"""Vector quantisation of feature volumes: a codebook, nearest-code assignment with the straight-through
estimator, EMA codebook updates and restarts of dead codes (VQ-VAE; van den Oord et al. 2017, with the EMA
updates of its appendix and of VQ-VAE-2)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["VectorQuantizer", "code_perplexity"]


def code_perplexity(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """``exp`` of the entropy of the codes' frequencies in ``indices`` (any shape): ``num_codes`` when every
    code is used equally often, 1 when one code is used everywhere."""
    p = torch.bincount(indices.reshape(-1), minlength=num_codes).double()
    p = p / p.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum()).float()


class VectorQuantizer(nn.Module):
    """Each ``dim``-channel vector of a ``(B, dim, *spatial)`` volume replaced by its nearest of ``num_codes``
    codebook entries (Euclidean).

    The codebook is not trained by gradients: the first forward in training mode sets it to random vectors of
    the batch (the encoder's scale, not the initial normal draws), and each one moves every code to the
    exponential moving average (``decay``) of the vectors assigned to it, and a code whose average count
    falls below ``dead_below`` restarts at a random vector of the batch, so codes do not die unused. The
    encoder gets the decoder's gradient through the straight-through estimator and is pulled toward its codes
    by the commitment loss. Under ``torch.distributed`` the counts and sums are summed over processes, so
    every process keeps the same codebook.

    Args:
        num_codes: codebook entries ``K``.
        dim: channels of a code.
        decay: EMA decay of the codebook statistics.
        dead_below: a code whose EMA count (vectors a step) is below this restarts.
        eps: Laplace smoothing of the counts.
    """

    def __init__(self, num_codes: int, dim: int, *, decay: float = 0.99, dead_below: float = 0.01,
                 eps: float = 1e-5) -> None:  # fmt: skip
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f"VectorQuantizer: needs num_codes >= 2 and dim >= 1, got {num_codes}, {dim}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"VectorQuantizer: decay must be in [0, 1), got {decay}")
        self.num_codes, self.dim, self.decay, self.dead_below, self.eps = num_codes, dim, decay, dead_below, eps
        codes = torch.randn(num_codes, dim)
        self.register_buffer("codebook", codes)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", codes.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def assign(self, flat: torch.Tensor) -> torch.Tensor:
        """Indices ``(N,)`` of the nearest code of each row of ``flat (N, dim)``."""
        c = self.codebook.to(flat.dtype)
        d = (flat * flat).sum(1, keepdim=True) - 2 * flat @ c.T + (c * c).sum(1)[None]
        return d.argmin(1)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``(B, *spatial)`` of the nearest code of each vector of ``z (B, dim, *spatial)``; no codebook
        update, no gradient."""
        if z.dim() < 3 or z.shape[1] != self.dim:
            raise ValueError(f"VectorQuantizer: expected (B, {self.dim}, ...) features, got {tuple(z.shape)}")
        return self.assign(z.detach().movedim(1, -1).reshape(-1, self.dim)).reshape(z.shape[:1] + z.shape[2:])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices (B, *spatial)`` as a volume ``(B, dim, *spatial)``."""
        return self.codebook[indices].movedim(-1, 1)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``z (B, dim, *spatial)`` ->

        ``quantized``: the codes, same shape, with the straight-through gradient to ``z``; ``indices (B,
        *spatial)`` long; ``commitment``: mean squared distance of ``z`` to its (fixed) codes;
        ``perplexity`` of the batch's codes; ``used``: the share of the codebook the batch uses.
        """
        if z.dim() < 3 or z.shape[1] != self.dim:
            raise ValueError(f"VectorQuantizer: expected (B, {self.dim}, ...) features, got {tuple(z.shape)}")
        flat = z.movedim(1, -1).reshape(-1, self.dim)
        if self.training and not bool(self.initialised):
            self._restart(torch.ones(self.num_codes, dtype=torch.bool, device=flat.device), flat.detach().float())
            self.initialised.fill_(True)
        indices = self.assign(flat.detach())
        if self.training:
            self._update(flat.detach().float(), indices)
        codes = self.codebook[indices].to(z.dtype)
        quantized = codes.reshape(*z.shape[:1], *z.shape[2:], self.dim).movedim(-1, 1)
        commitment = (z - quantized.detach()).pow(2).mean()
        quantized = z + (quantized - z).detach()  # straight through: the decoder's gradient goes to z
        indices = indices.reshape(z.shape[:1] + z.shape[2:])
        used = torch.unique(indices).numel() / self.num_codes
        return {"quantized": quantized, "indices": indices, "commitment": commitment,
                "perplexity": code_perplexity(indices, self.num_codes), "used": torch.tensor(used)}  # fmt: skip

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        onehot = torch.zeros(len(flat), self.num_codes, device=flat.device)
        onehot[torch.arange(len(flat), device=flat.device), indices] = 1
        count, total = onehot.sum(0), onehot.T @ flat
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(count)
            dist.all_reduce(total)
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(total, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        dead = self.ema_count < self.dead_below
        if dead.any():
            self._restart(dead, flat)

    @torch.no_grad()
    def _restart(self, which: torch.Tensor, flat: torch.Tensor) -> None:
        """Codes ``which`` (bool ``(K,)``) restart at random rows of ``flat`` (the same on every process)."""
        n = int(which.sum())
        pick = (torch.randperm(len(flat), device=flat.device)[:n] if len(flat) >= n
                else torch.randint(len(flat), (n,), device=flat.device))  # fmt: skip
        fresh = flat[pick]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(fresh, 0)
        self.codebook[which] = fresh
        self.ema_sum[which] = fresh
        self.ema_count[which] = 1.0
