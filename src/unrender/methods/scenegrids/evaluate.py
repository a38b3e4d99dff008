"""Scene grids scored on their rooms' held-out views and exact occupancy, next to the feed-forward mapping
net on the same rooms; then new rooms fitted with the decoder frozen (held-out PSNR every few steps)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...geometry import camera_rays
from ...metrics import psnr, ssim, voxel_iou
from ...weights import trained_model
from .bank import SceneBank
from .config import GridsConfig
from .data import RoomViews, feedforward_volumes
from .model import SceneGridModel

__all__ = ["evaluate_scene_grids", "fit_scene", "scene_losses", "score_room", "split_psnr", "total_variation"]


def total_variation(grid: torch.Tensor, block: int = 0) -> torch.Tensor:
    """Mean squared difference of neighbouring voxels of ``grid (C, Z, Y, X)``; with ``block`` > 0 over one
    random ``block^3`` part of it (as Plenoxels regularises a random subset: about the same in expectation, voxels
    near the grid's faces counted less often; a large grid's whole-grid term would cost more than the rendering)."""
    if block > 0:
        corner = [int(torch.randint(max(1, n - block + 1), ())) for n in grid.shape[1:]]
        grid = grid[:, corner[0] : corner[0] + block, corner[1] : corner[1] + block, corner[2] : corner[2] + block]
    return sum(grid.diff(dim=k).pow(2).mean() for k in (1, 2, 3))


def scene_losses(model: SceneGridModel, grid: torch.Tensor, item: dict[str, Any], cfg: GridsConfig) -> dict:
    """One scene's losses on ``loss.rays`` random input rays: colour MSE, z-depth L1 (valid pixels), the
    opacity of rays that hit nothing (depth 0) pulled to 0, occupancy cross-entropy on the carved-known voxels
    of the mapping grid, the grid's total variation, with ``loss.prior`` the feed-forward prior, and with
    ``loss.net_views`` the mapping net's colours on ``loss.view_rays`` rays of its views where no input looked."""
    L = cfg.loss
    idx = torch.randint(len(item["rgb"]), (L.rays,), device=item["rgb"].device)
    out = model(grid, item["origins"][idx], item["directions"][idx], jitter=True)
    mse = F.mse_loss(out["rgb"], item["rgb"][idx])
    d = item["depth"][idx]
    valid = (d > 0).float()
    z = out["distance"][:, 0] * item["z_per_t"][idx]
    depth = ((z - d).abs() * valid).sum() / valid.sum().clamp(min=1)
    none = 1 - valid  # nothing hit: the ray stays empty
    empty = -(torch.log1p(-out["opacity"][:, 0].clamp(max=1 - 1e-5)) * none).sum() / none.sum().clamp(min=1)
    known = item["known"][0] > 0
    p = model.occupancy(grid, model.centres[known]).clamp(1e-5, 1 - 1e-5)
    occ = F.binary_cross_entropy(p, item["carved"][0][known])
    tv = total_variation(grid, L.tv_block)
    loss = L.rgb * mse + L.depth * depth + L.occupancy * occ + L.tv * tv + L.empty * empty
    out = {"mse": mse.detach(), "depth_l1": depth.detach(), "occ_bce": occ.detach(), "tv": tv.detach(),
           "empty": empty.detach()}  # fmt: skip
    unseen = item["unseen"] if L.prior > 0 else []
    if len(unseen):  # the feed-forward net's guess where the input views saw nothing
        pick = unseen[torch.randint(len(unseen), (min(L.prior_voxels, len(unseen)),), device=unseen.device)]
        z, y, x = pick.unbind(-1)
        p, rgb = model.decode(grid, model.centres[z, y, x])
        q = item["prior_occ"][z, y, x]
        prior = F.binary_cross_entropy(p.clamp(1e-5, 1 - 1e-5), q)
        prior = prior + (q[:, None] * (rgb - item["prior_rgb"][z, y, x]).pow(2)).mean()
        loss = loss + L.prior * prior
        out["prior"] = prior.detach()
    if L.net_views > 0 and len(item["view_rgb"]):  # the net's views where no input view looked
        j = torch.randint(len(item["view_rgb"]), (L.view_rays,), device=item["view_rgb"].device)
        seen = model(grid, item["view_origins"][j], item["view_directions"][j], jitter=True)
        views = F.mse_loss(seen["rgb"], item["view_rgb"][j])
        loss = loss + L.net_views * views
        out["net_views"] = views.detach()
    return {"loss": loss, **out}


@torch.no_grad()
def score_room(model: SceneGridModel, grid: torch.Tensor, room: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Held-out view PSNR/SSIM and occupancy IoU (mapping voxel centres, exact occupancy) of one fitted grid."""
    H, W = room["rgb_out"].shape[-2:]
    o, d = camera_rays(room["K_out"].double(), room["cam_from_mem_out"].double(), H, W)
    out = model(grid, o.reshape(-1, 3).float(), d.reshape(-1, 3).float())
    img = out["rgb"].T.reshape(1, 3, H, W).clamp(0, 1)
    target = room["rgb_out"][None].float()
    occ = model.occupancy(grid, model.centres)  # (Z, Y, X)
    iou = voxel_iou(occ[None, None].cpu(), room["occ"][None].cpu())[0]
    return {"psnr": float(psnr(img, target)[0]), "ssim": float(ssim(img, target)[0]), "occ_iou": float(iou),
            "image": img[0]}  # fmt: skip


def fit_scene(model: SceneGridModel, bank: SceneBank, item: dict[str, Any], cfg: GridsConfig, steps: int,
              every: int) -> list[tuple[int, float]]:  # fmt: skip
    """Fit ``item``'s grid in ``bank`` for ``steps`` steps with the decoder frozen; ``(step, held-out PSNR)``
    at step 0 and every ``every`` steps."""
    curve = []
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for s in range(steps + 1):
            if s % every == 0 or s == steps:
                curve.append((s, score_room(model, bank.get(item["scene"]), item["room"])["psnr"]))
            if s < steps:
                with torch.enable_grad():
                    scene_losses(model, bank.get(item["scene"]), item, cfg)["loss"].backward()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return curve


def split_psnr(image: torch.Tensor, target: torch.Tensor, seen: torch.Tensor) -> dict[str, float]:
    """PSNR of ``image (3, H, W)`` against ``target`` on the held-out view's pixels an input view saw
    (``seen (H, W)``, a room's ``heldout_seen``) and on the rest (NaN where a part is empty)."""
    image, target = image[None].float().cpu(), target[None].float().cpu()
    return {"psnr_seen": float(psnr(image, target, mask=seen[None])[0]),
            "psnr_unseen": float(psnr(image, target, mask=~seen[None])[0])}  # fmt: skip


def _feedforward(cfg: GridsConfig, items: list[dict[str, Any]], device: torch.device) -> dict[str, list]:
    """The mapping net's held-out view PSNR/SSIM (also apart where an input looked and where none did) and
    occupancy IoU on the same rooms (:class:`RoomViews` items)."""
    net = trained_model("mapping", cfg.data.mapping, device.type)
    out: dict[str, list] = {"psnr": [], "ssim": [], "occ_iou": [], "psnr_seen": [], "psnr_unseen": [], "image": []}
    with torch.no_grad():
        for item in items:
            room = item["room"]
            o = feedforward_volumes(net, room)["out"]
            pred, target = o["rgb_pred"].float().cpu().clamp(0, 1), room["rgb_out"][None].float()
            out["psnr"].append(float(psnr(pred, target)[0]))
            for k, v in split_psnr(pred[0], target[0], item["heldout_seen"]).items():
                out[k].append(v)
            out["ssim"].append(float(ssim(pred, target)[0]))
            prob = torch.sigmoid(o["occ_logits"].float()).cpu()
            out["occ_iou"].append(float(voxel_iou(prob, room["occ"][None].cpu())[0]))
            out["image"].append(pred[0])
    return out


def evaluate_scene_grids(model: SceneGridModel, cfg: GridsConfig, device: torch.device) -> dict[str, Any]:
    """The fitted rooms (``data.scenes``): held-out view PSNR/SSIM and occupancy IoU of the grids and of the
    feed-forward mapping net; then ``data.new_scenes`` more rooms fitted from fresh grids with the decoder
    frozen, their held-out PSNR every ``eval.every`` steps, and the first step at which their mean reaches
    the feed-forward net's on them."""
    from ...viz import image_grid

    d, e = cfg.data, cfg.eval
    fitted = RoomViews(cfg, 0, d.scenes)
    rows, items = [], [fitted[i] for i in range(len(fitted))]
    grids: dict[str, list] = {"psnr": [], "ssim": [], "occ_iou": [], "psnr_seen": [], "psnr_unseen": []}
    for i, item in enumerate(tqdm(items, desc="eval scene grids", unit="room", dynamic_ncols=True)):
        s = score_room(model, model.bank.get(item["scene"]), item["room"])
        s.update(split_psnr(s["image"], item["room"]["rgb_out"], item["heldout_seen"]))
        for k in grids:
            grids[k].append(s[k])
        if i < 4:
            rows.append([item["room"]["rgb_in"][0], item["room"]["rgb_out"], s["image"].cpu()])
    ff = _feedforward(cfg, items, device)
    for row, img in zip(rows, ff["image"], strict=False):
        row.append(img)
    out: dict[str, Any] = {f"grids/{k}": float(np.nanmean(v)) for k, v in grids.items()}
    out.update({f"feedforward/{k}": float(np.nanmean(v)) for k, v in ff.items() if k != "image"})
    out["heldout_unseen_fraction"] = float(np.mean([(~it["heldout_seen"]).float().mean() for it in items]))
    out["scenes"] = len(fitted)
    out["psnr_gain_over_feedforward"] = out["grids/psnr"] - out["feedforward/psnr"]
    if d.new_scenes:
        new = RoomViews(cfg, d.scenes, d.new_scenes)
        with tempfile.TemporaryDirectory() as tmp:  # the run's own bank is left as it was
            bank = SceneBank(Path(tmp), d.scenes + d.new_scenes, model.shape, lr=cfg.loss.scene_lr,
                             init_std=cfg.model.init_std)  # fmt: skip
            bar = tqdm(range(len(new)), desc="fit new rooms", unit="room", dynamic_ncols=True)
            curves = [fit_scene(model, bank, new[i], cfg, e.new_steps, e.every) for i in bar]
        steps = [s for s, _ in curves[0]]
        mean = [float(np.mean([c[k][1] for c in curves])) for k in range(len(steps))]
        target = float(np.mean(_feedforward(cfg, [new[i] for i in range(len(new))], device)["psnr"]))
        reached = [s for s, p in zip(steps, mean, strict=True) if p >= target]
        out.update({"new/scenes": len(new), "new/feedforward_psnr": target, "new/psnr_start": mean[0],
                    "new/psnr_end": mean[-1], "new/steps": steps[-1],
                    "new/reached_feedforward": float(bool(reached))})  # fmt: skip
        if reached:
            out["new/steps_to_feedforward"] = float(reached[0])
        for s, p in zip(steps, mean, strict=True):
            out[f"new/psnr@{s}"] = p
    out["images"] = {"input view 0 | held-out view | scene grid | feed-forward mapping net": image_grid(rows, scale=2)}
    return out
