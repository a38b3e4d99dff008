"""Volume rendering against closed forms: a slab of constant density."""

import math

import pytest
import torch

from unrender.render import alpha_composite, volume_render


@pytest.mark.parametrize("samples", [7, 64])
def test_a_density_slab_gives_the_analytic_transmittance_opacity_and_weights(samples):
    sigma0, a, b = 1.7, 1.0, 2.5  # density 1.7 between t = 1 and t = 2.5, nothing elsewhere; rays to t = 4
    L = b - a
    # irregular interval edges that include the slab's faces: piecewise-constant density is exact
    inner = torch.sort(torch.rand(samples, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4).values
    t = torch.unique(torch.cat([torch.tensor([0.0, a, b, 4.0], dtype=torch.float64), inner]))
    mid = 0.5 * (t[1:] + t[:-1])
    sigma = ((mid > a) & (mid < b)).double() * sigma0
    colour = torch.stack([mid, torch.ones_like(mid), torch.zeros_like(mid)], -1)
    bg = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    out = volume_render(sigma[None], colour[None], t[None], bg)
    T = math.exp(-sigma0 * L)
    torch.testing.assert_close(out["transmittance"], torch.tensor([[T]], dtype=torch.float64))
    torch.testing.assert_close(out["opacity"], torch.tensor([[1 - T]], dtype=torch.float64))
    assert float(out["weights"].sum()) == pytest.approx(1 - T, abs=1e-12)
    # a constant colour inside comes out times the opacity, the background times the transmittance
    assert float(out["rgb"][0, 1]) == pytest.approx(1 - T, abs=1e-12)
    assert float(out["rgb"][0, 2]) == pytest.approx(T, abs=1e-12)
    # the weights follow the analytic termination density sigma0 exp(-sigma0 (s - a)) inside the slab
    inside = (mid > a) & (mid < b)
    lo, hi = t[:-1][inside], t[1:][inside]
    expected = torch.exp(-sigma0 * (lo - a)) - torch.exp(-sigma0 * (hi - a))
    torch.testing.assert_close(out["weights"][0][inside], expected)
    assert float(out["weights"][0][~inside].abs().max()) == 0.0


def test_volume_rendering_agrees_with_alpha_compositing_and_checks_shapes():
    g = torch.Generator().manual_seed(1)
    sigma, t = torch.rand(5, 9, generator=g) * 3, torch.cumsum(torch.rand(5, 10, generator=g), -1)
    values = torch.rand(5, 9, 3, generator=g)
    out = volume_render(sigma, values, t, 0.5)
    alpha = 1 - torch.exp(-sigma * (t[:, 1:] - t[:, :-1]))
    img, acc = alpha_composite(alpha.T[None, :, :, None], values.permute(2, 1, 0)[..., None], 0.5)
    torch.testing.assert_close(out["rgb"], img[..., 0].T)
    torch.testing.assert_close(out["opacity"], acc[..., 0].T)
    sigma.requires_grad_(True)
    volume_render(sigma, values, t)["rgb"].sum().backward()
    assert torch.isfinite(sigma.grad).all()
    with pytest.raises(ValueError, match="S \\+ 1"):
        volume_render(sigma, values, t[:, :-1])
