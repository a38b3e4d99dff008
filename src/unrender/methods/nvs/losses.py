"""Training loss of novel-view synthesis: MSE + weight * perceptual term."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ...metrics.image import ssim
from ...metrics.perceptual import VGGFeatures, feature_distance
from .config import NVSConfig

__all__ = ["nvs_losses", "perceptual_term"]


@functools.lru_cache(maxsize=2)
def _vgg(path: Path, device: str) -> VGGFeatures:
    return VGGFeatures(path).to(device).eval()


def perceptual_term(pred: torch.Tensor, target: torch.Tensor, cfg: NVSConfig) -> torch.Tensor:
    """Per-image perceptual distance ``(N,)`` of images ``(N, 3, H, W)``: VGG-16 feature distance
    when ``loss.perceptual_weights`` names a file, else ``1 - SSIM``."""
    if cfg.loss.perceptual_weights is not None:
        return feature_distance(_vgg(Path(cfg.loss.perceptual_weights), str(pred.device)), pred, target)
    return 1 - ssim(pred, target)


def nvs_losses(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: NVSConfig) -> dict[str, torch.Tensor]:
    pred = model(batch).float()
    target = batch["target_images"]
    if pred.shape != target.shape:
        raise ValueError(f"rendered {tuple(pred.shape)} but target_images is {tuple(target.shape)}")
    mse = (pred - target).pow(2).mean()
    perceptual = perceptual_term(pred.flatten(0, 1), target.flatten(0, 1), cfg).mean()
    return {
        "loss": mse + cfg.loss.perceptual * perceptual,
        "mse": mse,
        "perceptual": perceptual,
        "psnr": -10 * torch.log10(mse.detach().clamp(min=1e-10)),
    }
