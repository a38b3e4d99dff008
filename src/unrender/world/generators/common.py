"""What every generator shares: the :class:`Layout` it returns, material and primitive helpers, and the
constants of the generated world (object and camera heights, the street camera, the Human3.6M skeleton)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...geometry import VoxelGrid, make_intrinsics
from ..scene import Material, Primitive, Scene

CAR_HEIGHT = (1.50, 0.08)  # mean, std in metres
PEDESTRIAN_HEIGHT = (1.70, 0.08)
EGO_HEIGHT = 1.65
STREET_FX_OVER_W = 0.58
"""Focal length of the street camera as a fraction of the image width (KITTI's is ~0.57)."""
PARKING_STRIP = 2.2  # streets: width of the parking strip along each kerb, metres

H36M_JOINTS = (
    "pelvis",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "spine",
    "thorax",
    "neck",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
)
H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


@dataclass
class Layout:
    scene: Scene
    K: torch.Tensor  # (N, 3, 3)
    cam_from_world: torch.Tensor  # (N, 4, 4)
    times: list[float]  # frame time of each view
    grid: VoxelGrid | None = None  # where occupancy is sampled (world frame)
    extra: dict[str, Any] = field(default_factory=dict)  # tensors: joints, camera height, ...


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _color(rng: np.random.Generator, base: tuple[float, float, float] | None = None, jitter: float = 0.15):
    if base is None:
        return tuple(float(v) for v in rng.uniform(0.15, 0.95, 3))
    return tuple(float(np.clip(b + rng.uniform(-jitter, jitter), 0, 1)) for b in base)


def _material(
    rng: np.random.Generator,
    base=None,
    textures=("none", "checker", "stripes", "noise"),
    scale=(0.05, 0.4),
    jitter=0.15,
):
    c = _color(rng, base, jitter)
    return Material(
        color=c,
        texture=str(rng.choice(textures)),
        color2=tuple(float(v) * 0.5 for v in c),
        scale=_u(rng, *scale),
        seed=int(rng.integers(1 << 20)),
    )


def _box(size, pos, mat, rot=(0.0, 0.0, 0.0)) -> Primitive:
    return Primitive("box", tuple(size), tuple(pos), tuple(rot), mat)


def _intrinsics(H: int, W: int, fx_over_w: float) -> torch.Tensor:
    f = fx_over_w * W
    return make_intrinsics(f, f, (W - 1) / 2, (H - 1) / 2, dtype=torch.float64)


def _segment(a: np.ndarray, b: np.ndarray, radius: float, mat: Material) -> Primitive:
    """A capsule from point ``a`` to ``b`` (object frame)."""
    v = b - a
    n = float(np.linalg.norm(v))
    y = np.array([0.0, 1.0, 0.0])
    u = v / max(n, 1e-9)
    axis = np.cross(y, u)
    s = float(np.linalg.norm(axis))
    angle = math.atan2(s, float(y @ u))
    rot = (axis / s * angle) if s > 1e-9 else (np.array([math.pi, 0, 0]) if u[1] < 0 else np.zeros(3))
    return Primitive("capsule", (2 * radius, n + 2 * radius, 2 * radius), tuple((a + b) / 2), tuple(rot), mat)
