"""The feature net's objectives: occupancy of the frame from its memory, and the synthetic-motion flow (the
frame's views re-fused as if the world had moved by a random rigid motion; exact, no resampling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import invert_rigid
from .config import DynamicConfig
from .motion import flow_loss, random_rigid_motion, rigid_flow

__all__ = ["dynamic_losses"]


def dynamic_losses(model: nn.Module, batch: dict[str, torch.Tensor], cfg: DynamicConfig) -> dict[str, torch.Tensor]:
    """``occupancy`` (binary cross-entropy of every voxel against the true occupancy) and ``flow`` (end-point
    error in voxels of the soft-argmax correlation flow under a random rigid motion, on the voxels a depth point
    fell in), weighted by ``occupancy_weight`` and ``flow.weight``."""
    core = getattr(model, "module", model)
    out = model(batch)
    terms = {"occupancy": F.binary_cross_entropy_with_logits(out["occupancy"], batch["occ"].to(out["occupancy"]))}
    loss = cfg.occupancy_weight * terms["occupancy"]
    fc = cfg.flow
    if fc.weight > 0:
        B = batch["rgb"].shape[0]
        motion = random_rigid_motion(B, max_yaw=fc.max_yaw, max_shift=fc.max_shift).to(batch["rgb"].device)
        # the memory of the moved world: the same views, taken by cameras moved the opposite way
        moved = {**batch, "cam_from_grid": (batch["cam_from_grid"].double() @ invert_rigid(motion)[:, None]).to(
            batch["cam_from_grid"].dtype)}  # fmt: skip
        feat1 = core.encode(core.memory(moved))["features"]
        flow, inside = rigid_flow(core.grid, motion)
        surface = out["memory"][:, 5:6] > 0  # carved: a depth point fell in the voxel
        fl = flow_loss(out["features"], feat1, flow.to(feat1.dtype), inside & surface, radius=fc.radius,
                       samples=fc.samples, temperature=fc.temperature)  # fmt: skip
        terms["flow_epe"] = fl["loss"]
        loss = loss + fc.weight * fl["loss"]
    return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}
