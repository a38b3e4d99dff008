"""Objects: one object on a turntable of cameras."""

from __future__ import annotations

import numpy as np
import torch

from ...geometry import VoxelGrid, look_at
from ..scene import Primitive, Scene, SceneObject
from .common import (
    Layout,
    _color,
    _intrinsics,
    _material,
)


def objects(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """One random compound object at the origin, cameras on a sphere around it, a plain background."""
    n = int(rng.integers(2, 6))
    parts = []
    base = _color(rng)
    for _ in range(n):
        kind = str(rng.choice(["box", "ellipsoid", "cylinder", "capsule"]))
        size = rng.uniform(0.25, 0.8, 3)
        if kind in ("cylinder", "capsule"):
            size[2] = size[0]
            size[1] = max(size[1], size[0] * 1.05)
        parts.append(
            Primitive(
                kind,
                tuple(size),
                tuple(rng.uniform(-0.3, 0.3, 3)),
                tuple(rng.normal(0, 0.8, 3)),
                _material(rng, base, scale=(0.08, 0.25)),
            )
        )
    obj = SceneObject("object", "object", parts, track_id=1, has_box=True)
    centre, size = obj.local_box()
    scale = 1.0 / max(float(size.max()), 1e-6)
    obj.parts = [
        Primitive(
            p.kind,
            tuple(float(v) * scale for v in p.size),
            tuple((np.array(p.position) - centre.numpy()) * scale),
            p.rotation,
            p.material,
        )
        for p in parts
    ]
    bg = tuple(float(v) for v in rng.uniform(0.85, 1.0, 3))
    d = rng.normal(size=3)
    scene = Scene(
        [obj], light_dir=tuple(float(v) for v in d / np.linalg.norm(d)), ambient=0.4, background=bg, kind="objects"
    )
    dirs = rng.normal(size=(views, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radius = rng.uniform(2.2, 2.8, (views, 1))
    eyes = torch.tensor(dirs * radius, dtype=torch.float64)
    T = look_at(eyes, torch.zeros(3, dtype=torch.float64))
    K = _intrinsics(H, W, 1.1).expand(views, 3, 3).clone()
    grid = VoxelGrid((-0.6, -0.6, -0.6), (0.6, 0.6, 0.6), (32, 32, 32))
    return Layout(scene, K, T, [0.0] * views, grid)
