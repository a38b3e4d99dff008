"""An MLP on Fourier features of (Plücker ray, origin) that predicts the distance to the first hit."""

from __future__ import annotations

import torch
from torch import nn


class RayDepthMLP(nn.Module):
    def __init__(self, *, in_dim: int = 9, hidden: int = 128, layers: int = 3, frequencies: int = 6):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(frequencies) * 0.5, persistent=False)
        dim = in_dim * (1 + 2 * frequencies)
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Linear(dim, hidden), nn.SiLU()]
            dim = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(dim, 1))

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        """rays ``(..., 9)`` -> distance ``(...)`` (positive)."""
        x = rays[..., None] * self.freqs  # (..., 9, F)
        feats = torch.cat([rays, x.sin().flatten(-2), x.cos().flatten(-2)], -1)
        return torch.exp(self.net(feats)[..., 0])
