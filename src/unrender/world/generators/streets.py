"""Streets: a straight street with parked and moving traffic, driven by an ego camera."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...geometry import VoxelGrid, make_rigid
from ...geometry.rotations import axis_angle_to_matrix
from ..scene import Material, Primitive, Scene, SceneObject
from .common import (
    CAR_HEIGHT,
    EGO_HEIGHT,
    PARKING_STRIP,
    PEDESTRIAN_HEIGHT,
    STREET_FX_OVER_W,
    Layout,
    _box,
    _color,
    _intrinsics,
    _material,
    _u,
)


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


def street_scene(rng: np.random.Generator, kind: str = "streets") -> tuple[Scene, float]:
    """A straight street along +z with its traffic; returns the scene and the width of one driving lane."""
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
    scene = Scene(objs, light_dir=(_u(rng, -0.6, 0.6), -1.0, _u(rng, -0.6, 0.2)), ambient=0.4, kind=kind)
    return scene, lane_w


def ego_path(rng: np.random.Generator, frames: int, lane_w: float) -> torch.Tensor:
    """``cam_from_world (frames, 4, 4)`` of an ego camera driving the right lane of :func:`street_scene`."""
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
    for _ in range(frames):
        angles = 0.8 * angles + np.array([_u(rng, -0.004, 0.004), _u(rng, -0.006, 0.006), _u(rng, -0.003, 0.003)])
        drift = 0.9 * drift + _u(rng, -0.004, 0.004)
        # pitch (x), yaw (y), roll (z) of the forward-looking camera
        R_world_from_cam = axis_angle_to_matrix(torch.tensor(angles, dtype=torch.float64))
        centre = torch.tensor([x0, -EGO_HEIGHT, z], dtype=torch.float64)
        z += cruise + drift  # the next frame's step forward
        world_from_cam = make_rigid(R_world_from_cam, centre)
        Rt = world_from_cam[:3, :3].T
        Ts.append(make_rigid(Rt, -Rt @ centre))
    return torch.stack(Ts)


def road_plane_in_cameras(cam_from_world: torch.Tensor) -> torch.Tensor:
    """The road plane ``n . p + d = 0`` (world: ``n = (0, -1, 0)``, ``d = 0``) in each camera frame, ``(N, 4)``."""
    n_w = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    n_c = cam_from_world[:, :3, :3] @ n_w
    d_c = -(n_c * cam_from_world[:, :3, 3]).sum(-1)
    return torch.cat([n_c, d_c[:, None]], -1)


def streets(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """A straight street driven by an ego camera at 1.65 m, ~1 m forward per frame (a video of ``views`` frames)."""
    scene, lane_w = street_scene(rng)
    T = ego_path(rng, views, lane_w)
    K = _intrinsics(H, W, STREET_FX_OVER_W).expand(views, 3, 3).clone()
    extra = {"camera_height": torch.full((views,), EGO_HEIGHT, dtype=torch.float64)}
    extra["road_plane_cam"] = road_plane_in_cameras(T)
    grid = VoxelGrid((-16.0, -4.0, 0.0), (16.0, 0.2, 48.0), (64, 16, 96))
    return Layout(scene, K, T, [float(f) for f in range(views)], grid, extra)
