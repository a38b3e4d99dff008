"""``nvs``: transformer novel-view synthesis (LVSM-style) on Plücker-ray tokens, decoder-only or
encoder-decoder, with probes of the encoder-decoder's latent tokens."""

from __future__ import annotations

from ..base import Method
from .config import PRESETS, NVSConfig
from .data import NVSDataset, ViewSetDataset, capture_views
from .evaluate import evaluate_nvs
from .losses import nvs_losses
from .model import NVSModel
from .predict import NVSPredictArgs, eval_capture, predict_nvs_files
from .probe import ProbeArgs, run_probes


def build_dataset(cfg: NVSConfig, split: str) -> NVSDataset | ViewSetDataset:
    if split == "train" and cfg.data.capture is not None:
        return capture_views(cfg.data.capture, cfg, cfg.data.capture_items)
    return NVSDataset(cfg, "train" if split == "train" else "val")


METHOD = Method(
    name="nvs",
    description="Transformer novel-view synthesis (LVSM-style): posed input views + target cameras -> images.",
    config=NVSConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=NVSModel,
    build_dataset=build_dataset,
    loss=nvs_losses,
    evaluate=evaluate_nvs,
    extra={
        "probe": (ProbeArgs, run_probes),
        "predict": (NVSPredictArgs, predict_nvs_files),
        "real_data": {"transforms": eval_capture, "realestate10k": eval_capture},
    },
)
