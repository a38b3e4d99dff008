"""Samples for neural 3D mapping: generated rooms seen from a few RGB-D views plus one held-out view.

The voxel memory lives in the *reference frame*: the first input camera with its pitch and roll
removed (origin at the camera, y down along gravity, z along the camera's horizontal heading).
Every camera is expressed as ``cam_from_mem``, and boxes stay yaw-only boxes there.
"""

from __future__ import annotations

import json
import math

import torch
from torch.utils.data import Dataset

from ...data.synth import split_dataset
from ...geometry import VoxelGrid, carve_depth, invert_rigid, make_rigid, transform_points, yaw_matrix
from ...world import CLASSES, Scene
from ...world.truth import occupancy
from .config import MappingConfig

__all__ = ["MappingDataset", "mem_from_world", "memory_grid", "mirror_item", "MAX_BOXES"]

MAX_BOXES = 24


def memory_grid(cfg: MappingConfig) -> VoxelGrid:
    d = cfg.data
    return VoxelGrid(d.bounds_min, d.bounds_max, d.resolution)


def mem_from_world(cam_from_world: torch.Tensor) -> torch.Tensor:
    """The gravity-aligned reference frame of a camera ``(4, 4)``: its centre, world y, its heading."""
    world_from_cam = invert_rigid(cam_from_world)
    f = world_from_cam[:3, 2]
    phi = torch.atan2(-f[0], f[2])  # yaw_matrix(phi) turns the heading onto +z
    R = yaw_matrix(phi)
    return make_rigid(R, -R @ world_from_cam[:3, 3])


def mirror_item(item: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same sample with the world mirrored about the memory frame's ``x = 0`` plane.

    Images flip left-right, ``cx -> W - 1 - cx`` (pixel centres at integers), every camera becomes ``S T S`` with
    ``S = diag(-1, 1, 1, 1)`` (still a rotation: the camera frame is mirrored too), voxel grids
    flip along x and boxes get ``x -> -x``, ``yaw -> -yaw``. Exact when the grid is symmetric
    about ``x = 0`` (checked by :class:`MappingDataset`).
    """
    out = dict(item)
    W = item["rgb_in"].shape[-1]
    S = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=item["cam_from_mem_in"].dtype))
    for k in ("rgb_in", "depth_in", "rgb_out", "occ", "sem", "occ_target", "occ_known"):
        out[k] = item[k].flip(-1)
    for k in ("K_in", "K_out"):
        out[k] = item[k].clone()
        out[k][..., 0, 2] = (W - 1) - item[k][..., 0, 2]
    for k in ("cam_from_mem_in", "cam_from_mem_out"):
        out[k] = S @ item[k] @ S
    boxes = item["boxes"].clone()
    boxes[:, 0], boxes[:, 6] = -boxes[:, 0], -boxes[:, 6]
    out["boxes"] = torch.where((item["box_labels"] >= 0)[:, None], boxes, item["boxes"])
    return out


class MappingDataset(Dataset):
    """Processed mapping samples (cached in memory after the first read).

    Item keys: ``rgb_in (N, 3, H, W)``, ``depth_in (N, 1, H, W)``, ``K_in (N, 3, 3)``,
    ``cam_from_mem_in (N, 4, 4)``; ``rgb_out (3, H, W)``, ``K_out``, ``cam_from_mem_out`` (the
    held-out view); ``occ (1, Z, Y, X)`` exact occupancy, ``sem (Z, Y, X)`` class ids,
    ``occ_target``/``occ_known (1, Z, Y, X)`` what the occupancy loss sees; ``boxes (24, 7)``
    in the memory frame and ``box_labels (24,)`` (index into the detected classes, -1 = padding).

    With ``data.mirror`` the training split has twice the items: item ``len(scenes) + i`` is
    :func:`mirror_item` of item ``i`` (a fixed index, so resumed and distributed runs see the same data).
    """

    def __init__(self, cfg: MappingConfig, split: str, *, generate: bool = True, workers: int = 2):
        d = cfg.data
        self.synth = split_dataset(d.root, split, kind="rooms", num_train=d.num_train, num_val=d.num_val,
                                   views=d.views_in + 1, height=d.height, width=d.width, seed=d.seed,
                                   generate=generate, workers=workers)  # fmt: skip
        self.cfg = cfg
        self.grid = memory_grid(cfg)
        self.det_ids = {CLASSES.index(c): i for i, c in enumerate(cfg.model.det_classes)}
        self._cache: dict[int, dict[str, torch.Tensor]] = {}
        self.mirror = split == "train" and cfg.data.mirror
        if self.mirror and abs(self.grid.bounds_min[0] + self.grid.bounds_max[0]) > 1e-6:
            raise ValueError(
                f"data.mirror needs a memory box symmetric about x = 0, got x in "
                f"[{self.grid.bounds_min[0]}, {self.grid.bounds_max[0]}]; set data.mirror=False or centre the box"
            )

    def __len__(self) -> int:
        return len(self.synth) * (2 if self.mirror else 1)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"MappingDataset: index {i} out of range for {len(self)} items")
        n = len(self.synth)
        if i >= n:
            return mirror_item(self[i - n])
        if i not in self._cache:
            self._cache[i] = self._make(i)
        return self._cache[i]

    def exact_occupancy(self, i: int, grid: VoxelGrid) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact occupancy ``(1, Z, Y, X)`` and class ids ``(Z, Y, X)`` of item ``i``'s room on any ``grid`` in
        its memory frame (e.g. finer than the memory: the truth at a higher resolution). Not for mirrored items."""
        if not 0 <= i < len(self.synth):
            raise IndexError(f"MappingDataset.exact_occupancy: index {i} out of range for {len(self.synth)} rooms")
        s = self.synth[i]
        scene = Scene.from_json(json.dumps(s["scene_json"]))
        return occupancy(scene, grid, grid_from_world=mem_from_world(s["cam_from_world"][0].double()))

    def _make(self, i: int) -> dict[str, torch.Tensor]:
        s = self.synth[i]
        n = self.cfg.data.views_in
        T_world = s["cam_from_world"].double()
        M = mem_from_world(T_world[0])
        cam_from_mem = T_world @ invert_rigid(M)
        scene = Scene.from_json(json.dumps(s["scene_json"]))
        occ, sem = occupancy(scene, self.grid, grid_from_world=M)
        depth = s["depth"].float()
        if self.cfg.data.occupancy_target == "exact":
            target, known = occ, torch.ones_like(occ)
        else:
            carved, free = carve_depth(self.grid, depth.double(), s["K"].double(), cam_from_mem)
            target, known = carved, ((carved + free) > 0).double()
        # boxes of the detected classes whose centre lies in the memory box
        boxes = torch.zeros(MAX_BOXES, 7)
        labels = torch.full((MAX_BOXES,), -1, dtype=torch.long)
        bw = s["boxes_world"][0].double()
        centres = transform_points(M, bw[:, :3])
        phi = math.atan2(M[0, 2].item(), M[0, 0].item())  # M's rotation is yaw_matrix(phi)
        k = 0
        for j in range(len(bw)):
            cls = int(s["box_classes"][j])
            if cls in self.det_ids and bool(self.grid.contains(centres[j])) and k < MAX_BOXES:
                yaw = float(bw[j, 6]) + phi
                boxes[k] = torch.cat([centres[j], bw[j, 3:6], torch.tensor([yaw], dtype=torch.float64)]).float()
                labels[k] = self.det_ids[cls]
                k += 1
        return {
            "rgb_in": s["rgb"][:n],
            "depth_in": depth[:n],
            "K_in": s["K"][:n].float(),
            "cam_from_mem_in": cam_from_mem[:n].float(),
            "rgb_out": s["rgb"][n],
            "K_out": s["K"][n].float(),
            "cam_from_mem_out": cam_from_mem[n].float(),
            "occ": occ.float(),
            "sem": sem,
            "occ_target": target.float(),
            "occ_known": known.float(),
            "boxes": boxes,
            "box_labels": labels,
        }
