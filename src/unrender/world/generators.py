"""Procedural scene generators: rooms, streets, objects, people.

Each generator takes a ``numpy.random.Generator`` and returns a :class:`Layout`:
the scene (or, for articulated people, the scene is static per sample), the
cameras and the frame time of every view, and generator-specific ground truth.
World: y down, ground at ``y = 0``, metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..geometry import VoxelGrid, look_at, make_intrinsics, make_rigid, yaw_matrix
from ..geometry.rotations import axis_angle_to_matrix
from .scene import Material, Primitive, Scene, SceneObject

__all__ = [
    "Layout", "GENERATORS", "GENERATOR_VERSIONS", "H36M_JOINTS", "H36M_PARENTS", "CAR_HEIGHT", "PEDESTRIAN_HEIGHT",
]  # fmt: skip

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


# ------------------------------------------------------------------------------------------ rooms
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


# ---------------------------------------------------------------------------------------- streets
def _car(rng, van: bool = False):
    # A body of one flat colour gives photometric depth learning nothing inside its outline (any depth
    # explains a uniform patch); real paint has reflections, trim and dirt: value noise of 0.25-0.5 m on
    # paint no darker than 0.3 (darker bodies left the noise a few grey levels deep), and glass that
    # reflects. The draws are those of streets 4-6 (one _material call), so layouts stay the same.
    drawn = _material(rng, None, ("noise",), (0.35, 0.7))
    paint = tuple(0.3 + (c - 0.15) * 0.65 / 0.8 for c in drawn.color)  # U(0.15, 0.95) -> U(0.3, 0.95)
    mat = Material(paint, "noise", tuple(0.4 * c for c in paint), drawn.scale * 0.7, drawn.seed)
    dark = Material((0.05, 0.05, 0.05))
    glass = Material((0.45, 0.5, 0.55), "noise", (0.06, 0.07, 0.09), 0.3, mat.seed + 1)
    if van:
        L, Wd, Ht = _u(rng, 4.8, 5.6), _u(rng, 1.9, 2.1), float(np.clip(rng.normal(2.1, 0.1), 1.85, 2.4))
    else:
        L, Wd, Ht = _u(rng, 3.8, 4.7), _u(rng, 1.65, 1.9), float(np.clip(rng.normal(*CAR_HEIGHT), 1.3, 1.7))
    r = 0.32
    clear = 0.18
    body_h = (Ht - clear) * (0.9 if van else 0.5)
    parts = [_box((L, body_h, Wd), (0, -clear - body_h / 2, 0), mat)]
    cab_h = Ht - clear - body_h
    if cab_h > 0.02:
        cab_l = L * (0.85 if van else 0.55)
        parts.append(
            _box((cab_l, cab_h, Wd * 0.92), (-L * 0.05 if not van else 0.0, -clear - body_h - cab_h / 2, 0), glass)
        )
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(
                Primitive(
                    "cylinder",
                    (2 * r, 0.22, 2 * r),
                    (sx * (L / 2 - 0.75), -r, sz * (Wd / 2 - 0.05)),
                    (math.pi / 2, 0.0, 0.0),
                    dark,
                )
            )
    return parts


def _pedestrian(rng, height: float | None = None):
    Ht = height if height is not None else float(np.clip(rng.normal(*PEDESTRIAN_HEIGHT), 1.45, 1.95))
    skin = Material(_color(rng, (0.8, 0.6, 0.5), 0.1))
    cloth = _material(rng, None, ("none", "stripes"), (0.05, 0.1))
    legs = _material(rng, (0.2, 0.2, 0.4), ("none",))
    head_r = 0.11 * Ht / 1.7
    leg_h = 0.47 * Ht
    torso_top = Ht - 2 * head_r - 0.03
    parts = [
        Primitive("capsule", (0.16, leg_h, 0.16), (0.0, -leg_h / 2, 0.09), material=legs),
        Primitive("capsule", (0.16, leg_h, 0.16), (0.0, -leg_h / 2, -0.09), material=legs),
        Primitive(
            "capsule", (0.34, torso_top - leg_h + 0.05, 0.34), (0.0, -(leg_h + torso_top) / 2, 0.0), material=cloth
        ),
        Primitive("ellipsoid", (2 * head_r, 2 * head_r, 2 * head_r), (0.0, -(Ht - head_r), 0.0), material=skin),
    ]
    return parts, Ht


def streets(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """A straight street driven by an ego camera at 1.65 m, ~1 m forward per frame (a video of ``views`` frames)."""
    # a parking strip along each kerb and two driving lanes between: the ego camera drives in the
    # right lane (+x, traffic towards +z), clear of parked cars and of oncoming traffic
    road_w, walk_w = _u(rng, 9.5, 11.0), _u(rng, 2.0, 3.5)
    lane_w = (road_w - 2 * PARKING_STRIP) / 2
    kerb = 0.15
    length = 200.0
    road = _material(rng, (0.3, 0.3, 0.32), ("noise",), (0.2, 0.5), jitter=0.04)
    objs = [
        SceneObject(
            "road", "road", [Primitive("plane", (road_w, 0.0, length), (0, 0, length / 2 - 20), material=road)]
        ),
        SceneObject(
            "ground",
            "sidewalk",
            [
                Primitive(
                    "plane",
                    (0.0, 0.0, 0.0),
                    (0, 0.0005, 0),
                    material=_material(rng, (0.45, 0.5, 0.35), ("noise",), (0.5, 1.0), jitter=0.05),
                )
            ],
        ),
        # lane mark: a 0.15 m strip along the road, dashed by a stripes texture (the strip is turned
        # 90 degrees about y so that its local x, across which stripes alternate, runs along the road)
        SceneObject(
            "lane",
            "lane_mark",
            [
                Primitive(
                    "plane",
                    (length, 0.0, 0.15),
                    (0, -0.002, length / 2 - 20),
                    (0.0, math.pi / 2, 0.0),
                    Material((0.95, 0.95, 0.9), "stripes", (0.3, 0.3, 0.32), 3.0),
                )
            ],
        ),
    ]
    walk = _material(rng, (0.6, 0.6, 0.58), ("checker", "noise"), (0.4, 0.8), jitter=0.05)
    for side in (-1, 1):
        objs.append(
            SceneObject(
                f"kerb{side}",
                "sidewalk",
                [_box((walk_w, kerb, length), (side * (road_w / 2 + walk_w / 2), -kerb / 2, length / 2 - 20), walk)],
            )
        )
        # facades: a run of buildings along each side
        z = -20.0
        bi = 0
        while z < length - 20:
            depth = _u(rng, 8, 20)
            bh = _u(rng, 6, 18)
            mat = _material(rng, None, ("checker", "stripes", "noise"), (0.8, 2.0))
            x = side * (road_w / 2 + walk_w + _u(rng, 0.5, 3.0) + 5.0)
            objs.append(
                SceneObject(
                    f"building{side}_{bi}", "building", [_box((10.0, bh, depth), (x, -bh / 2, z + depth / 2), mat)]
                )
            )
            z += depth + _u(rng, 0.0, 4.0)
            bi += 1
    objs.append(
        SceneObject(
            "backdrop",
            "backdrop",
            [
                _box(
                    (400.0, 60.0, 1.0),
                    (0, -30.0, length - 10),
                    Material((0.55, 0.62, 0.7), "noise", (0.45, 0.5, 0.6), 8.0),
                )
            ],
        )
    )
    track = 1
    # cars and vans, parked at the kerb or driving in either lane
    for ci in range(int(rng.integers(4, 9))):
        van = rng.random() < 0.2
        lane = float(rng.choice([-1, 1]))
        moving = rng.random() < 0.4
        x = lane * (lane_w / 2 + _u(rng, -0.2, 0.2) if moving else road_w / 2 - PARKING_STRIP / 2 + _u(rng, -0.1, 0.1))
        z = _u(rng, 6, 70)
        # in the ego lane a car drives at least as fast as the ego camera, so the camera never reaches it
        speed = _u(rng, 1.1, 1.6) if lane > 0 else _u(rng, 0.3, 1.2)
        v = (0.0, 0.0, speed * lane if moving else 0.0)
        yaw = (-math.pi / 2 if lane > 0 else math.pi / 2) + _u(rng, -0.05, 0.05)
        objs.append(
            SceneObject(
                f"{'van' if van else 'car'}{ci}",
                "van" if van else "car",
                _car(rng, van),
                (x, 0.0, z),
                yaw,
                v,
                track_id=track,
                has_box=True,
            )
        )
        track += 1
    for pi_ in range(int(rng.integers(3, 8))):
        side = float(rng.choice([-1, 1]))
        parts, _ = _pedestrian(rng)
        moving = rng.random() < 0.5
        x = side * (road_w / 2 + _u(rng, 0.4, walk_w - 0.4))
        z = _u(rng, 4, 40)
        v = (0.0, 0.0, _u(rng, -0.15, 0.15) if moving else 0.0)
        objs.append(
            SceneObject(
                f"ped{pi_}",
                "pedestrian",
                parts,
                (x, -kerb, z),
                _u(rng, -math.pi, math.pi),
                v,
                track_id=track,
                has_box=True,
            )
        )
        track += 1
    for ci in range(int(rng.integers(0, 3))):
        parts, Ht = _pedestrian(rng)
        bike = [_box((1.6, 0.06, 0.06), (0, -0.6, 0), Material((0.7, 0.1, 0.1)))]
        for sx in (-1, 1):
            bike.append(
                Primitive(
                    "cylinder",
                    (0.66, 0.04, 0.66),
                    (sx * 0.55, -0.33, 0),
                    (math.pi / 2, 0.0, 0.0),
                    Material((0.05, 0.05, 0.05)),
                )
            )
        rider = [
            Primitive(p.kind, p.size, (p.position[0], p.position[1] - 0.35, p.position[2]), p.rotation, p.material)
            for p in parts[2:]
        ]
        lane = float(rng.choice([-1, 1]))
        objs.append(
            SceneObject(
                f"cyclist{ci}",
                "cyclist",
                bike + rider,
                (lane * (road_w / 2 - 0.6), 0.0, _u(rng, 8, 50)),
                (-math.pi / 2 if lane > 0 else math.pi / 2),
                (0.0, 0.0, _u(rng, 0.2, 0.5) * lane),
                track_id=track,
                has_box=True,
            )
        )
        track += 1
    scene = Scene(objs, light_dir=(_u(rng, -0.6, 0.6), -1.0, _u(rng, -0.6, 0.2)), ambient=0.4, kind="streets")
    # ego camera: 1.65 m above the road, forward ~1 m per frame; pitch, yaw and roll wander smoothly
    # (each frame keeps 0.8 of the last angle and adds a small step: a few mrad between frames, as a
    # car's heading and suspension move; streets 1-4 drew them independently per frame, a camera
    # shaking by up to 1.7 degrees between frames)
    # The speed is a cruise speed per video that drifts slowly (under 0.01 m between consecutive
    # steps, i.e. < 1 m/s^2 at 10 Hz); streets 1-5 drew every step at U(0.9, 1.1) m independently,
    # a speed jumping by up to 2 m/s between frames. The ego is never faster than 1.1 m per frame,
    # the slowest car ahead of it in its lane.
    Ts = []
    x0 = _u(rng, lane_w / 2 - 0.3, lane_w / 2 + 0.3)
    z = 0.0
    cruise, drift = _u(rng, 0.85, 1.05), 0.0
    angles = np.zeros(3)
    for _ in range(views):
        angles = 0.8 * angles + np.array([_u(rng, -0.004, 0.004), _u(rng, -0.006, 0.006), _u(rng, -0.003, 0.003)])
        drift = 0.9 * drift + _u(rng, -0.004, 0.004)
        # pitch (x), yaw (y), roll (z) of the forward-looking camera
        R_world_from_cam = axis_angle_to_matrix(torch.tensor(angles, dtype=torch.float64))
        centre = torch.tensor([x0, -EGO_HEIGHT, z], dtype=torch.float64)
        z += cruise + drift  # the next frame's step forward
        world_from_cam = make_rigid(R_world_from_cam, centre)
        Rt = world_from_cam[:3, :3].T
        Ts.append(make_rigid(Rt, -Rt @ centre))
    T = torch.stack(Ts)
    K = _intrinsics(H, W, STREET_FX_OVER_W).expand(views, 3, 3).clone()
    extra = {"camera_height": torch.full((views,), EGO_HEIGHT, dtype=torch.float64)}
    # the road plane n . p + d = 0 in each camera frame (world: n = (0, -1, 0), d = 0)
    n_w = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    n_c = T[:, :3, :3] @ n_w
    d_c = -(n_c * T[:, :3, 3]).sum(-1)
    extra["road_plane_cam"] = torch.cat([n_c, d_c[:, None]], -1)
    grid = VoxelGrid((-16.0, -4.0, 0.0), (16.0, 0.2, 48.0), (64, 16, 96))
    return Layout(scene, K, T, [float(f) for f in range(views)], grid, extra)


# ---------------------------------------------------------------------------------------- objects
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


# ----------------------------------------------------------------------------------------- people
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


GENERATORS = {"rooms": rooms, "streets": streets, "objects": objects, "people": people}
GENERATOR_VERSIONS = {"rooms": 1, "streets": 7, "objects": 1, "people": 1}
"""Bumped when a kind's scenes change; part of a dataset's folder name and index, so a cached
dataset of an older generator is never read as the current one. streets 2: the ego camera's
steps accumulate (version 1 placed frame f at f * U(0.9, 1.1) m, so late frames jumped by up to
+-4 m and even went backwards). streets 3: the ego camera drove in the left lane, through parked
cars and into oncoming ones (17 % of frames had a surface within 1 m of the camera); now a parking
strip along each kerb, the ego in the right lane, cars ahead in it no slower than the ego.
streets 4: car and van bodies carry value noise instead of one flat colour. streets 5: the camera's
pitch, yaw and roll wander smoothly instead of jumping independently every frame. streets 6: the
ego speed is a cruise speed per video (0.85-1.05 m per frame) drifting slowly, instead of a step
drawn independently every frame. streets 7: brighter, finer car paint noise; reflecting glass."""
