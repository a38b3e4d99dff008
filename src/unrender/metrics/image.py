"""Image metrics: PSNR and SSIM (the 11x11 Gaussian window of Wang et al. 2004)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry.checks import check_shape

__all__ = ["psnr", "ssim"]


def psnr(
    pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB.

    Identical images give 100 dB for ``data_range = 1`` (the MSE is floored at
    ``1e-10 * data_range^2``), never infinity.

    Args:
        pred: ``(B, C, H, W)``.
        target: ``(B, C, H, W)``.
        mask: ``(B, H, W)`` bool: the PSNR over these pixels only (NaN for an image with none).

    Returns:
        ``(B,)``.

    Example:
        >>> psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1))
        tensor([20.])
    """
    sizes: dict[str, int] = {}
    check_shape(pred, "pred", ("B", "C", "H", "W"), sizes=sizes, max_batch=0)
    check_shape(target, "target", ("B", "C", "H", "W"), sizes=sizes, max_batch=0)
    err = (pred - target) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        check_shape(mask, "mask", ("B", "H", "W"), sizes=sizes, max_batch=0, floating=False)
        m = mask[:, None].to(err.dtype)
        mse = (err * m).flatten(1).sum(1) / (m.flatten(1).sum(1) * err.shape[1])  # 0 / 0 = NaN: no pixels
    mse = mse.clamp(min=1e-10 * data_range**2)
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-image structural similarity, averaged over channels and 'valid' window positions.

    The window is a separable ``window_size x window_size`` Gaussian with
    ``sigma`` (11 and 1.5 as in papers); no padding, so images must be at
    least ``window_size`` on each side.

    Args:
        pred: ``(B, C, H, W)``.
        target: ``(B, C, H, W)``.

    Returns:
        ``(B,)`` in ``[-1, 1]``.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    sizes: dict[str, int] = {}
    check_shape(pred, "pred", ("B", "C", "H", "W"), sizes=sizes, max_batch=0)
    check_shape(target, "target", ("B", "C", "H", "W"), sizes=sizes, max_batch=0)
    B, C, H, W = pred.shape
    if H < window_size or W < window_size:
        raise ValueError(f"ssim: images must be at least {window_size}x{window_size}, got {H}x{W}")
    g = _gaussian_window(window_size, sigma, pred)
    wx = g.reshape(1, 1, 1, -1).expand(C, 1, 1, window_size)
    wy = g.reshape(1, 1, -1, 1).expand(C, 1, window_size, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, wx, groups=C), wy, groups=C)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
