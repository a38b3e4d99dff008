"""Differentiable and baseline renderers shared by the methods: alpha compositing and depth reprojection."""

from .composite import alpha_composite
from .splat import forward_warp

__all__ = ["alpha_composite", "forward_warp"]
