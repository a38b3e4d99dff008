"""Blocks shared by several methods (no method imports another: what two need moves down here)."""

from .autoregressive import GatedPixelCNN3D, MaskedConv3d, flip_order, raster_index
from .flow import local_correlation, neighbourhood_offsets, piece_flow, soft_argmax_flow
from .memory import build_memory
from .quantize import VectorQuantizer, code_perplexity
from .volume import FeatureNet3D, conv_block

__all__ = [
    "FeatureNet3D",
    "build_memory",
    "conv_block",
    "local_correlation",
    "neighbourhood_offsets",
    "soft_argmax_flow",
    "piece_flow",
    "VectorQuantizer",
    "code_perplexity",
    "GatedPixelCNN3D",
    "MaskedConv3d",
    "flip_order",
    "raster_index",
]
