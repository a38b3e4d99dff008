"""Traffic sequences with the ground truth of motion: per frame, the boxes (with track ids and whether they
move), the exact occupancy, the voxels of moving objects and the per-voxel 3D flow to the next frame, all
in the anchor frame's voxel grid (:data:`unrender.world.generators.traffic.ANCHOR_GRID`)."""

from __future__ import annotations

import json

import torch
from torch.utils.data import Dataset

from ...data.synth import split_dataset
from ...geometry import invert_rigid, transform_points
from ...world import Scene
from ...world.generators.traffic import ANCHOR_GRID, RIG_YAWS, anchor_from_world
from ...world.truth import labels_at, scene_flow
from .config import DynamicData

__all__ = ["DynamicDataset", "DynamicFrames", "MAX_BOXES", "sequence_truth"]

MAX_BOXES = 24


def sequence_truth(scene: Scene, grid_from_world: torch.Tensor, frames: int) -> dict[str, torch.Tensor]:
    """Exact occupancy, moving voxels and flow on :data:`ANCHOR_GRID` at every frame.

    Returns:
        ``occ (T, 1, Z, Y, X)`` float; ``moving (T, 1, Z, Y, X)`` bool (inside an object that moves);
        ``flow (T - 1, 3, Z, Y, X)`` float, metres in the grid frame: where the matter at each voxel centre
        at frame ``t`` is at ``t + 1`` (0 in free space and on static matter).
    """
    g = ANCHOR_GRID
    pts = transform_points(invert_rigid(grid_from_world), g.centers(dtype=torch.float64).reshape(-1, 3))
    movers = torch.tensor([0] + [o.moves for o in scene.objects], dtype=torch.bool)  # by 1-based object index
    R = grid_from_world[:3, :3]
    occ, moving, flow = [], [], []
    for t in range(frames):
        if t + 1 < frames:  # the flow's point labels are the frame's: one inside-test per frame
            f, obj = scene_flow(scene, pts, float(t), float(t + 1))
            flow.append((f @ R.T).T.reshape(3, *g.shape))  # a displacement turns with the frame, no shift
        else:
            _, obj = labels_at(scene, pts, t=float(t))
        occ.append((obj > 0).reshape(1, *g.shape))  # occupied: inside some object
        moving.append(movers[obj].reshape(1, *g.shape))
    return {"occ": torch.stack(occ).float(), "moving": torch.stack(moving), "flow": torch.stack(flow).float()}


class DynamicDataset(Dataset):
    """Processed traffic sequences (cached in memory after the first read).

    Item keys (``T`` frames, ``V = 3`` rig cameras): ``rgb (T, V, 3, H, W)`` float in [0, 1],
    ``depth (T, V, 1, H, W)``, ``K (T, V, 3, 3)``, ``cam_from_grid (T, V, 4, 4)``; ``boxes (T, 24, 7)`` in the
    grid frame with ``box_valid (24,)``, ``box_moving (24,)``, ``box_track (24,)``, ``box_classes (24,)``;
    the ground truth of :func:`sequence_truth` (``occ``, ``moving``, ``flow``); ``anchor ()`` the anchor frame.
    """

    def __init__(self, data: DynamicData, split: str, *, generate: bool = True, workers: int = 2):
        kind = "traffic" if data.variant == "mixed" else f"traffic-{data.variant}"
        self.synth = split_dataset(data.root, split, kind=kind, num_train=data.num_train, num_val=data.num_val,
                                   views=data.frames, height=data.height, width=data.width, seed=data.seed,
                                   generate=generate, workers=workers)  # fmt: skip
        self.data = data
        self.grid = ANCHOR_GRID
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.synth)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"DynamicDataset: index {i} out of range for {len(self)} items")
        if i not in self._cache:
            self._cache[i] = self._make(i)
        return self._cache[i]

    def _make(self, i: int) -> dict[str, torch.Tensor]:
        s = self.synth[i]
        T, V = self.data.frames, len(RIG_YAWS)
        cam_from_world = s["cam_from_world"].double()
        anchor = T // 2
        G = anchor_from_world(cam_from_world[anchor * V])
        cam_from_grid = cam_from_world @ invert_rigid(G)
        scene = Scene.from_json(json.dumps(s["scene_json"]))
        truth = sequence_truth(scene, G, T)
        bw = s["boxes_world"].double()[::V]  # (T, M, 7): one per frame (the rig's views share a time)
        M = min(bw.shape[1], MAX_BOXES)
        boxes = torch.zeros(T, MAX_BOXES, 7)
        boxes[:, :M, :3] = transform_points(G, bw[:, :M, :3]).float()
        boxes[:, :M, 3:] = bw[:, :M, 3:].float()  # a shift leaves sizes and yaw
        pad = lambda x, fill=0: torch.cat([x[:M], torch.full((MAX_BOXES - M,), fill, dtype=x.dtype)])  # noqa: E731
        rgb = s["rgb"]  # float in [0, 1]
        # each box's visible pixels per frame, over the rig's views (its instance in the instance images)
        inst = s["instance"].reshape(T, V, -1).long()
        ids = s["box_instance"].long()[:M]
        pixels = torch.zeros(T, MAX_BOXES, dtype=torch.long)
        pixels[:, :M] = (inst[:, :, None, :] == ids[None, None, :, None]).sum((1, 3))
        return {
            "rgb": rgb.reshape(T, V, *rgb.shape[1:]),
            "depth": s["depth"].float().reshape(T, V, *s["depth"].shape[1:]),
            "K": s["K"].float().reshape(T, V, 3, 3),
            "cam_from_grid": cam_from_grid.float().reshape(T, V, 4, 4),
            "boxes": boxes,
            "box_valid": pad(torch.ones(bw.shape[1], dtype=torch.bool), False),
            "box_moving": pad(s["box_moving"].bool(), False),
            "box_track": pad(s["box_track_ids"].long(), -1),
            "box_classes": pad(s["box_classes"].long(), -1),
            "box_pixels": pixels,
            "anchor": torch.tensor(anchor),
            **truth,
        }


class DynamicFrames(Dataset):
    """The frames of :class:`DynamicDataset`'s sequences one at a time (what the feature net trains on): item
    ``i`` is frame ``i % T`` of sequence ``i // T``, with its views (``rgb (V, 3, H, W)``, ``depth``, ``K``,
    ``cam_from_grid``) and its true ``occ (1, Z, Y, X)``."""

    def __init__(self, sequences: DynamicDataset):
        self.sequences = sequences
        self.frames = sequences.data.frames

    def __len__(self) -> int:
        return len(self.sequences) * self.frames

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"DynamicFrames: index {i} out of range for {len(self)} items")
        item = self.sequences[i // self.frames]
        t = i % self.frames
        return {k: item[k][t] for k in ("rgb", "depth", "K", "cam_from_grid", "occ")}
