"""Evaluation of novel-view synthesis: PSNR, SSIM (and LPIPS when the user supplies its weights)
per scene, then averaged, next to two baselines on the same views."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import default_collate

from ...geometry import invert_rigid
from ...metrics.image import psnr, ssim
from ...render.splat import forward_warp
from .config import NVSConfig
from .data import NVSDataset

__all__ = ["evaluate_nvs", "nearest_view", "reprojected_view"]


def _order(cam_from_world: torch.Tensor, target_cam_from_world: torch.Tensor) -> torch.Tensor:
    """Input views ``(V,)`` ordered by the distance of their camera centre to the target's."""
    c = invert_rigid(cam_from_world)[:, :3, 3]
    t = invert_rigid(target_cam_from_world)[:3, 3]
    return (c - t).norm(dim=-1).argsort()


def nearest_view(sample: dict[str, torch.Tensor], t: int) -> torch.Tensor:
    """Baseline: the input image whose camera centre is nearest target ``t``'s, ``(3, H, W)``."""
    return sample["images"][_order(sample["cam_from_world"], sample["target_cam_from_world"][t])[0]]


def reprojected_view(sample: dict[str, torch.Tensor], t: int) -> torch.Tensor:
    """Baseline: the input views splatted into target ``t`` with their ground-truth depth, nearest
    view first; pixels no input reaches get the nearest view's background colour (the median of its
    pixels without depth), ``(3, H, W)``."""
    s = {k: v.float().cpu() for k, v in sample.items() if v.is_floating_point()}
    H, W = s["images"].shape[-2:]
    order = _order(s["cam_from_world"], s["target_cam_from_world"][t]).tolist()
    out = torch.zeros(3, H, W)
    filled = torch.zeros(1, H, W, dtype=torch.bool)
    for v in order:
        img, hit = forward_warp(s["images"][v], s["depth"][v], s["K"][v], s["cam_from_world"][v], s["target_K"][t],
                                s["target_cam_from_world"][t], H, W)  # fmt: skip
        out = torch.where(hit & ~filled, img, out)
        filled |= hit
    near = s["images"][order[0]]
    bg_mask = s["depth"][order[0]][0] <= 0
    background = near[:, bg_mask].median(1).values[:, None, None] if bg_mask.any() else near
    return torch.where(filled, out, background.expand(3, H, W))


def evaluate_nvs(
    model: torch.nn.Module, cfg: NVSConfig, device: torch.device, *, dataset=None, max_items: int | None = None,
    batch_size: int = 8, images: int = 4,
) -> dict[str, Any]:  # fmt: skip
    """Metrics of the model and of the nearest-view and reprojection baselines on held-out scenes.

    Each metric is averaged over a scene's rendered targets, then over scenes. LPIPS is computed only
    when ``eval_lpips`` weights are configured, and otherwise reported unavailable (never with a
    random backbone)."""
    from ...viz import image_grid

    data = dataset if dataset is not None else NVSDataset(cfg, "val")
    n = len(data) if max_items is None else min(max_items, len(data))
    lpips = None
    if cfg.eval_lpips:
        from ...metrics.perceptual import LPIPS

        lpips = LPIPS(*cfg.eval_lpips).to(device)
    per_scene: dict[int, dict[str, list[float]]] = {}
    rows = []
    for start in range(0, n, batch_size):
        items = [data[i] for i in range(start, min(n, start + batch_size))]
        b = {k: v.to(device) for k, v in default_collate(items).items()}
        pred = model(b).float().clamp(0, 1).cpu()
        for j, it in enumerate(items):
            for t in range(pred.shape[1]):
                gt = it["target_images"][t][None].float()
                renders = {"model": pred[j, t][None], "nearest": nearest_view(it, t)[None].float(),
                           "reproject": reprojected_view(it, t)[None]}  # fmt: skip
                acc = per_scene.setdefault(int(it["scene"]), {})
                for name, img in renders.items():
                    acc.setdefault(f"{name}/psnr", []).append(float(psnr(img, gt)))
                    acc.setdefault(f"{name}/ssim", []).append(float(ssim(img, gt)))
                    if lpips is not None:
                        acc.setdefault(f"{name}/lpips", []).append(float(lpips(img.to(device), gt.to(device))))
                if len(rows) < images:
                    rows.append([*it["images"].float(), gt[0], *(r[0] for r in renders.values())])
    keys = next(iter(per_scene.values())).keys()
    out: dict[str, Any] = {k: sum(sum(s[k]) / len(s[k]) for s in per_scene.values()) / len(per_scene) for k in keys}
    out["scenes"] = len(per_scene)
    out["targets"] = sum(len(s["model/psnr"]) for s in per_scene.values())
    out["lpips"] = "computed" if lpips is not None else "unavailable (no weights given: --eval-lpips FILE ...)"
    out["psnr_gain_over_nearest"] = out["model/psnr"] - out["nearest/psnr"]
    if rows:
        out["images"] = {"inputs | target | model | nearest view | reprojected": image_grid(rows, scale=2)}
    return out
