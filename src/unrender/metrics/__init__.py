"""Evaluation metrics: depth, image, voxel, 3D detection and human pose."""

from .depth import DEPTH_METRICS, DepthMetrics, depth_metrics, eigen_crop_mask
from .detection import average_precision, detection_ap
from .image import psnr, ssim
from .pose import mpjpe, n_mpjpe, p_mpjpe, procrustes_align
from .voxel import confusion_matrix, mean_iou, voxel_iou

__all__ = [
    "DEPTH_METRICS",
    "DepthMetrics",
    "average_precision",
    "confusion_matrix",
    "depth_metrics",
    "detection_ap",
    "eigen_crop_mask",
    "mean_iou",
    "mpjpe",
    "n_mpjpe",
    "p_mpjpe",
    "procrustes_align",
    "psnr",
    "ssim",
    "voxel_iou",
]
