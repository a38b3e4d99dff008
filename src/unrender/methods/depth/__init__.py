"""``depth``: metric monocular depth, self-supervised from video (Monodepth2-style), with metric
scale from object-height priors and a camera height that stays constant over a sequence."""

from __future__ import annotations

from ..base import Method
from .config import PRESETS, DepthConfig
from .data import DepthDataset, FrameVideo, KittiRawVideo
from .evaluate import ablation_table, evaluate_depth
from .losses import depth_losses
from .model import DepthModel
from .predict import DepthPredictArgs, eval_kitti_depth, predict_depth_files


def build_dataset(cfg: DepthConfig, split: str) -> DepthDataset | KittiRawVideo | FrameVideo:
    if split == "train" and cfg.data.kitti_raw is not None and cfg.data.video is not None:
        raise ValueError("give data.kitti_raw or data.video, not both")
    if split == "train" and cfg.data.kitti_raw is not None:
        return KittiRawVideo(cfg.data.kitti_raw)
    if split == "train" and cfg.data.video is not None:
        return FrameVideo(cfg.data)
    return DepthDataset(cfg, "train" if split == "train" else "val")


METHOD = Method(
    name="depth",
    description="Metric monocular depth: self-supervised from video, metric scale from object heights and a "
    "constant camera height.",
    config=DepthConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=DepthModel,
    build_dataset=build_dataset,
    loss=depth_losses,
    evaluate=evaluate_depth,
    extra={
        "markdown_table": ablation_table,
        "predict": (DepthPredictArgs, predict_depth_files),
        "real_data": {"kitti-depth": eval_kitti_depth},
    },
)
