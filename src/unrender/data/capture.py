"""A user's posed capture, for novel-view synthesis and scene fitting: a ``transforms.json`` (instant-ngp /
NeRF layout) or a RealEstate10K camera file, read into one form and moved to a common scale.

RealEstate10K: ``<clip>.txt`` with its frames in a folder beside it named like the file (``<clip>/``) or
``frames/``, one ``<timestamp>.png`` (or ``.jpg``) per camera line, as the usual download scripts write them.

Normalisation: an inward-looking capture (an object in the middle) is moved so the point nearest to all
optical axes is the origin and scaled so the mean camera distance to it is :data:`TRAIN_DISTANCE`, as in
the generated scenes (objects at the origin, cameras 2.2-2.8 m away). A forward-facing one (a walk through
a house, as in RealEstate10K; its optical axes meet nowhere) is scaled so its trajectory spans 1 unit and
the origin is put :data:`TRAIN_DISTANCE` ahead of its mean camera: the scene's true scale is unknown there
(RealEstate10K poses are up to scale), so this is a convention, stated in the outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..geometry import invert_rigid, look_at
from .formats import FormatError, MissingFileError, read_realestate10k, read_transforms_json

__all__ = [
    "TRAIN_DISTANCE", "Capture", "capture_frame", "centres_axes", "gravity_direction", "nearest_views", "normalise",
    "orbit_cameras", "orbit_circle", "read_capture",
]  # fmt: skip

TRAIN_DISTANCE = 2.5  # the generated scenes' mean camera distance to the object (2.2-2.8)


@dataclass
class Capture:
    paths: list[Path]  # one image per camera
    K: torch.Tensor  # (N, 3, 3) in pixels of the images
    cam_from_world: torch.Tensor  # (N, 4, 4)
    distortion: torch.Tensor  # (5,) OpenCV k1, k2, p1, p2, k3 (zeros: none)
    size: tuple[int, int]  # (H, W) of the images
    source: str


def read_capture(path: str | Path) -> Capture:
    """A ``transforms.json`` or a RealEstate10K camera file (``.txt``) with its frames.

    Raises:
        MissingFileError: the file, or a frame of a RealEstate10K clip, is missing.
        FormatError: a malformed file, or another file type.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        s = read_transforms_json(path)
        k = s.distortion
        dist = torch.tensor([k.get("k1", 0.0), k.get("k2", 0.0), k.get("p1", 0.0), k.get("p2", 0.0), k.get("k3", 0.0)])
        return Capture(list(s.image_paths), s.K, s.cam_from_world, dist.double(), (s.height, s.width),
                       f"transforms.json {path}")  # fmt: skip
    if path.suffix.lower() == ".txt":
        clip = read_realestate10k(path)
        folder = next((f for f in (path.with_suffix(""), path.parent / "frames") if f.is_dir()), None)
        if folder is None:
            raise MissingFileError(f"{path}: no frames folder {path.with_suffix('').name}/ or frames/ beside it")
        paths = []
        for ts in clip.timestamps.tolist():
            found = [p for p in (folder / f"{ts}.png", folder / f"{ts}.jpg") if p.is_file()]
            if not found:
                raise MissingFileError(f"{folder}: no frame {ts}.png or {ts}.jpg for timestamp {ts} of {path}")
            paths.append(found[0])
        from PIL import Image

        with Image.open(paths[0]) as im:
            w, h = im.size
        return Capture(paths, clip.K(h, w), clip.cam_from_world, torch.zeros(5, dtype=torch.float64), (h, w),
                       f"RealEstate10K clip {path}")  # fmt: skip
    raise FormatError(f"{path}: expected a transforms.json or a RealEstate10K camera file (.txt)")


def centres_axes(cam_from_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-frame camera centres ``(N, 3)`` and optical axes ``(N, 3)``."""
    world_from_cam = invert_rigid(cam_from_world.double())
    return world_from_cam[:, :3, 3], world_from_cam[:, :3, 2]


def capture_frame(cam_from_world: torch.Tensor) -> tuple[torch.Tensor, float, str]:
    """``(centre (3,), scale, how)``: the normalisation of the module docstring (``x' = scale (x - centre)``).

    Raises:
        ValueError: fewer than two cameras, or all at one place looking one way.
    """
    c, d = centres_axes(cam_from_world)
    if len(c) < 2:
        raise ValueError("a capture needs at least two cameras")
    proj = torch.eye(3, dtype=torch.float64) - d[:, :, None] * d[:, None, :]  # (N, 3, 3)
    A, b = proj.sum(0), (proj @ c[:, :, None]).sum(0)[:, 0]
    if torch.linalg.cond(A) < 1e3:  # the optical axes meet: an inward-looking capture
        centre = torch.linalg.solve(A, b)
        dist = (c - centre).norm(dim=-1).mean()
        if float((d * (centre - c)).sum(-1).mean()) > 0.5 * float(dist):  # the point is in front of the cameras
            return centre, float(TRAIN_DISTANCE / dist), "inward-looking: the cameras' look-at point at the origin"
    extent = float(torch.cdist(c, c).max())
    if extent < 1e-9:
        raise ValueError("every camera of the capture is at the same place: no scale to normalise by")
    scale = 1.0 / extent
    centre = c.mean(0) + torch.nn.functional.normalize(d.mean(0), dim=0) * TRAIN_DISTANCE / scale
    return centre, scale, "forward-facing: trajectory scaled to 1 unit, the origin 2.5 units ahead (a convention)"


def normalise(cam_from_world: torch.Tensor, centre: torch.Tensor, scale: float) -> torch.Tensor:
    """Poses in the normalised world ``x' = scale (x - centre)``."""
    T = cam_from_world.double().clone()
    R, t = T[..., :3, :3], T[..., :3, 3]
    T[..., :3, 3] = scale * (t + (R @ centre[:, None])[..., 0])
    return T


def gravity_direction(cam_from_world: torch.Tensor) -> torch.Tensor:
    """World-frame gravity ("down", unit) of cameras held without roll: the direction perpendicular to
    every camera's x axis (image right is horizontal), signed like their mean image-down direction.
    Where the x axes all agree (a camera moving straight ahead) that leaves a plane, and the mean
    image-down direction, made perpendicular to x, is used.

    Raises:
        ValueError: the cameras' image-down directions disagree too much to tell which way is down.
    """
    world_from_cam = invert_rigid(cam_from_world.double())
    x, down = world_from_cam[:, :3, 0], world_from_cam[:, :3, 1].mean(0)
    if down.norm() < 0.5:
        raise ValueError("the cameras' image-down directions disagree (mean length < 0.5): gravity is unclear; "
                         "this needs roughly upright cameras")  # fmt: skip
    evals, evecs = torch.linalg.eigh(x.T @ x / len(x))  # ascending
    if evals[0] < 0.1 * evals[1]:
        g = evecs[:, 0]
    else:
        xm = torch.nn.functional.normalize(x.mean(0), dim=0)
        g = down - (down @ xm) * xm
    g = g / g.norm()
    return g if float(g @ down) > 0 else -g


def orbit_circle(cam_from_world: torch.Tensor) -> torch.Tensor:
    """The circle the capture's cameras go round, as ``(10,)``: the up direction (3; :func:`gravity_direction`), a
    unit vector from the circle's axis towards the first camera (3), the cameras' mean height along up,
    their mean distance from the axis through the origin (an already normalised capture), and the arc of
    azimuths (radians from that vector, about up) the cameras span: the circle less its largest empty gap,
    the whole circle when no gap exceeds 90 degrees."""
    c, _ = centres_axes(cam_from_world)
    up = -gravity_direction(cam_from_world)
    radial = c - (c @ up)[:, None] * up
    e1 = radial[0] / radial[0].norm().clamp(min=1e-9)
    e2 = torch.linalg.cross(up, e1)
    az = torch.atan2(radial @ e2, radial @ e1).sort().values  # in (-pi, pi]; the first camera at 0
    gaps = torch.cat([az[1:] - az[:-1], (az[:1] + 2 * math.pi) - az[-1:]])
    k = int(gaps.argmax())
    if float(gaps[k]) <= math.pi / 2:
        arc = torch.tensor([0.0, 2 * math.pi], dtype=torch.float64)
    else:  # from the camera after the largest gap, round to the one before it
        start = az[(k + 1) % len(az)]
        arc = torch.stack([start, start + 2 * math.pi - gaps[k]])
    return torch.cat([up, e1, (c @ up).mean()[None], radial.norm(dim=-1).mean()[None], arc])


def orbit_cameras(cam_from_world: torch.Tensor | None, n: int, *, circle: torch.Tensor | None = None) -> torch.Tensor:
    """``(n, 4, 4)`` cameras on the circle of :func:`orbit_circle` (of ``cam_from_world``, or the ``circle``
    given) looking at the origin, upright: once round when the capture's cameras surround it, else back and
    forth over the arc they span (easing at its ends), so the video loops and shows only what was seen."""
    if n < 1:
        raise ValueError(f"--orbit must be >= 1, got {n}")
    circle = orbit_circle(cam_from_world) if circle is None else circle.double()
    up, e1, height, radius, a0, a1 = circle[:3], circle[3:6], circle[6], circle[7], circle[8], circle[9]
    e2 = torch.linalg.cross(up, e1)
    k = torch.arange(n, dtype=torch.float64)
    if float(a1 - a0) >= 2 * math.pi - 1e-9:
        angles = a0 + k * 2 * math.pi / n
    else:
        angles = a0 + (a1 - a0) * (1 - torch.cos(2 * math.pi * k / n)) / 2
    eyes = height * up + radius * (torch.cos(angles)[:, None] * e1 + torch.sin(angles)[:, None] * e2)
    return look_at(eyes, torch.zeros_like(eyes), up=up.expand_as(eyes))


def nearest_views(cam_from_world: torch.Tensor, target_cam_from_world: torch.Tensor, k: int) -> list[int]:
    """Indices of the ``k`` cameras of ``cam_from_world (N, 4, 4)`` nearest to one target camera ``(4, 4)``:
    centre distance (in units of :data:`TRAIN_DISTANCE`, for a normalised capture) plus one minus the cosine
    between the optical axes, smallest first."""
    c, d = centres_axes(cam_from_world)
    ct, dt = centres_axes(target_cam_from_world[None])
    score = (c - ct).norm(dim=-1) / TRAIN_DISTANCE + (1 - (d * dt).sum(-1))
    return score.argsort()[:k].tolist()
