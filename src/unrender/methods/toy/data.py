"""The toy scene (a ground plane and three spheres in unrender's y-down world) and its dataset."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from ...geometry import camera_rays, look_at, make_intrinsics, plucker

# (centre x, y, z, radius); the ground is the plane y = 0 and "up" is -y.
SPHERES = ((0.0, -0.6, 0.0, 0.6), (1.3, -0.35, 0.6, 0.35), (-0.9, -0.45, -0.9, 0.45))


def ray_distance(o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Distance along unit rays ``(..., 3)`` to the first surface; 0 where nothing is hit."""
    inf = torch.full_like(o[..., 0], math.inf)
    dy = d[..., 1]
    t_plane = torch.where(dy > 1e-6, -o[..., 1] / dy.clamp(min=1e-6), inf)
    t = torch.where(t_plane > 0, t_plane, inf)
    for cx, cy, cz, r in SPHERES:
        oc = o - torch.tensor([cx, cy, cz], dtype=o.dtype, device=o.device)
        b = (oc * d).sum(-1)
        disc = b * b - ((oc * oc).sum(-1) - r * r)
        ts = -b - disc.clamp(min=0).sqrt()
        t = torch.where((disc > 0) & (ts > 0) & (ts < t), ts, t)
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def make_camera(g: torch.Generator, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random camera 2.5-4.5 m from the scene centre, 0.8-2 m above the ground, looking at it."""
    ang = float(torch.rand((), generator=g)) * 2 * math.pi
    rad = 2.5 + 2.0 * float(torch.rand((), generator=g))
    height = 0.8 + 1.2 * float(torch.rand((), generator=g))
    eye = torch.tensor([rad * math.cos(ang), -height, rad * math.sin(ang)])
    target = torch.tensor([0.0, -0.4, 0.0]) + 0.3 * torch.randn(3, generator=g)
    f = 0.9 * W
    K = make_intrinsics(f, f, (W - 1) / 2, (H - 1) / 2)
    return K, look_at(eye, target)


def render_view(K: torch.Tensor, cam_from_world: torch.Tensor, H: int, W: int) -> dict[str, torch.Tensor]:
    """Ray features ``(H, W, 9)`` = Plücker (6) + origin (3), distances and z-depth ``(1, H, W)``."""
    o, d = camera_rays(K, cam_from_world, H, W)
    t = ray_distance(o, d)
    forward = cam_from_world[2, :3]
    depth = t * (d @ forward)
    return {"rays": torch.cat([plucker(o, d), o], -1), "distance": t[None], "depth": depth[None]}


class ToyRays(Dataset):
    """Deterministic views of the toy scene: item ``i`` depends only on (seed, split, i)."""

    def __init__(self, num: int, H: int, W: int, *, seed: int, split: str):
        self.num, self.H, self.W = num, H, W
        self.base = seed * 1_000_003 + (0 if split == "train" else 500_009)

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.num:
            raise IndexError(i)
        K, T = make_camera(torch.Generator().manual_seed(self.base + i), self.H, self.W)
        return {**render_view(K, T, self.H, self.W), "K": K, "cam_from_world": T}


def inside_scene(points: torch.Tensor) -> torch.Tensor:
    """Bool ``(...)``: the point ``(..., 3)`` is inside a sphere or under the ground (y >= 0)."""
    inside = points[..., 1] >= 0
    for cx, cy, cz, r in SPHERES:
        c = torch.tensor([cx, cy, cz], dtype=points.dtype, device=points.device)
        inside |= ((points - c) ** 2).sum(-1) <= r * r
    return inside
