"""Differentiable and baseline renderers shared by the methods: alpha compositing, depth reprojection
(forward splatting) and backward warping."""

from .composite import alpha_composite
from .splat import forward_warp
from .warp import inverse_warp

__all__ = ["alpha_composite", "forward_warp", "inverse_warp"]
