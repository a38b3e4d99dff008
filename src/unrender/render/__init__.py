"""Differentiable and baseline renderers shared by the methods: alpha compositing, volume rendering, depth
reprojection (forward splatting) and backward warping."""

from .composite import alpha_composite
from .splat import forward_warp
from .volume import volume_render
from .warp import align_pose, inverse_warp

__all__ = ["align_pose", "alpha_composite", "forward_warp", "inverse_warp", "volume_render"]
