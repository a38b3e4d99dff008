"""``prototypes``: scenes composed from a learned dictionary of 3D RGBA prototypes chosen from a partial
view. Two stages (``model.stage``): ``debug`` (K rooms, K whole-room prototypes, a classifier whose softmax
weights them, with the variants that keep one prototype from taking over) and ``compose`` (small prototypes
pasted at a frozen mapping net's boxes into a finer grid than its own, :mod:`.compose`)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ...geometry import VoxelGrid, carve_depth
from ...metrics import psnr, voxel_iou
from ..base import Method
from .compose import ComposeRooms, PrototypePlacer, compose_loss, evaluate_compose
from .config import PRESETS, ProtoConfig
from .model import PrototypeComposer

KEYS = ("occ", "rgb_out", "K_out", "cam_from_mem_out")


class Rooms(Dataset):
    """The first ``data.scenes`` held-out rooms of the mapping model: ``carved``/``known (1, Z, Y, X)`` from
    the input depths (the partial view), ``occ``, the held-out view and its camera, and ``scene`` (its index)."""

    def __init__(self, cfg: ProtoConfig):
        from ...weights import trained_dataset

        mcfg, rooms = trained_dataset("mapping", cfg.data.mapping, "val", root=cfg.data.root)
        if cfg.data.scenes > len(rooms):
            raise ValueError(f"prototypes: {cfg.data.scenes} rooms asked for, the mapping split has {len(rooms)}")
        self.grid = VoxelGrid(mcfg.data.bounds_min, mcfg.data.bounds_max, mcfg.data.resolution)
        self.items = []
        for i in range(cfg.data.scenes):
            r = rooms[i]
            carved, free = carve_depth(self.grid, r["depth_in"].double(), r["K_in"].double(),
                                       r["cam_from_mem_in"].double())  # fmt: skip
            item = {k: r[k] for k in KEYS}
            item.update(carved=carved.float(), known=((carved + free) > 0).float(), scene=i)
            self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def build_model(cfg: ProtoConfig) -> PrototypeComposer | PrototypePlacer:
    from ...weights import trained_config

    mcfg = trained_config("mapping", cfg.data.mapping)
    d = mcfg.data
    grid = VoxelGrid(d.bounds_min, d.bounds_max, d.resolution)
    if cfg.model.stage == "compose":
        return PrototypePlacer(cfg, grid, mcfg.model.channels[0])
    return PrototypeComposer(cfg, grid)


def build_dataset(cfg: ProtoConfig, split: str) -> Rooms | ComposeRooms:
    return ComposeRooms(cfg, "train") if cfg.model.stage == "compose" else Rooms(cfg)


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: ProtoConfig) -> dict[str, torch.Tensor]:
    """``debug``: occupancy cross-entropy against the exact occupancy and MSE of the composited held-out view
    (plus the selection variants' terms); ``compose``: :func:`~.compose.compose_loss`."""
    if cfg.model.stage == "compose":
        return compose_loss(model, batch, cfg)
    m = getattr(model, "module", model)
    out = model(batch)
    occ = F.binary_cross_entropy(out["volume"][:, 3:].clamp(1e-5, 1 - 1e-5), batch["occ"])
    view = F.mse_loss(out["view"], batch["rgb_out"])
    if m.training:
        m.step += 1
    top = out["weights"].max(-1).values.mean()  # the mean weight of each room's first prototype
    w = out["weights"]
    mean = w.mean(0)
    own = -(w * torch.log(w.clamp(min=1e-9))).sum(-1).mean()
    balance = math.log(mean.numel()) + (mean * torch.log(mean.clamp(min=1e-9))).sum() + own
    loss = cfg.loss.occupancy * occ + cfg.loss.view * view + cfg.loss.balance * balance
    parts = {
        "occ_bce": occ.detach(),
        "view_mse": view.detach(),
        "top_weight": top.detach(),
        "balance": balance.detach(),
    }
    if m.training and cfg.model.selection == "sinkhorn":  # the plain softmax learns the balanced weights (SwAV)
        swap = -(w.detach() * F.log_softmax(out["logits"] / cfg.model.temperature, -1)).sum(-1).mean()
        loss = loss + swap
        parts["swap"] = swap.detach()
    if "assigned" in out:  # the classifier learns the assignment
        pick = F.cross_entropy(out["logits"] / cfg.model.temperature, out["assigned"])
        loss = loss + pick
        parts["pick_ce"] = pick.detach()
    return {"loss": loss, **parts}


def evaluate(model: nn.Module, cfg: ProtoConfig, device: torch.device) -> dict[str, Any]:
    """``debug``: which prototype each room picks (plain softmax): how many distinct ones, the largest share one
    takes, the mean top weight; occupancy IoU and view PSNR with the soft weights and with the picked one alone.
    ``compose``: :func:`~.compose.evaluate_compose`."""
    from ...viz import image_grid

    if cfg.model.stage == "compose":
        return evaluate_compose(model, cfg, device)

    rooms = Rooms(cfg)
    batch = {k: torch.stack([torch.as_tensor(it[k]) for it in rooms.items]).to(device) for k in (*KEYS, "carved",
             "known")}  # fmt: skip
    out = model(batch)
    w = out["weights"]
    pick = w.argmax(-1)
    counts = torch.bincount(pick, minlength=w.shape[-1])
    one_hot = F.one_hot(pick, w.shape[-1]).to(w.dtype)
    res: dict[str, Any] = {"scenes": len(rooms), "prototypes": w.shape[-1], "distinct_picks": int((counts > 0).sum()),
                           "takeover_share": float(counts.max()) / len(rooms),
                           "top_weight": float(w.max(-1).values.mean())}  # fmt: skip
    for name, weights in (("soft", w), ("picked", one_hot)):
        vol = model.compose(weights)
        res[f"{name}/occ_iou"] = float(voxel_iou(vol[:, 3:].cpu(), batch["occ"].cpu()).mean())
        if name == "soft":
            res["soft/view_psnr"] = float(psnr(out["view"].clamp(0, 1).cpu(), batch["rgb_out"].cpu()).mean())
    res["picks"] = " ".join(str(int(p)) for p in pick)
    rows = [[batch["rgb_out"][i].cpu(), out["view"][i].clamp(0, 1).cpu()] for i in range(min(4, len(rooms)))]
    res["images"] = {"held-out view | composed from the weighted prototypes": image_grid(rows, scale=2)}
    return res


METHOD = Method(
    name="prototypes",
    description="Scenes composed from learned 3D RGBA prototypes: the K-scene debugging stage, and small "
    "prototypes pasted at a mapping net's boxes into a finer grid.",
    config=ProtoConfig,
    presets=PRESETS,
    default_preset="debug",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate,
)
