"""Traffic: a street with moving and parked traffic seen over time by a rig of cameras on the ego car -- a
multi-view, multi-time capture for mapping scenes that move (background subtraction, 3D flow, tracking)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch

from ...geometry import VoxelGrid, box_iou_bev, make_rigid, yaw_matrix
from ..scene import SceneObject
from .common import EGO_HEIGHT, STREET_FX_OVER_W, Layout, _intrinsics
from .streets import ego_path, road_plane_in_cameras, street_scene

RIG_YAWS = (0.0, -1.05, 1.05)
"""Yaw of each rig camera about the vertical, relative to the ego's forward camera (front, left, right:
60 degrees to either side; each sees 81 degrees across at the street camera's focal length)."""
ANCHOR_GRID = VoxelGrid((-16.0, -4.2, -12.0), (16.0, 0.3, 20.0), (64, 9, 64))
"""The voxel grid in the anchor frame (:func:`anchor_from_world`): 32 m across, 12 m behind to 20 m ahead,
0.5 m voxels, from 4.2 m above the road to 0.3 m below it: the road (y = 0) runs through the bottom layer
of voxels, whose centres lie 5 cm below it (inside the road, which is occupied below its surface). With the
road on a face between two layers, its depth points fell into one or the other as the ego moved, and the
road flickered in and out of the occupancy from frame to frame."""


def anchor_from_world(cam_from_world: torch.Tensor) -> torch.Tensor:
    """The anchor frame of a traffic sequence: the world (gravity-aligned, y down) moved so that its origin is
    the road point below the given camera (the anchor frame's forward camera). ``(4, 4)`` float64."""
    centre = -cam_from_world[:3, :3].T.double() @ cam_from_world[:3, 3].double()
    out = torch.eye(4, dtype=torch.float64)
    out[0, 3], out[2, 3] = -centre[0], -centre[2]
    return out


def _through_the_grid(rng: np.random.Generator, objs: list[SceneObject], anchor_z: float, anchor: int,
                      frames: int) -> list[SceneObject]:  # fmt: skip
    """Every moving object of a street moved along its path so that it is in the grid around the anchor frame
    (``anchor_z``: the anchor's ego position along the street) when the anchor frame is taken; an object whose
    box would overlap another's at any frame is dropped (the street's parked cars are drawn independently and
    sometimes overlap; a mover is checked against everything kept before it).

    The street's own traffic starts 6-70 m ahead at frame 0 and mostly never enters the 32 m grid: over 8
    sequences, 37 of the 537 moving-object frames in the grid were cars, the rest pedestrians and cyclists
    (issue 30). Cars in the ego's lane (faster than the ego, so the camera never reaches them) are placed
    12-18 m ahead at the anchor frame, everything else 8 m behind to 16 m ahead.
    """
    movers = [i for i, o in enumerate(objs) if o.has_box and o.moves]
    kept: dict[int, SceneObject] = {}
    boxes: list[torch.Tensor] = []  # (T, 7) of each kept boxed object
    for i in [i for i in range(len(objs)) if i not in movers] + movers:  # the parked and standing first
        o = objs[i]
        if i in movers:
            ego_lane_car = o.semantic in ("car", "van") and o.velocity[2] > 0
            ahead = float(rng.uniform(12.0, 18.0) if ego_lane_car else rng.uniform(-8.0, 16.0))
            o = _speed_change(rng, o, frames, brakes=not ego_lane_car)
            z = anchor_z + ahead - o.velocity[2] * anchor - o.acceleration[2] * anchor**2 / 2
            o = dataclasses.replace(o, position=(o.position[0], o.position[1], z))
        if o.has_box:
            b = torch.stack([o.box_at(float(t)) for t in range(frames)])
            if any(bool((box_iou_bev(b[:, None], other[:, None]) > 0).any()) for other in boxes):
                continue
            boxes.append(b)
        kept[i] = o
    return [kept[i] for i in sorted(kept)]  # the street's order (its instance ids)


SPEED_CHANGE = 0.5
"""Largest change of a mover's speed over a sequence, as a fraction of its speed (a constant acceleration along
its velocity): with none, a box extrapolated at its first two frames' velocity was exact in every frame, and
tracking had nothing to beat (issue 30)."""


def _speed_change(rng: np.random.Generator, o: SceneObject, frames: int, *, brakes: bool) -> SceneObject:
    """``o`` speeding up (or, with ``brakes``, possibly slowing down) by up to :data:`SPEED_CHANGE` of its
    speed over ``frames`` frames; it never stops or reverses. Cars in the ego's lane only speed up: the ego
    camera must never reach them."""
    u = float(rng.uniform(-SPEED_CHANGE if brakes else 0.0, SPEED_CHANGE))
    return dataclasses.replace(o, acceleration=tuple(u * v / frames for v in o.velocity))


def traffic(
    rng: np.random.Generator, *, views: int, H: int, W: int, variant: Literal["mixed", "one", "empty"] = "mixed"
) -> Layout:
    """``views`` frames of a street (:func:`street_scene`'s traffic) seen by the three cameras of
    :data:`RIG_YAWS` on an ego car driving it (:func:`ego_path`): ``3 * views`` views, frame-major (view
    ``i`` is camera ``i % 3`` at frame ``i // 3``).

    ``variant``: ``mixed`` (the street's own parked and moving traffic); ``one`` (exactly one object moves,
    the first that did, or the first car set driving in the oncoming lane when none did); ``empty``
    (no cars, pedestrians or cyclists: the clean background).

    The grid is :data:`ANCHOR_GRID` around the anchor frame's ego position (frame ``views // 2``),
    expressed in the world frame; ``extra["anchor"]`` is the anchor frame.
    """
    scene, lane_w = street_scene(rng, kind="traffic")
    ego = ego_path(rng, views, lane_w)  # the forward camera's cam_from_world per frame
    anchor = views // 2
    anchor_frame = anchor_from_world(ego[anchor])  # its origin: the road below the anchor's camera
    objs = list(scene.objects)
    if variant == "empty":
        objs = [o for o in objs if not o.has_box]
    elif variant == "one":
        movers = [i for i, o in enumerate(objs) if o.has_box and o.moves]
        if movers:
            keep = movers[0]
        else:
            keep = next(i for i, o in enumerate(objs) if o.semantic in ("car", "van"))
            o = objs[keep]
            objs[keep] = dataclasses.replace(o, position=(-lane_w / 2, 0.0, o.position[2]), yaw=math.pi / 2,
                                             velocity=(0.0, 0.0, -0.8))  # fmt: skip
        objs = [
            o if i == keep or not o.has_box else dataclasses.replace(o, velocity=(0.0, 0.0, 0.0), yaw_rate=0.0)
            for i, o in enumerate(objs)
        ]
        # it passes through the grid: 4-14 m ahead of the ego at the anchor frame
        o = _speed_change(rng, objs[keep], views, brakes=True)
        z = float(-anchor_frame[2, 3]) + float(rng.uniform(4.0, 14.0)) - o.velocity[2] * anchor
        z -= o.acceleration[2] * anchor**2 / 2
        objs[keep] = dataclasses.replace(o, position=(o.position[0], o.position[1], z))
    elif variant == "mixed":
        objs = _through_the_grid(rng, objs, float(-anchor_frame[2, 3]), anchor, views)
    else:
        raise ValueError(f"variant: expected 'mixed', 'one' or 'empty', got {variant!r}")
    scene = dataclasses.replace(scene, objects=objs, kind="traffic" if variant == "mixed" else f"traffic-{variant}")
    zero = torch.zeros(3, dtype=torch.float64)
    rig = torch.stack([make_rigid(yaw_matrix(torch.tensor(y, dtype=torch.float64)).T, zero) for y in RIG_YAWS])
    # rig[k] = cam_k_from_front
    T = (rig[None] @ ego[:, None]).reshape(-1, 4, 4)
    N = len(T)
    K = _intrinsics(H, W, STREET_FX_OVER_W).expand(N, 3, 3).clone()
    times = [float(f) for f in range(views) for _ in RIG_YAWS]
    shift = -anchor_frame[:3, 3]  # the anchor frame's origin in the world
    g = ANCHOR_GRID
    lo, hi = (tuple(float(a + b) for a, b in zip(bound, shift, strict=True)) for bound in (g.bounds_min, g.bounds_max))
    grid = VoxelGrid(lo, hi, g.resolution)  # ANCHOR_GRID, in the world frame
    extra = {
        "camera_height": torch.full((N,), EGO_HEIGHT, dtype=torch.float64),
        "road_plane_cam": road_plane_in_cameras(T),
        "anchor": torch.tensor(anchor),
    }
    return Layout(scene, K, T, times, grid, extra)


def traffic_one(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """:func:`traffic` with exactly one moving object."""
    return traffic(rng, views=views, H=H, W=W, variant="one")


def traffic_empty(rng: np.random.Generator, *, views: int, H: int, W: int) -> Layout:
    """:func:`traffic` with no objects (the clean background)."""
    return traffic(rng, views=views, H=H, W=W, variant="empty")
