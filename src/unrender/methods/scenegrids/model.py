"""The shared part of the auto-decoder: occupancy and colour decoders and three renderers, applied to any
scene's latent grid ``(C, Z, Y, X)`` (in the mapping memory frame, on its box grown by ``margin``, at
``upsample`` x its resolution). The grids themselves live in a
:class:`~unrender.methods.scenegrids.bank.SceneBank`, not in the module's parameters: the trainer's optimiser
steps the decoder, each scene's own optimiser its grid.

Rays are sampled at ``samples`` points evenly from ``near`` to ``far`` (one point at a random place in each
interval while training); features are read trilinearly (zero outside the box).

* ``composite``: 1x1x1 convolutions (one MLP per sampled feature) decode occupancy (a probability) and colour
  volumes; along each ray, the occupancy at a point is its alpha, colours are alpha-composited front to back.
  No renderer parameters.
* ``linear``: the same occupancy as alpha, but the *features* are composited and one 1x1 map without bias
  turns the composited feature into colour: the features must carry the appearance.
* ``nerf``: an MLP on the sampled feature gives density (per metre) and colour, volume rendered
  (:func:`unrender.render.volume_render`); its occupancy is the alpha of one mapping voxel's length.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import VoxelGrid
from ...render import alpha_composite, volume_render
from .bank import SceneBank
from .config import GridsConfig

__all__ = ["SceneGridModel"]


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, cout))  # fmt: skip


class SceneGridModel(nn.Module):
    """Decoders and a renderer shared by every scene; ``bank`` holds the scenes' grids (``grid``: the
    mapping memory's :class:`VoxelGrid`; the scene grids, ``scene_grid``, cover its box grown by ``margin`` at
    ``upsample`` x its resolution; occupancy is scored on the memory's box)."""

    def __init__(self, cfg: GridsConfig, grid: VoxelGrid, bank_folder: Path, num_scenes: int):
        super().__init__()
        m = self.m = cfg.model
        self.grid = grid
        # the scene grids: the memory's box grown by ``margin`` (whole fine voxels) at ``upsample`` x its resolution
        v = [size / m.upsample for size in grid.voxel_size]
        n = [round(m.margin / size) for size in v]
        lo = [b - k * size for b, k, size in zip(grid.bounds_min, n, v, strict=True)]
        hi = [b + k * size for b, k, size in zip(grid.bounds_max, n, v, strict=True)]
        res = [r * m.upsample + 2 * k for r, k in zip(grid.resolution, n, strict=True)]
        self.scene_grid = VoxelGrid(tuple(lo), tuple(hi), tuple(res))
        X, Y, Z = res
        self.shape = (m.channels, Z, Y, X)
        self.voxel = float(min(grid.voxel_size))  # the mapping memory's voxel edge: occupancy's length
        self.register_buffer("centres", grid.centers(), persistent=False)  # (Z, Y, X, 3): where occupancy is scored
        self.bank = SceneBank(bank_folder, num_scenes, self.shape, lr=cfg.loss.scene_lr, init_std=m.init_std)
        # nerf: density logit and colour logits; composite: occupancy and colour logits; linear: occupancy only
        self.field = _mlp(m.channels, m.hidden, 1 if m.renderer == "linear" else 4)
        if m.renderer == "linear":
            self.to_rgb = nn.Linear(m.channels, 3, bias=False)
        # the background: colour logits, or for the linear renderer a feature (turned into colour like the rest)
        size = m.channels if m.renderer == "linear" else 3
        self.background = nn.Parameter(torch.zeros(size)) if m.background else None
        # the bank's changed scenes are written whenever the weights are (every trainer checkpoint)
        self._register_state_dict_hook(lambda module, *args: module.bank.flush())

    def sample(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Features ``(..., C)`` of a scene grid ``(C, Z, Y, X)`` at points ``(..., 3)`` (memory frame)."""
        g = self.scene_grid.world_to_normalized(points).reshape(1, 1, 1, -1, 3).to(grid.dtype)
        f = F.grid_sample(grid[None], g, mode="bilinear", padding_mode="zeros", align_corners=False)
        return f.reshape(grid.shape[0], -1).T.reshape(*points.shape[:-1], grid.shape[0])

    def occupancy(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Occupancy probability ``(...)`` at points ``(..., 3)``."""
        return self.decode(grid, points)[0]

    def decode(self, grid: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Occupancy probability ``(...)`` and colour ``(..., 3)`` in [0, 1] at points ``(..., 3)``."""
        f = self.sample(grid, points)
        out = self.field(f)
        if self.m.renderer == "nerf":
            occ = 1 - torch.exp(-F.softplus(out[..., 0]) * self.voxel)
        else:
            occ = torch.sigmoid(out[..., 0])
        rgb = torch.sigmoid(self.to_rgb(f) if self.m.renderer == "linear" else out[..., 1:])
        return occ, rgb

    def forward(self, grid: torch.Tensor, origins: torch.Tensor, directions: torch.Tensor,
                jitter: bool = False) -> dict[str, torch.Tensor]:  # fmt: skip
        """Render rays ``(R, 3)`` (unit directions, memory frame) through a scene grid: ``rgb (R, 3)``,
        ``distance (R, 1)`` (expected, the background at ``far``), ``opacity (R, 1)``; a ray's unoccluded part
        shows the learned background colour (``model.background``)."""
        m = self.m
        t = torch.linspace(m.near, m.far, m.samples + 1, device=origins.device).expand(len(origins), -1)
        u = torch.rand_like(t[:, 1:]) if jitter else torch.full_like(t[:, 1:], 0.5)
        mid = t[:, :-1] + u * (t[:, 1:] - t[:, :-1])
        pts = origins[:, None] + directions[:, None] * mid[..., None]
        f = self.sample(grid, pts)  # (R, S, C)
        out = self.field(f)
        if m.renderer == "nerf":
            r = volume_render(F.softplus(out[..., 0]), torch.sigmoid(out[..., 1:]), t)
            rgb, opacity = r["rgb"], r["opacity"]
            distance = (r["weights"] * mid).sum(-1, keepdim=True)  # at the sampled points (jittered in training)
        else:  # occupancy as alpha; the colour (or the feature) and the distance composited with it
            value = torch.sigmoid(out[..., 1:]) if m.renderer == "composite" else f
            alpha = torch.sigmoid(out[..., 0]).T[None, :, :, None]  # (1, S, R, 1): S planes of R x 1 pixels
            vals = torch.cat([value, mid[..., None]], -1).permute(2, 1, 0)[..., None]  # (C + 1, S, R, 1)
            img, acc = alpha_composite(alpha, vals)
            composited, distance, opacity = img[:-1, :, 0].T, img[-1:, :, 0].T, acc[0, :, 0][:, None]
            if m.renderer == "linear":
                if self.background is not None:
                    composited = composited + (1 - opacity) * self.background
                rgb = torch.sigmoid(self.to_rgb(composited))
            else:
                rgb = composited
        distance = distance + (1 - opacity) * m.far
        if self.background is not None and m.renderer != "linear":
            rgb = rgb + (1 - opacity) * torch.sigmoid(self.background)
        return {"rgb": rgb, "distance": distance, "opacity": opacity}
