"""People: an articulated person (Human3.6M skeleton) seen by cameras around it."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...geometry import VoxelGrid, look_at, yaw_matrix
from ..scene import Material, Primitive, Scene, SceneObject
from .common import (
    H36M_PARENTS,
    PEDESTRIAN_HEIGHT,
    Layout,
    _box,
    _color,
    _intrinsics,
    _material,
    _segment,
    _u,
)

# (flexion, abduction) limits in radians for the motion library and its noise
_LIMITS = {"hip": (-0.5, 2.0), "knee": (0.0, 2.4), "shoulder": (-1.0, 3.0), "abduct": (0.0, 2.8), "elbow": (0.0, 2.5)}


def _clip(name: str, v: float) -> float:
    lo, hi = _LIMITS[name]
    return float(np.clip(v, lo, hi))


def _motion(rng: np.random.Generator, kind: str) -> dict[str, float]:
    ph = _u(rng, 0, 2 * math.pi)
    a: dict[str, float] = {
        k: 0.0 for k in ("l_hip", "r_hip", "l_knee", "r_knee", "l_sh", "r_sh", "l_ab", "r_ab", "l_el", "r_el")
    }
    a["l_ab"] = a["r_ab"] = 0.15
    if kind == "walk":
        s = math.sin(ph)
        a.update(
            l_hip=0.45 * s,
            r_hip=-0.45 * s,
            l_knee=0.5 * max(0.0, -s) + 0.1,
            r_knee=0.5 * max(0.0, s) + 0.1,
            l_sh=-0.4 * s,
            r_sh=0.4 * s,
            l_el=0.3,
            r_el=0.3,
        )
    elif kind == "sit":
        a.update(l_hip=1.5, r_hip=1.5, l_knee=1.5, r_knee=1.5, l_sh=0.3, r_sh=0.3, l_el=1.0, r_el=1.0)
    elif kind == "reach":
        a.update(r_sh=_u(rng, 1.4, 2.6), r_el=_u(rng, 0.0, 0.4), l_sh=0.1, l_el=0.2)
    elif kind == "wave":
        a.update(r_ab=_u(rng, 2.2, 2.7), r_el=0.6 + 0.5 * math.sin(ph), l_el=0.2)
    for k in a:
        a[k] += float(rng.normal(0, 0.08))
    lim = {"hip": "hip", "knee": "knee", "sh": "shoulder", "ab": "abduct", "el": "elbow"}
    return {k: _clip(lim[k.split("_")[1]], v) for k, v in a.items()}


def skeleton(rng: np.random.Generator, motion: str) -> np.ndarray:
    """17 joints (Human3.6M order) of a random person doing ``motion``, body frame: y down,
    facing +z, ankles on the ground (y = 0) or sitting (pelvis at seat height). Returns ``(17, 3)``."""
    Ht = float(np.clip(rng.normal(*PEDESTRIAN_HEIGHT), 1.5, 1.95))
    k = Ht / 1.7
    thigh, shin = _u(rng, 0.40, 0.46) * k, _u(rng, 0.39, 0.45) * k
    hip_w, sh_w = _u(rng, 0.11, 0.14) * k, _u(rng, 0.16, 0.20) * k
    spine, thorax, neck, head = 0.22 * k, 0.22 * k, 0.10 * k, 0.14 * k
    upper, fore = _u(rng, 0.26, 0.31) * k, _u(rng, 0.24, 0.28) * k
    a = _motion(rng, motion)
    down = np.array([0.0, 1.0, 0.0])

    def flex(theta):  # direction of a limb hanging down and swung forward by theta
        return np.array([0.0, math.cos(theta), math.sin(theta)])

    J = np.zeros((17, 3))
    J[0] = [0, -(thigh + shin + 0.06), 0]
    for side, hip, knee, ankle, sgn in (("r", 1, 2, 3, -1), ("l", 4, 5, 6, 1)):
        J[hip] = J[0] + [sgn * hip_w, 0.02, 0]
        J[knee] = J[hip] + thigh * flex(a[f"{side}_hip"])
        J[ankle] = J[knee] + shin * flex(a[f"{side}_hip"] - a[f"{side}_knee"])
    J[7] = J[0] - spine * down
    J[8] = J[7] - thorax * down
    J[9] = J[8] - neck * down
    J[10] = J[9] - head * down
    for side, sh, el, wr, sgn in (("l", 11, 12, 13, 1), ("r", 14, 15, 16, -1)):
        J[sh] = J[8] + [sgn * sh_w, 0.03, 0]
        f, ab = a[f"{side}_sh"], a[f"{side}_ab"]
        d1 = np.array([sgn * math.sin(ab) * math.cos(f), math.cos(ab) * math.cos(f), math.sin(f)])
        d1 /= np.linalg.norm(d1)
        J[el] = J[sh] + upper * d1
        # the elbow bends the forearm forward/up relative to the upper arm
        axis = np.cross(d1, [1.0, 0, 0]) if abs(d1[0]) < 0.9 else np.cross(d1, [0, 0, 1.0])
        axis /= np.linalg.norm(axis)
        th = a[f"{side}_el"]
        d2 = d1 * math.cos(th) + np.cross(axis, d1) * math.sin(th) + axis * (axis @ d1) * (1 - math.cos(th))
        J[wr] = J[el] + fore * d2
    if motion == "sit":
        J[:, 1] -= J[0, 1] + 0.45  # pelvis at seat height 0.45 m
    else:
        J[:, 1] -= J[[3, 6], 1].max() + 0.04  # lowest ankle 4 cm above the ground
    return J


def _person_parts(rng: np.random.Generator, J: np.ndarray, motion: str) -> list[Primitive]:
    skin = Material(_color(rng, (0.8, 0.6, 0.5), 0.1))
    cloth = _material(rng, None, ("none", "stripes", "noise"), (0.04, 0.1))
    trousers = _material(rng, (0.2, 0.2, 0.4), ("none", "noise"), (0.05, 0.1))
    parts = []
    for j, p in enumerate(H36M_PARENTS):
        if p < 0 or j == 10:
            continue
        r = 0.07 if j in (1, 2, 4, 5, 7, 8) else 0.05
        mat = trousers if j in (1, 2, 3, 4, 5, 6) else (skin if j in (13, 16, 9) else cloth)
        parts.append(_segment(J[p], J[j], r, mat))
    parts.append(Primitive("ellipsoid", (0.19, 0.23, 0.2), tuple((J[9] + J[10]) / 2 + [0, -0.03, 0]), material=skin))
    if motion == "sit":
        parts.append(_box((0.45, 0.45, 0.45), (0, -0.45 / 2 + 0.0, J[0, 2] - 0.05), Material((0.4, 0.25, 0.15))))
    return parts


def people(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """One articulated person (Human3.6M skeleton) seen from ``views`` cameras 3.5-6.5 m away."""
    motion = str(rng.choice(["walk", "sit", "reach", "wave"]))
    J = skeleton(rng, motion)
    yaw = _u(rng, -math.pi, math.pi)
    person = SceneObject(
        "person", "person", _person_parts(rng, J, motion), (0.0, 0.0, 0.0), yaw, track_id=1, has_box=True
    )
    floor = SceneObject(
        "floor",
        "floor",
        [
            Primitive(
                "plane", (0.0, 0.0, 0.0), material=_material(rng, (0.5, 0.5, 0.5), ("checker", "noise"), (0.5, 1.0))
            )
        ],
    )
    scene = Scene([floor, person], light_dir=(_u(rng, -0.5, 0.5), -1.0, _u(rng, -0.5, 0.5)), ambient=0.4, kind="people")
    R = yaw_matrix(torch.tensor(yaw, dtype=torch.float64))
    joints = torch.tensor(J, dtype=torch.float64) @ R.T
    eyes, targets = [], []
    for _ in range(views):
        az, el, dist = _u(rng, -math.pi, math.pi), _u(rng, -25, 5) * math.pi / 180, _u(rng, 3.5, 6.5)
        target = joints[0].numpy() + rng.normal(0, 0.1, 3)
        # elevation -25..5 degrees: negative looks down at the person (camera above the pelvis)
        eye = target + dist * np.array([math.cos(-el) * math.sin(az), -math.sin(-el), math.cos(-el) * math.cos(az)])
        eyes.append(eye)
        targets.append(target)
    T = look_at(torch.tensor(np.array(eyes), dtype=torch.float64), torch.tensor(np.array(targets), dtype=torch.float64))
    K = _intrinsics(H, W, 1.2).expand(views, 3, 3).clone()
    grid = VoxelGrid((-1.2, -2.1, -1.2), (1.2, 0.1, 1.2), (32, 28, 32))
    scene.extra["motion"] = motion
    return Layout(scene, K, T, [0.0] * views, grid, {"joints_world": joints})
