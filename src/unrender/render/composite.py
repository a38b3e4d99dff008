"""Front-to-back alpha compositing along the depth axis (parameter-free)."""

from __future__ import annotations

import torch

from ..geometry.checks import check_shape

__all__ = ["alpha_composite"]


def alpha_composite(
    alpha: torch.Tensor, values: torch.Tensor, background: torch.Tensor | float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite per-plane values front to back: ``sum_d w_d v_d + T v_bg`` with
    ``w_d = alpha_d prod_{k<d} (1 - alpha_k)`` and ``T`` the transmittance left behind the last plane.

    Args:
        alpha: ``(..., 1, D, H, W)`` in [0, 1], plane 0 nearest.
        values: ``(..., C, D, H, W)``.
        background: scalar or ``(..., C, 1, 1)``-broadcastable tensor.

    Returns:
        image ``(..., C, H, W)`` and accumulated opacity ``(..., 1, H, W)``.

    Example:
        >>> a = torch.tensor([0.5, 1.0]).reshape(1, 2, 1, 1)
        >>> v = torch.tensor([2.0, 4.0]).reshape(1, 2, 1, 1)
        >>> img, acc = alpha_composite(a, v)
        >>> img.flatten().item(), acc.flatten().item()
        (3.0, 1.0)
    """
    check_shape(alpha, "alpha", (1, "D", "H", "W"))
    check_shape(values, "values", (None, alpha.shape[-3], alpha.shape[-2], alpha.shape[-1]))
    a = alpha.clamp(0, 1)
    trans = torch.cumprod(torch.cat([torch.ones_like(a[..., :1, :, :]), 1 - a], dim=-3), dim=-3)
    w = a * trans[..., :-1, :, :]
    img = (w * values).sum(-3) + trans[..., -1, :, :] * background
    return img, w.sum(-3)
