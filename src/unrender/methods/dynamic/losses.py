"""The feature net's objectives: occupancy of the frame from its memory, and the synthetic-motion flow (the
frame's views re-fused as if the world had moved by a random rigid motion; exact, no resampling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import invert_rigid, make_rigid
from .config import DynamicConfig
from .motion import flow_loss, move_chunk, random_chunks, random_rigid_motion, rigid_flow

__all__ = ["dynamic_losses", "crop_columns"]


def crop_columns(depth: torch.Tensor, most: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Depth maps ``(B, V, 1, H, W)`` with a band of columns at a random side of each view dropped (depth 0: no
    point), up to ``most`` of the width (uniform)."""
    B, V, _, _, W = depth.shape
    width = (torch.rand(B, V, generator=generator) * most * W).long().to(depth.device)
    left = torch.rand(B, V, generator=generator).to(depth.device) < 0.5
    cols = torch.arange(W, device=depth.device)
    drop = torch.where(left[..., None], cols < width[..., None], cols >= W - width[..., None])  # (B, V, W)
    return depth.masked_fill(drop[:, :, None, None, :], 0)


def dynamic_losses(model: nn.Module, batch: dict[str, torch.Tensor], cfg: DynamicConfig) -> dict[str, torch.Tensor]:
    """``occupancy`` (binary cross-entropy of every voxel against the true occupancy) and ``flow`` (end-point
    error in voxels of the soft-argmax correlation flow under a random rigid motion, on the voxels a depth point
    fell in; with ``flow.objects``, part of them on a piece of the scene that moves on its own), weighted by
    ``occupancy_weight`` and ``flow.weight``."""
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
        if fc.crop > 0:  # the moved world seen by narrower cameras: where the seen part ends moves on its own
            moved["depth"] = crop_columns(moved["depth"], fc.crop)
        memory1 = core.memory(moved)
        surface = out["memory"][:, 5:6] > 0  # carved: a depth point fell in the voxel
        flow, inside = rigid_flow(core.grid, motion)
        chunk = torch.zeros_like(surface)
        if fc.objects > 0:
            chunk, centre = random_chunks(surface, core.grid, size=fc.object_size, above=0.2)
            own = random_rigid_motion(B, max_yaw=fc.max_yaw, max_shift=fc.object_shift).to(centre)
            eye = torch.eye(3, dtype=centre.dtype, device=centre.device).expand(B, 3, 3)
            own = make_rigid(eye, centre) @ own @ make_rigid(eye, -centre)  # turns about the piece's centre
            mc = move_chunk(out["memory"], memory1, core.grid, motion, chunk, own)
            memory1, flow, inside = mc["moved"], mc["flow"], mc["inside"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not fc.detach_moved):
            feat1 = core.encode(memory1)["features"]
        flow, valid = flow.to(feat1.dtype), inside & surface
        share = fc.objects if bool(chunk.any()) else 0.0
        scene = flow_loss(out["features"], feat1, flow, valid & ~chunk, radius=fc.radius,
                          samples=max(1, round(fc.samples * (1 - share))), temperature=fc.temperature)  # fmt: skip
        epe = scene["loss"]
        if share > 0:
            piece = flow_loss(out["features"], feat1, flow, valid & chunk, radius=fc.radius,
                              samples=max(1, round(fc.samples * share)), temperature=fc.temperature)  # fmt: skip
            if piece["count"] > 0:
                terms["flow_epe_object"] = piece["loss"]
                epe = (1 - share) * epe + share * piece["loss"]
        terms["flow_epe"] = epe
        loss = loss + fc.weight * epe
    return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}
