"""Scene description: objects made of analytic primitives, with materials, classes and motion.

A :class:`Scene` is plain data (JSON round-trips exactly). World frame:
gravity-aligned with y down, ground at ``y = 0`` unless a generator says
otherwise. An object's pose at frame ``t`` is its pose at frame 0 moved by
``velocity * t + acceleration * t^2 / 2`` (metres per frame, per frame squared) and
turned by ``yaw_rate * t`` (radians per frame) about its own vertical axis; articulated motion (people) is stored as one
scene per frame instead.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from ..geometry import axis_angle_to_matrix, make_rigid, yaw_matrix
from .primitives import KINDS

__all__ = ["CLASSES", "class_id", "Material", "Primitive", "SceneObject", "Scene", "FlatScene", "TEXTURES"]

# One vocabulary for every generator; id 0 is "nothing hit / empty space".
CLASSES = (
    "background", "floor", "wall", "table", "chair", "shelf", "cup", "box",
    "road", "sidewalk", "lane_mark", "building", "backdrop", "car", "van", "pedestrian", "cyclist",
    "object", "person",
)  # fmt: skip
TEXTURES = ("none", "checker", "stripes", "noise")


def _tuples(obj: Any, *names: str) -> None:
    """JSON gives lists: store tuple fields as tuples so round trips compare equal."""
    for n in names:
        setattr(obj, n, tuple(float(v) for v in getattr(obj, n)))


def class_id(name: str) -> int:
    """Index of a class name in :data:`CLASSES`."""
    try:
        return CLASSES.index(name)
    except ValueError:
        raise ValueError(f"unknown class {name!r}; known: {', '.join(CLASSES)}") from None


@dataclass
class Material:
    """Base colour (linear RGB in [0, 1]) and an optional procedural texture mixing in ``color2``."""

    color: tuple[float, float, float] = (0.7, 0.7, 0.7)
    texture: str = "none"
    color2: tuple[float, float, float] = (0.2, 0.2, 0.2)
    scale: float = 0.5
    """Texture period in metres (checker cell, stripe width, noise lattice)."""
    seed: int = 0

    def __post_init__(self) -> None:
        _tuples(self, "color", "color2")
        if self.texture not in TEXTURES:
            raise ValueError(f"Material.texture: expected one of {TEXTURES}, got {self.texture!r}")
        if self.scale <= 0:
            raise ValueError(f"Material.scale must be positive, got {self.scale}")


@dataclass
class Primitive:
    """One analytic shape, placed in its object's frame by ``position`` and axis-angle ``rotation``."""

    kind: str
    size: tuple[float, float, float]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    material: Material = field(default_factory=Material)

    def __post_init__(self) -> None:
        _tuples(self, "size", "position", "rotation")
        if self.kind not in KINDS:
            raise ValueError(f"Primitive.kind: expected one of {KINDS}, got {self.kind!r}")
        if any(s < 0 for s in self.size) or (self.kind != "plane" and min(self.size) <= 0):
            raise ValueError(f"Primitive.size must be positive (plane: >= 0), got {self.size}")


@dataclass
class SceneObject:
    """A rigid object: parts in its frame, pose ``(position, yaw)`` at frame 0, and motion."""

    name: str
    semantic: str
    parts: list[Primitive]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw_rate: float = 0.0
    acceleration: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Change of ``velocity`` per frame (metres per frame squared): traffic that speeds up or brakes."""
    track_id: int = 0
    """Stable id across frames (0: untracked stuff such as walls and road)."""
    has_box: bool = False
    """Whether the object gets a 3D/2D box in the ground truth."""

    def __post_init__(self) -> None:
        _tuples(self, "position", "velocity", "acceleration")
        class_id(self.semantic)

    @property
    def moves(self) -> bool:
        """Whether the object moves (a velocity, an acceleration or a yaw rate)."""
        return any(v != 0 for v in self.velocity + self.acceleration) or self.yaw_rate != 0

    def pose_at(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(position (3,), yaw ())`` at frame ``t`` (float64)."""
        f64 = torch.float64
        pos = (torch.tensor(self.position, dtype=f64) + t * torch.tensor(self.velocity, dtype=f64)
               + t * t / 2 * torch.tensor(self.acceleration, dtype=f64))  # fmt: skip
        return pos, torch.tensor(self.yaw + t * self.yaw_rate, dtype=torch.float64)

    def world_from_object(self, t: float = 0.0) -> torch.Tensor:
        pos, yaw = self.pose_at(t)
        return make_rigid(yaw_matrix(yaw), pos)

    def local_box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre and size ``(3,)`` of the axis-aligned box around all parts, in the object frame."""
        corners = []
        signs = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float64)
        for p in self.parts:
            if p.kind == "plane" and p.size[0] == 0 and p.size[2] == 0:
                continue
            R = axis_angle_to_matrix(torch.tensor(p.rotation, dtype=torch.float64))
            local = signs * torch.tensor(p.size, dtype=torch.float64) / 2
            corners.append(local @ R.T + torch.tensor(p.position, dtype=torch.float64))
        if not corners:
            raise ValueError(f"object {self.name!r} has no bounded part to put a box around")
        c = torch.cat(corners)
        lo, hi = c.amin(0), c.amax(0)
        return (lo + hi) / 2, hi - lo

    def box_at(self, t: float = 0.0) -> torch.Tensor:
        """The object's oriented 3D box ``(cx, cy, cz, sx, sy, sz, yaw)`` in the world at frame ``t``."""
        centre, size = self.local_box()
        pos, yaw = self.pose_at(t)
        world_centre = yaw_matrix(yaw) @ centre + pos
        return torch.cat([world_centre, size, yaw[None]])


@dataclass
class FlatScene:
    """The primitives of a scene at one frame, stacked as tensors (what the ray-caster consumes)."""

    kind: torch.Tensor  # (P,) long, index into primitives.KINDS
    part_from_world: torch.Tensor  # (P, 4, 4)
    size: torch.Tensor  # (P, 3)
    color: torch.Tensor  # (P, 3)
    color2: torch.Tensor  # (P, 3)
    texture: torch.Tensor  # (P,) long, index into TEXTURES
    tex_scale: torch.Tensor  # (P,)
    tex_seed: torch.Tensor  # (P,) long
    instance: torch.Tensor  # (P,) long, 1-based object index
    semantic: torch.Tensor  # (P,) long, index into CLASSES

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> FlatScene:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)
            out[f.name] = v
        return FlatScene(**out)


@dataclass
class Scene:
    """A list of objects, a light and a background colour; ``seed`` records how it was drawn."""

    objects: list[SceneObject]
    light_dir: tuple[float, float, float] = (0.4, -1.0, 0.3)
    """Direction *towards* the (directional) light, world frame (y down: -y is up)."""
    ambient: float = 0.35
    background: tuple[float, float, float] = (0.78, 0.86, 0.95)
    kind: str = "custom"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Generator-specific ground truth (camera height, road plane, ...), JSON-ready."""

    def __post_init__(self) -> None:
        _tuples(self, "light_dir", "background")

    def flatten(self, t: float = 0.0) -> FlatScene:
        """Stack every primitive at frame ``t`` (float64, CPU)."""
        kinds, T, size, col, col2, tex, scale, seed, inst, sem = [], [], [], [], [], [], [], [], [], []
        for i, obj in enumerate(self.objects, 1):
            world_from_obj = obj.world_from_object(t)
            for p in obj.parts:
                R = axis_angle_to_matrix(torch.tensor(p.rotation, dtype=torch.float64))
                obj_from_part = make_rigid(R, torch.tensor(p.position, dtype=torch.float64))
                world_from_part = world_from_obj @ obj_from_part
                Rw, tw = world_from_part[:3, :3], world_from_part[:3, 3]
                T.append(make_rigid(Rw.T, -Rw.T @ tw))
                kinds.append(KINDS.index(p.kind))
                size.append(p.size)
                col.append(p.material.color)
                col2.append(p.material.color2)
                tex.append(TEXTURES.index(p.material.texture))
                scale.append(p.material.scale)
                seed.append(p.material.seed)
                inst.append(i)
                sem.append(class_id(obj.semantic))
        if not kinds:
            raise ValueError("the scene has no primitives")
        f64 = torch.float64
        return FlatScene(
            kind=torch.tensor(kinds),
            part_from_world=torch.stack(T),
            size=torch.tensor(size, dtype=f64),
            color=torch.tensor(col, dtype=f64),
            color2=torch.tensor(col2, dtype=f64),
            texture=torch.tensor(tex),
            tex_scale=torch.tensor(scale, dtype=f64),
            tex_seed=torch.tensor(seed),
            instance=torch.tensor(inst),
            semantic=torch.tensor(sem),
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scene:
        try:
            d = json.loads(text)
            objects = [
                SceneObject(
                    **{
                        **o,
                        "parts": [Primitive(**{**p, "material": Material(**p["material"])}) for p in o["parts"]],
                    }
                )
                for o in d.pop("objects")
            ]
            return cls(objects=objects, **d)
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"Scene.from_json: malformed scene: {e}") from None
