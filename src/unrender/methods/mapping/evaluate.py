"""Evaluation of neural 3D mapping on held-out generated rooms, next to two baselines.

* occupancy IoU, amodal (the whole grid, including voxels no input view saw), vs the exact
  occupancy; baseline: occupancy carved from the input depths alone;
* semantic mIoU over the exactly occupied voxels;
* held-out view PSNR/SSIM; baselines: the nearest input view reprojected with its depth
  (z-buffered splatting, holes filled with the mean input colour) and the mean-colour image;
* 3D AP at IoU 0.25 and 0.5 over the detected classes.
"""

from __future__ import annotations

from typing import Any

import torch

from ...geometry import carve_depth, invert_rigid
from ...metrics import confusion_matrix, detection_ap, mean_iou, psnr, ssim, voxel_iou
from ...nn import code_perplexity
from ...render import forward_warp
from ...world import CLASSES
from .config import MappingConfig
from .data import MappingDataset, memory_grid
from .detection import decode_boxes

__all__ = ["evaluate_mapping"]


def _batch(item: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v[None].to(device) for k, v in item.items()}


@torch.no_grad()
def evaluate_mapping(model: torch.nn.Module, cfg: MappingConfig, device: torch.device, *, max_scenes: int | None = None,
                     dataset: MappingDataset | None = None, images: int = 4) -> dict[str, Any]:  # fmt: skip
    from ...viz import image_grid

    m = cfg.model
    data = dataset if dataset is not None else MappingDataset(cfg, "val")
    grid = memory_grid(cfg)
    n = len(data) if max_scenes is None else min(max_scenes, len(data))
    acc: dict[str, list[float]] = {}
    conf = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.long)
    det_pred, det_gt = [], []
    rows = []
    codes = []  # with a quantised bottleneck: each scene's code grid

    def add(k: str, v: float) -> None:
        acc.setdefault(k, []).append(float(v))

    for i in range(n):
        item = data[i]
        b = _batch(item, device)
        out = model(b)
        occ_gt = item["occ"][None]
        if "codes" in out:
            codes.append(out["codes"].cpu())
        carved, _ = carve_depth(
            grid, item["depth_in"].double(), item["K_in"].double(), item["cam_from_mem_in"].double()
        )
        add("occ_iou_carve_baseline", voxel_iou(carved[None].float(), occ_gt)[0])
        if "occ_logits" in out:
            prob = torch.sigmoid(out["occ_logits"].float()).cpu()
            add("occ_iou", voxel_iou(prob, occ_gt)[0])
        if m.semantics:
            occupied = item["occ"][0] > 0.5
            pred = out["sem_logits"][0].argmax(0).cpu()
            conf += confusion_matrix(pred[occupied], item["sem"][occupied], len(CLASSES))
        # view baselines
        target = item["rgb_out"][None]
        mean_col = item["rgb_in"].mean((0, 2, 3))
        add("psnr_mean_colour", psnr(mean_col[None, :, None, None].expand_as(target), target)[0])
        Ho, Wo = target.shape[-2:]
        centres = invert_rigid(item["cam_from_mem_in"].double())[:, :3, 3]
        c_out = invert_rigid(item["cam_from_mem_out"].double())[:3, 3]
        j = int((centres - c_out).norm(dim=-1).argmin())
        warped, hit = forward_warp(item["rgb_in"][j].double(), item["depth_in"][j].double(), item["K_in"][j].double(),
                                   item["cam_from_mem_in"][j].double(), item["K_out"].double(),
                                   item["cam_from_mem_out"].double(), Ho, Wo)  # fmt: skip
        warped = torch.where(hit, warped, mean_col[:, None, None].double()).float()[None]
        add("psnr_reproject_baseline", psnr(warped, target)[0])
        add("ssim_reproject_baseline", ssim(warped, target)[0])
        if m.view:
            pred_rgb = out["rgb_pred"].float().cpu()
            add("psnr", psnr(pred_rgb, target)[0])
            add("ssim", ssim(pred_rgb, target)[0])
        if m.detection:
            heat = torch.sigmoid(out["heatmap_logits"].float())
            reg, yl, yr = out["reg"].float(), out["yaw_logits"].float(), out["yaw_res"].float()
            dets = decode_boxes(heat, reg, yl, yr, grid, max_detections=m.max_detections, nms_iou=m.nms_iou)[0]
            det_pred.append({k: v.cpu() for k, v in dets.items()})
            keep = item["box_labels"] >= 0
            det_gt.append({"boxes": item["boxes"][keep].double(), "labels": item["box_labels"][keep]})
        if i < images:
            row = [item["rgb_in"][0], target[0], warped[0]]
            if m.view:
                row.append(out["rgb_pred"][0].float().cpu())
            if "rgb_render" in out:
                row.append(out["rgb_render"][0].float().cpu())
            rows.append(row)
    res: dict[str, Any] = {k: sum(v) / len(v) for k, v in acc.items()}
    res["scenes"] = n
    if codes:  # how much of the codebook the held-out scenes use
        used = torch.cat(codes)
        res["codes/perplexity"] = float(code_perplexity(used, m.codebook))
        res["codes/used"] = torch.unique(used).numel() / m.codebook
    if m.semantics:
        _, res["sem_miou"] = mean_iou(conf)
    if m.detection:
        ap = detection_ap([d["boxes"].double() for d in det_pred], [d["scores"] for d in det_pred],
                          [d["labels"] for d in det_pred], [g["boxes"] for g in det_gt], [g["labels"] for g in det_gt],
                          list(m.det_classes), iou_thresholds=(0.25, 0.5))  # fmt: skip
        res.update(ap)
    title = "input view 0 | held-out view | reprojection baseline | prediction"
    if m.view and m.colour_volume:
        title += " | composited colour volume"
    res["images"] = {title: image_grid(rows, scale=2)}
    return res
