"""Vector quantisation of feature volumes (issue 31): assignment, straight-through gradients, EMA codebook
updates, dead-code restarts."""

import pytest
import torch

from unrender.nn import VectorQuantizer, code_perplexity


def _vq(num_codes=8, dim=4, **kw):
    torch.manual_seed(0)
    return VectorQuantizer(num_codes, dim, **kw)


def test_quantisation_is_the_identity_on_codebook_vectors():
    vq = _vq().eval()
    idx = torch.tensor([[3, 0, 7], [5, 5, 1]])  # (B, X)
    z = vq.lookup(idx)  # (2, 4, 3): the codes themselves
    out = vq(z)
    assert torch.equal(out["indices"], idx)
    torch.testing.assert_close(out["quantized"], z, rtol=0, atol=0)
    assert float(out["commitment"]) == 0.0
    # a vector near a code lands on that code
    out = vq(z + 1e-3 * torch.randn_like(z))
    assert torch.equal(out["indices"], idx)


def test_gradients_reach_the_encoder_through_the_straight_through_estimator():
    vq = _vq().eval()
    z = torch.randn(2, 4, 3, 2, 2, requires_grad=True)
    w = torch.randn(2, 4, 3, 2, 2)
    (vq(z)["quantized"] * w).sum().backward()
    torch.testing.assert_close(z.grad, w)  # the decoder's gradient, passed on unchanged
    z.grad = None
    vq(z)["commitment"].backward()  # and the commitment pulls z toward its (fixed) code
    codes = vq.lookup(vq(z)["indices"])
    torch.testing.assert_close(z.grad, 2 * (z - codes).detach() / z.numel())
    assert all(p.grad is None for p in vq.parameters())  # the codebook is no parameter: it moves by EMA


def test_ema_moves_codes_to_the_mean_of_their_vectors_and_restarts_dead_ones():
    vq = _vq(num_codes=4, dim=2, decay=0.5, dead_below=0.2).train()
    # two clusters; the first forward sets the codebook to vectors of the batch
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 5.0])
    z = torch.stack([a + 0.01 * torch.randn(2) for _ in range(8)] + [b + 0.01 * torch.randn(2) for _ in range(8)])
    z = z.T[None]  # (1, 2, 16)
    for _ in range(30):
        out = vq(z)
    # every code sits on a cluster: none is left in the empty space between them
    d = torch.cdist(vq.codebook, torch.stack([a, b])).min(1).values
    assert (d < 0.05).all()
    # both clusters have codes, and each vector's code is at its own cluster
    near = torch.cdist(vq.codebook, torch.stack([a, b])).argmin(1)
    assert set(near.tolist()) == {0, 1}
    assert (near[out["indices"][0]] == torch.tensor([0] * 8 + [1] * 8)).all()
    assert 2.0 - 1e-4 <= float(out["perplexity"]) <= 4.0 + 1e-4
    # a code far from every vector dies and restarts on one of them
    far = torch.tensor([100.0, 100.0])
    vq.codebook[0], vq.ema_sum[0] = far, far * vq.ema_count[0]  # its statistics say so too
    vq(z)
    torch.testing.assert_close(vq.codebook[0], far, atol=0.01, rtol=0)  # unused, it stays while its count decays
    for _ in range(10):
        vq(z)
    assert torch.cdist(vq.codebook[:1], torch.stack([a, b])).min() < 0.05


def test_code_perplexity_counts_equally_used_codes():
    assert float(code_perplexity(torch.tensor([0, 1, 2, 3]), 8)) == pytest.approx(4.0)
    assert float(code_perplexity(torch.zeros(10, dtype=torch.long), 8)) == pytest.approx(1.0)


def test_bad_quantiser_input_is_named():
    with pytest.raises(ValueError, match="num_codes"):
        VectorQuantizer(1, 4)
    with pytest.raises(ValueError, match=r"\(B, 4, \.\.\.\)"):
        _vq()(torch.randn(2, 3, 5))
