"""Emission-absorption volume rendering along rays (NeRF's quadrature, Max 1995)."""

from __future__ import annotations

import torch

__all__ = ["volume_render"]


def volume_render(sigma: torch.Tensor, values: torch.Tensor, t: torch.Tensor,
                  background: torch.Tensor | float = 0.0) -> dict[str, torch.Tensor]:  # fmt: skip
    """Render ``S`` samples per ray, each a piece of constant density and value over ``[t_i, t_{i+1}]``.

    ``alpha_i = 1 - exp(-sigma_i (t_{i+1} - t_i))``; the transmittance in front of sample ``i`` is
    ``T_i = exp(-sum_{j<i} sigma_j (t_{j+1} - t_j))`` (summed in log space: exact for piecewise-constant
    density, whatever the spacing); the weights are ``w_i = T_i alpha_i``, and what passes the last sample,
    ``T_S``, sees the background.

    Args:
        sigma: ``(..., S)`` densities, >= 0 (per unit of ``t``).
        values: ``(..., S, C)``, e.g. colours.
        t: ``(..., S + 1)`` interval edges along each ray, non-decreasing.
        background: scalar or ``(..., C)``.

    Returns:
        ``rgb (..., C)``, ``opacity (..., 1)`` (``1 - T_S``), ``weights (..., S)``, ``transmittance (..., 1)``
        (``T_S``) and ``depth (..., 1)``: the expected distance of the interval midpoints under the weights (not
        normalised by the opacity).

    Example:
        >>> out = volume_render(torch.tensor([[2.0]]), torch.ones(1, 1, 3), torch.tensor([[0.0, 0.5]]))
        >>> round(float(out["opacity"]), 4)  # 1 - exp(-2 * 0.5)
        0.6321
    """
    S = sigma.shape[-1]
    if values.shape[:-1] != sigma.shape or t.shape[:-1] != sigma.shape[:-1] or t.shape[-1] != S + 1:
        raise ValueError(f"volume_render: expected sigma (..., S), values (..., S, C), t (..., S + 1); got "
                         f"{tuple(sigma.shape)}, {tuple(values.shape)}, {tuple(t.shape)}")  # fmt: skip
    delta = (t[..., 1:] - t[..., :-1]).clamp(min=0)
    tau = sigma.clamp(min=0) * delta  # optical depth of each interval
    acc = torch.cumsum(tau, -1)
    trans_before = torch.exp(-torch.cat([torch.zeros_like(acc[..., :1]), acc[..., :-1]], -1))
    weights = trans_before * -torch.expm1(-tau)
    last = torch.exp(-acc[..., -1:])
    rgb = (weights[..., None] * values).sum(-2) + last * background
    mid = 0.5 * (t[..., 1:] + t[..., :-1])
    return {"rgb": rgb, "opacity": 1 - last, "weights": weights, "transmittance": last,
            "depth": (weights * mid).sum(-1, keepdim=True)}  # fmt: skip
