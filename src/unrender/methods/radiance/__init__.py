"""``radiance``: a voxel grid of density and colour fitted to one posed capture (a transforms.json) by volume
rendering, scored on held-out images against the nearest training image reprojected; ``unrender predict
radiance`` fits a user's capture and writes an orbit video, the held-out scores and the occupied voxels."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..base import Method
from .config import PRESETS, RadianceConfig
from .data import RayDataset, load_frame
from .evaluate import evaluate_radiance
from .model import RadianceGrid
from .predict import RadiancePredictArgs, predict_radiance


def build_model(cfg: RadianceConfig) -> RadianceGrid:
    """The grids, with the capture's frame when its file is there (a checkpoint's buffers replace it)."""
    model = RadianceGrid(cfg)
    d = cfg.data
    if Path(d.capture).is_file():
        model.set_frame(load_frame(Path(d.capture), d.downscale, d.holdout))
    return model


def build_dataset(cfg: RadianceConfig, split: str) -> RayDataset:
    return RayDataset(cfg)


def loss(model: RadianceGrid, batch: dict[str, torch.Tensor], cfg: RadianceConfig) -> dict[str, torch.Tensor]:
    """Photometric MSE of the rendered rays, plus ``loss.tv`` x the finest grid's total variation."""
    out = model(batch["origins"], batch["directions"])
    mse = F.mse_loss(out["rgb"], batch["rgb"])
    tv = getattr(model, "module", model).total_variation() if cfg.loss.tv > 0 else torch.zeros((), device=mse.device)
    return {"loss": mse + cfg.loss.tv * tv, "mse": mse, "psnr": -10 * torch.log10(mse.detach()), "tv": tv.detach()}


def _batch(items: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return items  # RayDataset gathers a whole batch at once


METHOD = Method(
    name="radiance",
    description="A voxel radiance field fitted to one posed capture (transforms.json) by volume rendering.",
    config=RadianceConfig,
    presets=PRESETS,
    default_preset="fox",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate_radiance,
    collate=_batch,
    extra={"predict": (RadiancePredictArgs, predict_radiance)},
)
