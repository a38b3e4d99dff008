"""Prototype composition, stage two: a room at twice the mapping memory's resolution, composed of the frozen
mapping net's own occupancy (upsampled: walls, floor, everything not in a box) and small learned RGBA
prototypes pasted into the boxes its CenterNet-style head finds.

Per box (the peak's sub-voxel centroid, yaw and size), a new head reads the net's features on a lattice inside
the box and picks a prototype (``K`` logits). The prototype, a ``size^3`` RGBA volume over the unit cube, is
scaled to the box, turned by its yaw and pasted into the fine output grid by trilinear resampling
(:func:`~unrender.geometry.warp_volume`, a 3D spatial transformer): the box owns its voxels (the net's upsampled
occupancy is replaced inside it), pasted occupancies add up capped at 1 and colour is the occupancy-weighted
mean. No convolution runs at the fine resolution.

Training pastes at the true boxes (their yaw taken modulo a half turn, as the head predicts it); each box takes
the prototype that explains its exact fine occupancy best (min over K, each prototype trained only on the boxes
it wins) and the id head learns that choice. The prototypes start as K true object shapes of the first batch,
chosen far apart (as k-means++ seeds its centres). Evaluation pastes at the head's detections (and, to separate
the prototypes from the detector, at the true boxes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ...geometry import VoxelGrid, box_pose, sample_frustum, transform_points, warp_volume
from ...metrics import psnr, voxel_iou
from ...render import alpha_composite
from ...weights import trained_dataset, trained_model
from .config import ProtoConfig
from .model import occupancy_costs

__all__ = ["ComposeRooms", "PrototypePlacer", "compose_loss", "evaluate_compose"]

ROOM_KEYS = ("rgb_out", "K_out", "cam_from_mem_out")


def fine_grid(grid: VoxelGrid, upsample: int) -> VoxelGrid:
    """The memory's box at ``upsample`` x its resolution."""
    return VoxelGrid(grid.bounds_min, grid.bounds_max, tuple(r * upsample for r in grid.resolution))


class ComposeRooms(Dataset):
    """Rooms of the mapping model's ``split`` (``train``: its first ``data.train_scenes``; ``val``: all its
    held-out rooms) with what the frozen mapping net makes of their input views: ``features (C, Z, Y, X)``,
    ``occ_logits (1, Z, Y, X)``, ``colour (3, Z, Y, X)``, its detections ``det_boxes (M, 7)``/``det_scores (M,)``
    (zero-padded); the true ``boxes (24, 7)``/``box_labels (24,)`` (-1: padding), ``occ`` at the memory's
    resolution and ``occ_fine (1, Z', Y', X')`` (bool) at ``model.upsample`` x it; the held-out view."""

    def __init__(self, cfg: ProtoConfig, split: str):
        d, m = cfg.data, cfg.model
        mcfg, self.rooms = trained_dataset("mapping", d.mapping, split, root=d.root)
        self.classes = list(mcfg.model.det_classes)
        self.grid = VoxelGrid(mcfg.data.bounds_min, mcfg.data.bounds_max, mcfg.data.resolution)
        self.fine = fine_grid(self.grid, m.upsample)
        rooms = len(self.rooms.synth)  # the unmirrored rooms
        self.count = min(d.train_scenes, rooms) if split == "train" else rooms
        self.mapping, self.score = d.mapping, m.det_score
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.count:
            raise IndexError(f"ComposeRooms: index {i} out of range for {self.count} rooms")
        if i not in self._cache:
            room = self.rooms[i]
            net = trained_model("mapping", self.mapping)
            o = net({k: v[None] for k, v in room.items()})
            det = net.detect(o, score_threshold=self.score)[0]
            M = net.cfg.model.max_detections
            det_boxes, det_scores = torch.zeros(M, 7), torch.zeros(M)
            det_boxes[: len(det["boxes"])], det_scores[: len(det["boxes"])] = det["boxes"], det["scores"]
            self._cache[i] = {
                "features": o["features"][0], "occ_logits": o["occ_logits"][0], "colour": o["colour"][0],
                "det_boxes": det_boxes, "det_scores": det_scores, "boxes": room["boxes"],
                "box_labels": room["box_labels"], "occ": room["occ"],
                "occ_fine": self.rooms.exact_occupancy(i, self.fine)[0] > 0.5,
                **{k: room[k] for k in ROOM_KEYS},
            }  # fmt: skip
        return self._cache[i]


class PrototypePlacer(nn.Module):
    """K RGBA prototypes (``model.size^3`` each, logits, over the unit cube) and the head that picks one per box
    from the frozen mapping net's features; composes fine rooms from them (see the module's docstring)."""

    def __init__(self, cfg: ProtoConfig, grid: VoxelGrid, feature_channels: int):
        super().__init__()
        m = self.m = cfg.model
        self.grid, self.fine = grid, fine_grid(grid, m.upsample)
        P, L = m.size, m.id_lattice
        self.cube = VoxelGrid((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (P, P, P))
        self.prototypes = nn.Parameter(torch.zeros(m.prototypes, 4, P, P, P))
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))  # prototypes set from true objects
        lattice = VoxelGrid((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (L, L, L)).centers()
        self.register_buffer("lattice", lattice.reshape(-1, 3), persistent=False)
        self.register_buffer("cube_points", self.cube.centers().reshape(-1, 3), persistent=False)
        self.id_head = nn.Sequential(nn.Linear(feature_channels * L**3 + 3, 64), nn.ReLU(), nn.Linear(64, m.prototypes))
        self.register_buffer("planes", torch.linspace(0.2, 9.0, m.depth_planes), persistent=False)

    @staticmethod
    def box_transforms(boxes: torch.Tensor) -> torch.Tensor:
        """``(N, 4, 4)``: the unit cube into each box ``(N, 7)`` (scaled by its sizes, turned, moved)."""
        return box_pose(boxes) @ torch.diag_embed(F.pad(boxes[:, 3:6], (0, 1), value=1.0))

    def _sample(self, volume: torch.Tensor, grid: VoxelGrid, boxes: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """``volume (C, Z, Y, X)`` on ``grid`` at points ``unit (V, 3)`` of each box's unit cube: ``(N, C, V)``."""
        pts = transform_points(self.box_transforms(boxes)[:, None], unit.to(boxes.dtype)[None])  # (N, V, 3)
        g = grid.world_to_normalized(pts).reshape(len(boxes), 1, 1, -1, 3).to(volume.dtype)
        v = volume[None].expand(len(boxes), *volume.shape)
        return F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)[:, :, 0, 0]

    def identify(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Prototype logits ``(N, K)`` of boxes ``(N, 7)`` from a room's features ``(C, Z, Y, X)``."""
        f = self._sample(features, self.grid, boxes, self.lattice).flatten(1)
        return self.id_head(torch.cat([f, boxes[:, 3:6].clamp(min=1e-3).log()], 1))

    def object_shapes(self, occ_fine: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """The exact fine occupancy ``(1, Z', Y', X')`` at each box's prototype voxels: ``(N, size^3)``."""
        return self._sample(occ_fine.float(), self.fine, boxes, self.cube_points)[:, 0]

    @torch.no_grad()
    def seed(self, shapes: torch.Tensor) -> None:
        """Set the prototypes' occupancy to K of the object shapes ``(N, V)``, chosen far apart (the first at
        random, then each the farthest from those chosen); their colour to grey."""
        K = self.m.prototypes
        g = torch.Generator().manual_seed(0)
        chosen = [int(torch.randint(len(shapes), (1,), generator=g))]
        dist = (shapes - shapes[chosen[0]]).pow(2).sum(1)
        while len(chosen) < K:
            j = int(dist.argmax()) if float(dist.max()) > 0 else int(torch.randint(len(shapes), (1,), generator=g))
            chosen.append(j)
            dist = torch.minimum(dist, (shapes - shapes[j]).pow(2).sum(1))
        occ = shapes[chosen].clamp(0.05, 0.95).reshape(K, *self.prototypes.shape[2:])
        self.prototypes[:, 3] = torch.logit(occ)
        self.prototypes[:, :3] = 0.0
        self.seeded.fill_(True)

    def paste(self, boxes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Boxes ``(N, 7)`` with prototype weights ``(N, K)`` (one-hot: one prototype each) in the fine grid:
        ``(5, Z', Y', X')`` = sum of occupancy-weighted colours (3), sum of occupancies, sum of box supports."""
        Zf, Yf, Xf = self.fine.shape
        if len(boxes) == 0:
            return boxes.new_zeros(5, Zf, Yf, Xf)
        rgba = torch.einsum("nk,kcpqr->ncpqr", weights, torch.sigmoid(self.prototypes))
        vol = torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:], torch.ones_like(rgba[:, 3:])], 1)
        return warp_volume(vol, self.cube, self.box_transforms(boxes), dst_grid=self.fine, affine=True).sum(0)

    def compose(self, occ_logits: torch.Tensor, colour: torch.Tensor, pasted: torch.Tensor | None) -> torch.Tensor:
        """A fine RGBA room ``(4, Z', Y', X')`` from the net's occupancy logits ``(1, Z, Y, X)`` and colour
        ``(3, Z, Y, X)`` upsampled trilinearly and the :meth:`paste` of its boxes (None: the net's alone)."""
        up = F.interpolate(torch.cat([torch.sigmoid(occ_logits), colour])[None], size=self.fine.shape,
                           mode="trilinear", align_corners=False)[0]  # fmt: skip
        bg, bg_rgb = up[:1], up[1:4]
        if pasted is None:
            return torch.cat([bg_rgb, bg])
        bg = bg * (1 - pasted[4:5].clamp(max=1))  # a box owns its voxels
        weight = bg + pasted[3:4]
        rgb = (bg * bg_rgb + pasted[:3]) / weight.clamp(min=1e-6)
        return torch.cat([rgb, weight.clamp(max=1)])

    def render(self, volume: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fine RGBA rooms ``(B, 4, Z', Y', X')`` composited into the held-out cameras: ``(B, 3, H, W)``."""
        H, W = batch["rgb_out"].shape[-2:]
        fr = sample_frustum(volume, self.fine, batch["K_out"], batch["cam_from_mem_out"], H, W, self.planes)
        return alpha_composite(fr[:, 3:], fr[:, :3])[0]

    def forward(self, batch: dict[str, torch.Tensor], placement: str = "true") -> dict[str, Any]:
        """Fine rooms ``volume (B, 4, Z', Y', X')`` and their ``view``; per room the boxes pasted, their
        ``id_logits`` and the prototypes used, and in training the ``assigned`` ones (min over K).
        ``placement``: ``true`` (the true boxes) or ``detected`` (the mapping net's detections)."""
        vols, ids, logits, assigned, boxes_used = [], [], [], [], []
        for b in range(len(batch["occ_logits"])):
            if placement == "true":
                keep = batch["box_labels"][b] >= 0
                boxes = batch["boxes"][b][keep]
            else:
                boxes = batch["det_boxes"][b][batch["det_scores"][b] > 0]
            boxes = torch.cat([boxes[:, :6], torch.remainder(boxes[:, 6:], math.pi)], 1)  # the head's yaw range
            lg = self.identify(batch["features"][b], boxes)
            if self.training:
                shapes = self.object_shapes(batch["occ_fine"][b], boxes)
                if not bool(self.seeded):
                    self.seed(shapes)
                pick = occupancy_costs(self.prototypes[:, 3], shapes, 1e-4).argmin(1) if len(boxes) else lg.argmax(1)
                assigned.append(pick)
            else:
                pick = lg.argmax(1)
            weights = F.one_hot(pick, self.m.prototypes).to(boxes.dtype)
            vols.append(self.compose(batch["occ_logits"][b], batch["colour"][b], self.paste(boxes, weights)))
            ids.append(pick)
            logits.append(lg)
            boxes_used.append(boxes)
        volume = torch.stack(vols)
        out = {"volume": volume, "view": self.render(volume, batch), "ids": ids, "id_logits": logits,
               "boxes": boxes_used}  # fmt: skip
        if self.training:
            out["assigned"] = assigned
        return out


def compose_loss(model: PrototypePlacer, batch: dict[str, torch.Tensor], cfg: ProtoConfig) -> dict[str, torch.Tensor]:
    """Cross-entropy of the fine occupancy against the exact one, MSE of the composited held-out view, and the
    id head's cross-entropy against the min-over-K assignment."""
    out = model(batch)
    occ = F.binary_cross_entropy(out["volume"][:, 3:].clamp(1e-5, 1 - 1e-5), batch["occ_fine"].float())
    view = F.mse_loss(out["view"], batch["rgb_out"])
    lg, tg = torch.cat(out["id_logits"]), torch.cat(out["assigned"])
    pick = F.cross_entropy(lg, tg) if len(tg) else lg.sum() * 0
    L = cfg.loss
    loss = L.occupancy * occ + L.view * view + L.pick * pick
    used = torch.bincount(tg, minlength=cfg.model.prototypes) if len(tg) else torch.zeros(1)
    return {"loss": loss, "occ_bce": occ.detach(), "view_mse": view.detach(), "pick_ce": pick.detach(),
            "prototypes_used": (used > 0).sum().float()}  # fmt: skip


def _match(pred: torch.Tensor, true: torch.Tensor, labels: torch.Tensor, radius: float) -> torch.Tensor:
    """The true class of each predicted box (nearest true centre within ``radius`` metres in the ground plane),
    -1 where none is near."""
    if len(pred) == 0 or len(true) == 0:
        return torch.full((len(pred),), -1, dtype=torch.long)
    d = torch.cdist(pred[:, [0, 2]].double(), true[:, [0, 2]].double())
    dist, j = d.min(1)
    return torch.where(dist <= radius, labels[j], torch.full_like(labels[j], -1))


@torch.no_grad()
def evaluate_compose(model: PrototypePlacer, cfg: ProtoConfig, device: torch.device) -> dict[str, Any]:
    """Held-out rooms at the fine resolution: occupancy IoU of the composition (at the detections and at the true
    boxes) against the mapping net's own occupancy upsampled, also inside the true boxes alone; the net's IoU at
    its own resolution; the composited held-out view; which true class each prototype's placements land on."""
    from ...viz import image_grid

    rooms = ComposeRooms(cfg, "val")
    K, classes = cfg.model.prototypes, rooms.classes
    sums: dict[str, list[float]] = {}
    table = {p: torch.zeros(K, len(classes) + 1, dtype=torch.long) for p in ("true", "detected")}
    rows = []
    for i in tqdm(range(len(rooms)), desc="eval composition", unit="room", dynamic_ncols=True):
        item = rooms[i]
        batch = {k: (v[None].to(device) if isinstance(v, torch.Tensor) else v) for k, v in item.items()}
        gt = batch["occ_fine"].float()
        true = batch["boxes"][0][batch["box_labels"][0] >= 0]
        labels = batch["box_labels"][0][batch["box_labels"][0] >= 0]
        inside = model.paste(true, torch.zeros(len(true), K, device=device))[4:5][None] > 0  # the true boxes' voxels
        base = model.compose(batch["occ_logits"][0], batch["colour"][0], None)[None]
        res = {"upsampled": base}
        for placement in ("detected", "true"):
            out = model(batch, placement)
            res[placement] = out["volume"]
            lab = labels if placement == "true" else _match(out["boxes"][0], true, labels, cfg.model.match_radius)
            for k, c in zip(out["ids"][0].tolist(), lab.tolist(), strict=True):
                table[placement][k, c if c >= 0 else len(classes)] += 1
            if placement == "detected":
                view = out["view"]
        for name, vol in res.items():
            sums.setdefault(f"{name}/occ_iou", []).append(float(voxel_iou(vol[:, 3:], gt)[0]))
            if bool(inside.any()):
                sums.setdefault(f"{name}/box_iou", []).append(float(voxel_iou(vol[:, 3:], gt, mask=inside)[0]))
        base_view = model.render(base, batch)
        sums.setdefault("upsampled/view_psnr", []).append(float(psnr(base_view.clamp(0, 1), batch["rgb_out"])[0]))
        sums.setdefault("detected/view_psnr", []).append(float(psnr(view.clamp(0, 1), batch["rgb_out"])[0]))
        coarse = torch.sigmoid(batch["occ_logits"])
        sums.setdefault("native/occ_iou", []).append(float(voxel_iou(coarse, batch["occ"])[0]))
        if i < 4:
            rows.append([item["rgb_out"], base_view[0].clamp(0, 1).cpu(), view[0].clamp(0, 1).cpu()])
    out: dict[str, Any] = {k: float(np.mean(v)) for k, v in sums.items()}
    out.update(scenes=len(rooms), prototypes=K, upsample=cfg.model.upsample,
               fine_voxel=float(min(rooms.fine.voxel_size)), native_voxel=float(min(rooms.grid.voxel_size)),
               iou_gain=out["detected/occ_iou"] - out["upsampled/occ_iou"])  # fmt: skip
    for placement, t in table.items():
        for k in range(K):
            n = int(t[k].sum())
            out[f"classes_{placement}/p{k}/placements"] = n
            for c, name in enumerate([*classes, "none"]):
                if placement == "true" and name == "none":
                    continue
                out[f"classes_{placement}/p{k}/{name}"] = float(t[k, c]) / max(n, 1)
        top = t[:, : len(classes)].max(1).values.sum()
        out[f"classes_{placement}/purity"] = float(top) / max(int(t[:, : len(classes)].sum()), 1)
    out["images"] = {"held-out view | the net's occupancy upsampled, composited | with the prototypes pasted":
                     image_grid(rows, scale=2)}  # fmt: skip
    return out
