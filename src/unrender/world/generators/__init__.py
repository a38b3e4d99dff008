"""Procedural scene generators: rooms, streets, objects, people.

Each generator takes a ``numpy.random.Generator`` and returns a :class:`Layout`:
the scene (or, for articulated people, the scene is static per sample), the
cameras and the frame time of every view, and generator-specific ground truth.
World: y down, ground at ``y = 0``, metres.
"""

from __future__ import annotations

from .common import (
    CAR_HEIGHT,
    EGO_HEIGHT,
    H36M_JOINTS,
    H36M_PARENTS,
    PARKING_STRIP,
    PEDESTRIAN_HEIGHT,
    STREET_FX_OVER_W,
    Layout,
)
from .objects import objects
from .people import people, skeleton
from .rooms import rooms
from .streets import streets
from .traffic import RIG_YAWS, traffic, traffic_empty, traffic_one

__all__ = [
    "Layout", "GENERATORS", "GENERATOR_VERSIONS", "H36M_JOINTS", "H36M_PARENTS", "CAR_HEIGHT", "PEDESTRIAN_HEIGHT",
    "EGO_HEIGHT", "PARKING_STRIP", "STREET_FX_OVER_W", "rooms", "streets", "objects", "people", "skeleton", "traffic",
    "IMAGES_PER_VIEW",
]  # fmt: skip

GENERATORS = {
    "rooms": rooms,
    "streets": streets,
    "objects": objects,
    "people": people,
    "traffic": traffic,
    "traffic-one": traffic_one,
    "traffic-empty": traffic_empty,
}
IMAGES_PER_VIEW = {"traffic": len(RIG_YAWS), "traffic-one": len(RIG_YAWS), "traffic-empty": len(RIG_YAWS)}
"""Images a sample has per unit of ``views`` (1 where a kind is missing: one camera per view or frame)."""
GENERATOR_VERSIONS = {
    "rooms": 1,
    "streets": 7,
    "objects": 1,
    "people": 1,
    "traffic": 3,
    "traffic-one": 2,
    "traffic-empty": 1,
}
"""Bumped when a kind's scenes change; part of a dataset's folder name and index, so a cached
dataset of an older generator is never read as the current one. streets 2: the ego camera's
steps accumulate (version 1 placed frame f at f * U(0.9, 1.1) m, so late frames jumped by up to
+-4 m and even went backwards). streets 3: the ego camera drove in the left lane, through parked
cars and into oncoming ones (17 % of frames had a surface within 1 m of the camera); now a parking
strip along each kerb, the ego in the right lane, cars ahead in it no slower than the ego.
streets 4: car and van bodies carry value noise instead of one flat colour. streets 5: the camera's
pitch, yaw and roll wander smoothly instead of jumping independently every frame. streets 6: the
ego speed is a cruise speed per video (0.85-1.05 m per frame) drifting slowly, instead of a step
drawn independently every frame. streets 7: brighter, finer car paint noise; reflecting glass. traffic 3,
traffic-one 2: movers speed up or brake (up to half their speed over a sequence) instead of keeping one
velocity."""
