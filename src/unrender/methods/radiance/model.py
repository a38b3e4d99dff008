"""A radiance field on dense voxel grids: density and colour sampled trilinearly along rays, composited by
volume rendering (:func:`unrender.render.volume_render`).

Space is contracted as in mip-NeRF 360 (Barron et al. 2022): ``x`` within ``inner_radius`` of the origin
stays linear, farther points go to ``(2 - 1 / |x|) x / |x|`` (in units of ``inner_radius``), and the result
is halved, so the whole of space fits the grid's box ``[-1, 1]^3`` (sampled with ``align_corners=False``:
voxel centres at ``-1 + (i + 0.5) 2 / R``) and the ball of ``inner_radius`` fills its middle half.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...render import volume_render
from .config import RadianceConfig

__all__ = ["RadianceGrid", "contract"]


def contract(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Points ``(..., 3)`` -> grid coordinates in ``[-1, 1]^3`` (the module docstring's contraction).

    Example:
        >>> contract(torch.tensor([[0.5, 0.0, 0.0], [1e9, 0.0, 0.0]]), 1.0)
        tensor([[0.2500, 0.0000, 0.0000],
                [1.0000, 0.0000, 0.0000]])
    """
    x = x / radius
    n = x.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return torch.where(n <= 1, x, (2 - 1 / n) * x / n) / 2


class RadianceGrid(nn.Module):
    """``grids[k]``: ``(1, 4, R_k, R_k, R_k)`` values (density logit, colour logits), ``Z x Y x X`` over the
    contracted box; the levels are summed. Buffers keep the capture's frame so a fitted model renders and
    exports without its images: ``centre``/``scale`` (normalised = scale (world - centre)), ``circle`` (the
    orbit of the capture's cameras), ``K`` and ``size`` of its first image at the fitted resolution."""

    def __init__(self, cfg: RadianceConfig):
        super().__init__()
        m = self.m = cfg.model
        if m.levels < 1 or m.resolution >> (m.levels - 1) < 2:
            raise ValueError(f"model.levels {m.levels} halves resolution {m.resolution} below 2 voxels")
        grids = []
        for k in range(m.levels):
            r = m.resolution >> (m.levels - 1 - k)
            g = torch.zeros(1, 4, r, r, r)
            g[:, 0] = m.density_init if k == 0 else 0.0  # the coarsest level carries the initial density
            grids.append(nn.Parameter(g))
        self.grids = nn.ParameterList(grids)
        self.register_buffer("centre", torch.zeros(3, dtype=torch.float64))
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("circle", torch.zeros(10, dtype=torch.float64))
        self.register_buffer("K", torch.eye(3, dtype=torch.float64))
        self.register_buffer("size", torch.zeros(2, dtype=torch.long))

    def set_frame(self, frame) -> None:
        """Record the capture's frame (a :class:`~unrender.methods.radiance.data.CaptureFrame`)."""
        self.centre.copy_(frame.centre)
        self.scale.fill_(frame.scale)
        self.circle.copy_(frame.circle)
        self.K.copy_(frame.K)
        self.size.copy_(torch.tensor(frame.size))

    def sample_t(self, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """``(R, S + 1)`` interval edges: evenly over the ray's chord through the ball of 1.2 ``inner_radius``
        (from ``near``), then evenly in inverse distance out to ``far``."""
        m = self.m
        tc = -(origins * directions).sum(-1, keepdim=True)  # the ray's closest approach to the origin
        t0 = (tc - 1.2 * m.inner_radius).clamp(min=m.near)
        t1 = torch.maximum(tc + 1.2 * m.inner_radius, t0 + 1e-3)
        s = torch.linspace(0, 1, m.inner_samples + 1, device=origins.device)
        inner = t0 + (t1 - t0) * s
        s = torch.linspace(0, 1, m.outer_samples + 1, device=origins.device)[1:]
        outer = 1 / ((1 - s) / t1 + s / m.far)
        return torch.cat([inner, outer], -1)

    def query(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density ``(...)`` per unit length and colour ``(..., 3)`` at points ``(..., 3)`` (normalised frame)."""
        g = contract(points, self.m.inner_radius).reshape(1, 1, 1, -1, 3)
        v = sum(F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=False)
                for grid in self.grids)  # fmt: skip
        v = v.reshape(4, -1).T.reshape(*points.shape[:-1], 4)
        return F.softplus(v[..., 0]) * self.m.density_scale, torch.sigmoid(v[..., 1:])

    def forward(self, origins: torch.Tensor, directions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Render rays ``(R, 3)`` (unit directions, normalised frame): ``rgb (R, 3)``, ``depth (R, 1)`` (the
        expected distance, divided by the opacity), ``opacity (R, 1)``. In training, each sample sits at a
        random point of its interval (stratified sampling); in evaluation, at its middle."""
        t = self.sample_t(origins, directions)
        u = torch.rand_like(t[:, 1:]) if self.training else 0.5
        x = origins[:, None] + directions[:, None] * (t[:, :-1] + u * (t[:, 1:] - t[:, :-1]))[..., None]
        sigma, rgb = self.query(x)
        out = volume_render(sigma, rgb, t)
        out["depth"] = out["depth"] / out["opacity"].clamp(min=1e-6)
        return out

    def total_variation(self) -> torch.Tensor:
        """Mean squared difference of neighbouring voxels of the finest grid, over its three axes."""
        g = self.grids[-1]
        return sum(g.diff(dim=d).pow(2).mean() for d in (2, 3, 4))
