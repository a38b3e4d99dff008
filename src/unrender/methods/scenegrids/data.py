"""The rooms the scene grids fit: a mapping model's held-out rooms, taken through the method registry (the
mapping method's own dataset, so the rooms, views, memory frame and exact occupancy are the ones its
evaluation scores), plus each room's input rays and the occupancy carved from its input depths."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ...geometry import VoxelGrid, camera_rays, carve_depth
from ...weights import trained_model
from .config import GridsConfig

__all__ = ["RoomViews", "collate", "memory_grid"]


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


class RoomViews(Dataset):
    """Rooms ``first .. first + count - 1`` of the held-out split; item ``i`` is room ``first + i`` as the
    mapping dataset gives it (``room``), with ``scene`` (its index in the bank: ``first + i``), its input rays
    ``origins``/``directions (N H W, 3)``, colours ``rgb`` and z-depths ``depth (N H W)`` and the ray's z per
    unit of distance ``z_per_t``, and ``carved``/``known (Z, Y, X)`` from the input depths only; with
    ``loss.prior`` also the mapping net's ``prior_occ (Z, Y, X)`` and ``prior_rgb (Z, Y, X, 3)`` on it and the
    voxels no input ray passed, ``unseen (U, 3)`` (z, y, x indices)."""

    def __init__(self, cfg: GridsConfig, first: int, count: int):
        self.rooms, self.grid = _rooms(cfg.data.mapping, Path(cfg.data.root))
        if first + count > len(self.rooms):
            raise ValueError(f"scene grids: rooms {first}..{first + count - 1} asked for, the mapping model's "
                             f"held-out split has {len(self.rooms)}")  # fmt: skip
        self.first, self.count = first, count
        self.mapping, self.prior = cfg.data.mapping, cfg.loss.prior > 0
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
                "room": room,
            }
            if self.prior:
                v = feedforward_volumes(trained_model("mapping", self.mapping), room)
                if "colour" not in v:
                    raise ValueError("scene grids: loss.prior needs a mapping net with a colour volume "
                                     "(its model.colour_volume)")  # fmt: skip
                unseen = (self._cache[i]["known"][0] == 0).nonzero()  # (U, 3): where the prior applies
                self._cache[i].update(prior_occ=v["occ"], prior_rgb=v["colour"], unseen=unseen)
        return self._cache[i]


def collate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rooms stay a list (each scene is rendered through its own grid)."""
    return items
