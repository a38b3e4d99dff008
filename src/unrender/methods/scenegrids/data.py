"""The rooms the scene grids fit: a mapping model's held-out rooms, taken through the method registry (the
mapping method's own dataset, so the rooms, views, memory frame and exact occupancy are the ones its
evaluation scores), plus each room's input rays and the occupancy carved from its input depths."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...geometry import (
    VoxelGrid,
    camera_rays,
    carve_depth,
    depth_to_points,
    invert_rigid,
    look_at,
    project_points,
    transform_points,
)
from ...weights import trained_model
from .config import GridsConfig

__all__ = ["RoomViews", "collate", "covered_pixels", "memory_grid", "ring_cameras"]


def memory_grid(cfg: GridsConfig) -> VoxelGrid:
    """The mapping memory's grid (the box the scene grids cover), from the mapping model's config."""
    from ...weights import trained_config

    d = trained_config("mapping", cfg.data.mapping).data
    return VoxelGrid(d.bounds_min, d.bounds_max, d.resolution)


@lru_cache(maxsize=2)
def _rooms(mapping: Path | None, root: Path):
    from ...weights import trained_dataset

    mcfg, rooms = trained_dataset("mapping", mapping, "val", root=root)
    return rooms, VoxelGrid(mcfg.data.bounds_min, mcfg.data.bounds_max, mcfg.data.resolution)


@torch.no_grad()
def feedforward_volumes(net, room: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The mapping net's outputs on one room (from its input views): all of them (``out``), its occupancy
    probability ``occ (Z, Y, X)`` and, if it has a colour volume, ``colour (Z, Y, X, 3)``."""
    dev = next(net.parameters()).device
    o = net({k: v[None].to(dev) for k, v in room.items() if isinstance(v, torch.Tensor)})
    v = {"out": o, "occ": torch.sigmoid(o["occ_logits"][0, 0].float()).cpu()}
    if "colour" in o:
        v["colour"] = o["colour"][0].float().permute(1, 2, 3, 0).cpu()
    return v


def ring_cameras(cam_from_mem: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` cameras ``cam_from_mem (count, 4, 4)`` placed like the input cameras ``cam_from_mem (N, 4, 4)``
    of a capture that circles a place and looks across it (the rooms' views): the centre is the point nearest to
    every input optical axis in the horizontal (x, z) plane (least squares); the new eyes sit at random angles
    around it, at radii and heights drawn in the inputs' ranges, and look at the centre at a height drawn
    between the inputs' axes' heights there. Needs at least two non-parallel input axes."""
    world = invert_rigid(cam_from_mem.double())
    eye, fwd = world[:, :3, 3], world[:, :3, 2]
    p, f = eye[:, [0, 2]], fwd[:, [0, 2]]
    f = f / f.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    A = torch.eye(2, dtype=p.dtype) - f[:, :, None] * f[:, None, :]  # (N, 2, 2) projectors off each axis
    if len(p) < 2 or torch.linalg.matrix_rank(A.sum(0)) < 2:
        raise ValueError("ring_cameras: needs at least two input cameras whose horizontal axes are not parallel")
    c = torch.linalg.solve(A.sum(0), (A @ p[:, :, None]).sum(0))[:, 0]
    t = ((c - p) * f).sum(-1) / fwd[:, [0, 2]].norm(dim=-1).clamp(min=1e-9)  # distance along each axis to c
    aim_y = eye[:, 1] + t * fwd[:, 1]
    radius = (p - c).norm(dim=-1)

    def draw(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(count, generator=generator, dtype=torch.float64)

    a = 2 * torch.pi * torch.rand(count, generator=generator, dtype=torch.float64)
    r = draw(radius.min(), radius.max())
    eyes = torch.stack([c[0] + r * torch.cos(a), draw(eye[:, 1].min(), eye[:, 1].max()), c[1] + r * torch.sin(a)], -1)
    targets = torch.stack([c[0].expand(count), draw(aim_y.min(), aim_y.max()), c[1].expand(count)], -1)
    return look_at(eyes, targets)


def covered_pixels(depth: torch.Tensor, K: torch.Tensor, cam_from_mem: torch.Tensor, K_new: torch.Tensor,
                   cam_from_mem_new: torch.Tensor, H: int, W: int) -> torch.Tensor:  # fmt: skip
    """``(P, H, W)`` bool: the pixels of the ``P`` new cameras that see a surface point of the input views
    (``depth (N, 1, h, w)`` z-depths, 0 where nothing was hit, ``K``/``cam_from_mem (N, ...)``): each input
    pixel's point projected into every new camera, the hit pixels grown by one pixel (the points are splats
    of one input pixel each)."""
    pts = depth_to_points(depth.double(), K.double())  # (N, h, w, 3)
    pts = transform_points(invert_rigid(cam_from_mem.double()), pts.flatten(1, 2))[depth.flatten(1).gt(0)]
    P = len(K_new)
    uv, _, front = project_points(transform_points(cam_from_mem_new.double(), pts), K_new.double())  # (P, M, ...)
    ij = uv.round().long()
    ok = front & (ij[..., 0] >= 0) & (ij[..., 0] < W) & (ij[..., 1] >= 0) & (ij[..., 1] < H)
    cam = torch.arange(P)[:, None].expand_as(ok)
    out = torch.zeros(P * H * W, dtype=torch.bool)
    out[(cam * H * W + ij[..., 1] * W + ij[..., 0])[ok]] = True
    grown = F.max_pool2d(out.view(P, 1, H, W).float(), 3, stride=1, padding=1)
    return grown[:, 0] > 0


class RoomViews(Dataset):
    """Rooms ``first .. first + count - 1`` of the held-out split; item ``i`` is room ``first + i`` as the
    mapping dataset gives it (``room``), with ``scene`` (its index in the bank: ``first + i``), its input rays
    ``origins``/``directions (N H W, 3)``, colours ``rgb`` and z-depths ``depth (N H W)`` and the ray's z per
    unit of distance ``z_per_t``, ``carved``/``known (Z, Y, X)`` from the input depths only, and
    ``heldout_seen (H, W)``, the held-out view's pixels an input view saw (:func:`covered_pixels`); with
    ``loss.prior`` also the mapping net's ``prior_occ (Z, Y, X)`` and ``prior_rgb (Z, Y, X, 3)`` on it and the
    voxels no input ray passed, ``unseen (U, 3)`` (z, y, x indices); with ``loss.net_views`` the mapping net's
    views from ``data.pseudo_views`` :func:`ring_cameras`, kept on the pixels no input view saw
    (:func:`covered_pixels`): ``view_origins``/``view_directions (V, 3)`` and ``view_rgb (V, 3)``."""

    def __init__(self, cfg: GridsConfig, first: int, count: int):
        self.rooms, self.grid = _rooms(cfg.data.mapping, Path(cfg.data.root))
        if first + count > len(self.rooms):
            raise ValueError(f"scene grids: rooms {first}..{first + count - 1} asked for, the mapping model's "
                             f"held-out split has {len(self.rooms)}")  # fmt: skip
        self.first, self.count = first, count
        self.mapping, self.prior = cfg.data.mapping, cfg.loss.prior > 0
        self.views = cfg.data.pseudo_views if cfg.loss.net_views > 0 else 0
        if cfg.loss.net_views > 0 and cfg.data.pseudo_views < 1:
            raise ValueError(f"scene grids: --loss.net-views {cfg.loss.net_views:g} needs --data.pseudo-views >= 1, "
                             f"got {cfg.data.pseudo_views}")  # fmt: skip
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.count:
            raise IndexError(f"RoomViews: index {i} out of range for {self.count} rooms")
        if i not in self._cache:
            room = self.rooms[self.first + i]
            K, T = room["K_in"].double(), room["cam_from_mem_in"].double()
            H, W = room["rgb_in"].shape[-2:]
            o, d = camera_rays(K, T, H, W)  # (N, H, W, 3)
            axis = torch.linalg.inv(T)[:, None, None, :3, 2]
            carved, free = carve_depth(self.grid, room["depth_in"].double(), K, T)
            self._cache[i] = {
                "scene": self.first + i,
                "origins": o.reshape(-1, 3).float(),
                "directions": d.reshape(-1, 3).float(),
                "z_per_t": (d * axis).sum(-1).reshape(-1).float(),
                "rgb": room["rgb_in"].permute(0, 2, 3, 1).reshape(-1, 3).float(),
                "depth": room["depth_in"].reshape(-1).float(),
                "carved": carved.float(),
                "known": ((carved + free) > 0).float(),
                "heldout_seen": covered_pixels(room["depth_in"], K, T, room["K_out"][None],
                                               room["cam_from_mem_out"][None], *room["rgb_out"].shape[-2:])[0],
                "room": room,
            }  # fmt: skip
            if self.prior:
                v = feedforward_volumes(trained_model("mapping", self.mapping), room)
                if "colour" not in v:
                    raise ValueError("scene grids: loss.prior needs a mapping net with a colour volume "
                                     "(its model.colour_volume)")  # fmt: skip
                unseen = (self._cache[i]["known"][0] == 0).nonzero()  # (U, 3): where the prior applies
                self._cache[i].update(prior_occ=v["occ"], prior_rgb=v["colour"], unseen=unseen)
            if self.views:
                self._cache[i].update(self._pseudo_views(room, self.first + i))
        return self._cache[i]

    def _pseudo_views(self, room: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
        """The mapping net's views of ``room`` from ring cameras (drawn with ``seed``), on their pixels that no
        input view saw: the net's completion of what lies outside the input views, as rays and colours."""
        H, W = room["rgb_out"].shape[-2:]
        T = ring_cameras(room["cam_from_mem_in"], self.views, torch.Generator().manual_seed(seed))
        K = room["K_in"][:1].expand(self.views, 3, 3)
        net = trained_model("mapping", self.mapping)
        dev = next(net.parameters()).device
        batch = {k: v[None].to(dev) for k, v in room.items() if torch.is_tensor(v)}
        with torch.no_grad():
            rgb = net.render_views(batch, K.float().to(dev), T.float().to(dev), H, W)
        rgb = rgb.float().cpu().permute(0, 2, 3, 1)  # (P, H, W, 3)
        keep = ~covered_pixels(room["depth_in"], room["K_in"], room["cam_from_mem_in"], K, T, H, W)
        o, d = camera_rays(K.double(), T, H, W)
        return {"view_origins": o[keep].float(), "view_directions": d[keep].float(), "view_rgb": rgb[keep]}


def collate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rooms stay a list (each scene is rendered through its own grid)."""
    return items
