"""Rooms: walls, floor and furniture seen by cameras around the room."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...geometry import VoxelGrid, look_at, yaw_matrix
from ..scene import Primitive, Scene, SceneObject
from .common import (
    Layout,
    _box,
    _intrinsics,
    _material,
    _u,
)


def _table(rng, mat):
    L, D, Hh = _u(rng, 1.0, 1.6), _u(rng, 0.6, 0.9), _u(rng, 0.70, 0.78)
    parts = [_box((L, 0.05, D), (0, -Hh + 0.025, 0), mat)]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(
                Primitive(
                    "cylinder",
                    (0.06, Hh - 0.05, 0.06),
                    (sx * (L / 2 - 0.08), -(Hh - 0.05) / 2, sz * (D / 2 - 0.08)),
                    material=mat,
                )
            )
    return parts, (L, D), Hh


def _chair(rng, mat):
    s, seat = _u(rng, 0.40, 0.50), _u(rng, 0.42, 0.48)
    parts = [
        _box((s, 0.05, s), (0, -seat, 0), mat),
        _box((s, _u(rng, 0.4, 0.5), 0.04), (0, -seat - 0.25, -s / 2 + 0.02), mat),
    ]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(_box((0.04, seat, 0.04), (sx * (s / 2 - 0.03), -seat / 2, sz * (s / 2 - 0.03)), mat))
    return parts, (s, s)


def _shelf(rng, mat):
    W_, D, Hh = _u(rng, 0.8, 1.4), _u(rng, 0.3, 0.4), _u(rng, 1.4, 2.0)
    n = int(rng.integers(3, 5))
    parts = [_box((0.03, Hh, D), (sx * (W_ / 2 - 0.015), -Hh / 2, 0), mat) for sx in (-1, 1)]
    levels = [0.05 + i * (Hh - 0.1) / (n - 1) for i in range(n)]
    parts += [_box((W_, 0.03, D), (0, -lv, 0), mat) for lv in levels]
    return parts, (W_, D), levels


def rooms(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """A room with a textured floor, walls, tables with cups, chairs (one under a table), shelves, boxes."""
    RW, RD, wall_h = _u(rng, 4.5, 7.0), _u(rng, 4.5, 7.0), 2.6
    objs: list[SceneObject] = [
        SceneObject(
            "floor",
            "floor",
            [
                Primitive(
                    "plane",
                    (RW, 0.0, RD),
                    material=_material(rng, (0.55, 0.45, 0.35), ("checker", "noise"), (0.3, 0.6)),
                )
            ],
        ),
    ]
    wall_mat = _material(rng, (0.85, 0.85, 0.8), ("none", "noise"), (0.5, 1.0), jitter=0.08)
    t = 0.1
    walls = [
        _box((RW + 2 * t, wall_h, t), (0, -wall_h / 2, RD / 2 + t / 2), wall_mat),
        _box((RW + 2 * t, wall_h, t), (0, -wall_h / 2, -RD / 2 - t / 2), wall_mat),
        _box((t, wall_h, RD), (RW / 2 + t / 2, -wall_h / 2, 0), wall_mat),
        _box((t, wall_h, RD), (-RW / 2 - t / 2, -wall_h / 2, 0), wall_mat),
    ]
    objs.append(SceneObject("walls", "wall", walls))
    taken: list[tuple[float, float, float]] = []  # (x, z, radius) footprints

    def place(radius: float, margin: float = 0.3) -> tuple[float, float] | None:
        for _ in range(50):
            x, z = (
                _u(rng, -RW / 2 + radius + margin, RW / 2 - radius - margin),
                _u(rng, -RD / 2 + radius + margin, RD / 2 - radius - margin),
            )
            if all((x - a) ** 2 + (z - b) ** 2 > (radius + r) ** 2 for a, b, r in taken):
                taken.append((x, z, radius))
                return x, z
        return None

    track = 1

    def add(name, semantic, parts, x, y, z, yaw):
        nonlocal track
        objs.append(SceneObject(name, semantic, parts, position=(x, y, z), yaw=yaw, track_id=track, has_box=True))
        track += 1

    n_tables = int(rng.integers(1, 3))
    for ti in range(n_tables):
        mat = _material(rng, (0.5, 0.3, 0.15), ("none", "stripes", "noise"), (0.05, 0.2))
        parts, (L, D), top = _table(rng, mat)
        spot = place(0.5 * math.hypot(L, D) + (0.35 if ti == 0 else 0.0))
        if spot is None:
            continue
        yaw = _u(rng, -math.pi, math.pi)
        add(f"table{ti}", "table", parts, spot[0], 0.0, spot[1], yaw)
        R = yaw_matrix(torch.tensor(yaw, dtype=torch.float64)).numpy()
        # cups (and sometimes a box) on the table top: "cup on table"
        for ci in range(int(rng.integers(1, 3))):
            lx, lz = _u(rng, -L / 2 + 0.1, L / 2 - 0.1), _u(rng, -D / 2 + 0.1, D / 2 - 0.1)
            p = R @ np.array([lx, 0, lz]) + np.array([spot[0], 0, spot[1]])
            r, h = _u(rng, 0.035, 0.05), _u(rng, 0.08, 0.12)
            cup = [Primitive("cylinder", (2 * r, h, 2 * r), (0, -h / 2, 0), material=_material(rng))]
            add(f"cup{ti}_{ci}", "cup", cup, float(p[0]), -top, float(p[2]), _u(rng, -math.pi, math.pi))
        if rng.random() < 0.5:
            s = _u(rng, 0.1, 0.25)
            p = R @ np.array([_u(rng, -L / 4, L / 4), 0, _u(rng, -D / 4, D / 4)]) + np.array([spot[0], 0, spot[1]])
            add(
                f"tablebox{ti}",
                "box",
                [_box((s, s, s), (0, -s / 2, 0), _material(rng))],
                float(p[0]),
                -top,
                float(p[2]),
                _u(rng, -math.pi, math.pi),
            )
        if ti == 0:  # "chair under desk": tucked under the table's long side
            cparts, _ = _chair(rng, _material(rng, (0.3, 0.3, 0.35)))
            p = R @ np.array([_u(rng, -L / 4, L / 4), 0, D / 2 - 0.05]) + np.array([spot[0], 0, spot[1]])
            add("chair_under_table", "chair", cparts, float(p[0]), 0.0, float(p[2]), yaw + math.pi)
    for ci in range(int(rng.integers(1, 4))):
        cparts, (s, _) = _chair(rng, _material(rng, (0.3, 0.3, 0.35)))
        spot = place(0.4)
        if spot:
            add(f"chair{ci}", "chair", cparts, spot[0], 0.0, spot[1], _u(rng, -math.pi, math.pi))
    for si in range(int(rng.integers(0, 2)) + 1):
        mat = _material(rng, (0.6, 0.5, 0.35), ("none", "noise"), (0.1, 0.3))
        sparts, (SW, SD), levels = _shelf(rng, mat)
        side = int(rng.integers(4))
        # against a wall, facing the room
        if side < 2:
            x, z, yaw = (
                _u(rng, -RW / 2 + SW, RW / 2 - SW),
                (1 if side == 0 else -1) * (RD / 2 - SD / 2 - 0.02),
                0.0 if side == 0 else math.pi,
            )
        else:
            x, z, yaw = (
                (1 if side == 2 else -1) * (RW / 2 - SD / 2 - 0.02),
                _u(rng, -RD / 2 + SW, RD / 2 - SW),
                (math.pi / 2 if side == 2 else -math.pi / 2),
            )
        if not all((x - a) ** 2 + (z - b) ** 2 > (0.5 * SW + r) ** 2 for a, b, r in taken):
            continue
        taken.append((x, z, 0.5 * SW))
        add(f"shelf{si}", "shelf", sparts, x, 0.0, z, yaw)
        # a box on a shelf level
        s = _u(rng, 0.12, 0.25)
        lv = levels[int(rng.integers(1, len(levels)))]
        R = yaw_matrix(torch.tensor(yaw, dtype=torch.float64)).numpy()
        p = R @ np.array([_u(rng, -SW / 3, SW / 3), 0, 0]) + np.array([x, 0, z])
        add(
            f"shelfbox{si}",
            "box",
            [_box((s, s, s), (0, -s / 2, 0), _material(rng))],
            float(p[0]),
            -lv - 0.015,
            float(p[2]),
            yaw,
        )
    for bi in range(int(rng.integers(1, 4))):
        s = _u(rng, 0.25, 0.5)
        spot = place(0.5 * s * 1.5)
        if spot:
            h = _u(rng, 0.2, 0.5)
            add(
                f"box{bi}",
                "box",
                [_box((s, h, s), (0, -h / 2, 0), _material(rng))],
                spot[0],
                0.0,
                spot[1],
                _u(rng, -math.pi, math.pi),
            )
    light = (_u(rng, -0.5, 0.5), -1.0, _u(rng, -0.5, 0.5))
    scene = Scene(objs, light_dir=light, ambient=0.45, kind="rooms")
    # cameras: inside the room, near the walls, looking across it
    ang0 = _u(rng, 0, 2 * math.pi)
    eyes, targets = [], []
    for i in range(views):
        a = ang0 + 2 * math.pi * i / views + _u(rng, -0.3, 0.3)
        eyes.append([0.42 * RW * math.cos(a), -_u(rng, 1.2, 1.9), 0.42 * RD * math.sin(a)])
        targets.append([_u(rng, -0.5, 0.5), -_u(rng, 0.3, 0.8), _u(rng, -0.5, 0.5)])
    T = look_at(torch.tensor(eyes, dtype=torch.float64), torch.tensor(targets, dtype=torch.float64))
    K = _intrinsics(H, W, 0.6).expand(views, 3, 3).clone()
    grid = VoxelGrid((-RW / 2, -wall_h, -RD / 2), (RW / 2, 0.1, RD / 2), (48, 20, 48))
    return Layout(scene, K, T, [0.0] * views, grid)
