"""One dataset sample: generate a layout, render every view, sample the ground truth.

:func:`make_sample` is the single code path behind ``unrender synth`` (written to
disk) and :class:`unrender.data.SynthDataset` (read back, or generated on the fly).
A sample is a dict of NumPy arrays (plus JSON strings), compact enough for
``np.savez_compressed``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch

from ..geometry import project_points, transform_points
from .generators import GENERATORS
from .render import check_antialias, render
from .scene import CLASSES
from .truth import boxes_2d, boxes_in_camera, mask_boxes, object_boxes, occupancy

__all__ = ["SynthConfig", "make_sample", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
Kind = Literal["rooms", "streets", "objects", "people", "traffic", "traffic-one", "traffic-empty"]


@dataclass
class SynthConfig:
    """What to generate. Every sample is a deterministic function of ``(kind, seed, index)`` and these settings."""

    kind: Kind = "rooms"
    num: int = 100
    """Number of samples."""
    views: int = 4
    """Cameras per sample (rooms, objects, people) or video frames (streets; traffic: frames of a rig of 3
    cameras, so 3 x views images)."""
    height: int = 128
    width: int = 128
    seed: int = 0
    shadows: bool = True
    occupancy: bool = True
    """Also sample exact occupancy and semantics on the generator's voxel grid."""
    antialias: int = 1
    """Odd number of rays per pixel side averaged into the RGB (1 = one ray through each pixel
    centre); depth, normals and labels stay the pixel-centre ray's (see :func:`~unrender.world.render`)."""

    def __post_init__(self) -> None:
        if self.kind not in GENERATORS:
            raise ValueError(f"kind: expected one of {sorted(GENERATORS)}, got {self.kind!r}")
        if min(self.num, self.views, self.height, self.width) <= 0:
            raise ValueError("num, views, height and width must be positive")
        check_antialias(self.antialias)


def make_sample(cfg: SynthConfig, index: int) -> dict[str, np.ndarray]:
    """Generate, render and annotate sample ``index`` of ``cfg``.

    Keys (``N`` views, ``M`` boxed objects):

    * ``rgb (N, 3, H, W)`` uint8; ``depth (N, 1, H, W)`` float32 z-depth (0 = nothing);
      ``normals (N, 3, H, W)`` float16 world frame; ``instance``, ``semantic (N, 1, H, W)`` int16
    * ``K (N, 3, 3)``, ``cam_from_world (N, 4, 4)`` float64; ``time (N,)``
    * ``boxes_world``, ``boxes_cam (N, M, 7)``; ``box_classes``, ``box_track_ids``, ``box_instance (M,)``;
      ``boxes_2d (N, M, 4)`` amodal (projected 3D box) with ``boxes_2d_valid (N, M)``;
      ``mask_boxes (N, M, 4)`` tight around visible pixels, with ``mask_pixels (N, M)``; ``box_moving (M,)``
      bool, the object moves during the sample
    * ``occupancy``, ``semantic_voxels (Z, Y, X)`` uint8 in the world frame at the first view's time,
      on the grid in ``meta``
    * people: ``joints_world (17, 3)``, ``joints_cam (N, 17, 3)``, ``joints_2d (N, 17, 2)``
    * streets: ``camera_height (N,)``, ``road_plane_cam (N, 4)`` (``n . p + d = 0``, camera frame)
    * ``scene_json``, ``meta`` (JSON strings)
    """
    rng = np.random.default_rng([cfg.seed, index, sorted(GENERATORS).index(cfg.kind)])
    lay = GENERATORS[cfg.kind](rng, views=cfg.views, H=cfg.height, W=cfg.width)
    H, W, N = cfg.height, cfg.width, len(lay.times)
    times = torch.tensor(lay.times, dtype=torch.float64)
    parts: dict[str, list[torch.Tensor]] = {}
    for t in sorted(set(lay.times)):
        sel = (times == t).nonzero()[:, 0]
        out = render(
            lay.scene, lay.K[sel], lay.cam_from_world[sel], H, W, t=t, shadows=cfg.shadows, antialias=cfg.antialias
        )
        for k, v in out.items():
            parts.setdefault(k, []).append((sel, v))
    img = {}
    for k, lst in parts.items():
        full = torch.zeros((N, *lst[0][1].shape[1:]), dtype=lst[0][1].dtype)
        for sel, v in lst:
            full[sel] = v
        img[k] = full
    s: dict[str, np.ndarray] = {
        "rgb": (img["rgb"] * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy(),
        "depth": img["depth"].float().numpy(),
        "normals": img["normals"].half().numpy(),
        "instance": img["instance"].to(torch.int16).numpy(),
        "semantic": img["semantic"].to(torch.int16).numpy(),
        "K": lay.K.numpy(),
        "cam_from_world": lay.cam_from_world.numpy(),
        "time": times.numpy(),
    }
    # boxes per view (objects may move between frames)
    bw, bc, b2, b2v, mb, mp = [], [], [], [], [], []
    ob = object_boxes(lay.scene, lay.times[0])
    for v in range(N):
        boxes = object_boxes(lay.scene, lay.times[v])["boxes"]
        bw.append(boxes)
        bc.append(boxes_in_camera(boxes, lay.cam_from_world[v]))
        box2, valid = boxes_2d(boxes, lay.K[v], lay.cam_from_world[v], H, W)
        b2.append(box2)
        b2v.append(valid)
        mbox, count = mask_boxes(img["instance"][v, 0], ob["instance"])
        mb.append(mbox)
        mp.append(count)
    s.update(
        boxes_world=torch.stack(bw).numpy(),
        boxes_cam=torch.stack(bc).numpy(),
        box_classes=ob["classes"].numpy(),
        box_track_ids=ob["track_ids"].numpy(),
        box_instance=ob["instance"].numpy(),
        boxes_2d=torch.stack(b2).numpy(),
        boxes_2d_valid=torch.stack(b2v).numpy(),
        mask_boxes=torch.stack(mb).numpy(),
        mask_pixels=torch.stack(mp).numpy().astype(np.int32),
        box_moving=np.array([lay.scene.objects[i - 1].moves for i in ob["instance"].tolist()], dtype=bool),
    )
    meta = {"schema": SCHEMA_VERSION, "kind": cfg.kind, "index": index, "config": asdict(cfg), "classes": list(CLASSES)}
    if cfg.occupancy and lay.grid is not None:
        occ, sem = occupancy(lay.scene, lay.grid, t=lay.times[0])
        s["occupancy"] = occ[0].to(torch.uint8).numpy()
        s["semantic_voxels"] = sem.to(torch.uint8).numpy()
        meta["grid"] = json.loads(lay.grid.to_json())
    if "joints_world" in lay.extra:
        jw = lay.extra["joints_world"]
        jc = transform_points(lay.cam_from_world, jw.expand(N, -1, -1))
        uv, _, _ = project_points(jc, lay.K)
        s.update(joints_world=jw.numpy(), joints_cam=jc.numpy(), joints_2d=uv.numpy())
    for key in ("camera_height", "road_plane_cam"):
        if key in lay.extra:
            s[key] = lay.extra[key].numpy()
    s["scene_json"] = np.array(lay.scene.to_json())
    s["meta"] = np.array(json.dumps(meta))
    return s
