"""Blocks shared by several methods (no method imports another: what two need moves down here)."""

from .flow import local_correlation, neighbourhood_offsets, soft_argmax_flow
from .memory import build_memory

__all__ = ["build_memory", "local_correlation", "neighbourhood_offsets", "soft_argmax_flow"]
