"""Blocks shared by several methods (no method imports another: what two need moves down here)."""

from .flow import local_correlation, neighbourhood_offsets, soft_argmax_flow

__all__ = ["local_correlation", "neighbourhood_offsets", "soft_argmax_flow"]
