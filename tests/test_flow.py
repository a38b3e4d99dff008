import pytest
import torch

from unrender.nn import local_correlation, neighbourhood_offsets, soft_argmax_flow


def shifted(f: torch.Tensor, dx: int, dy: int, dz: int) -> torch.Tensor:
    """``f`` moved by ``(dx, dy, dz)`` voxels: out[v + d] = f[v] (wrapping; only interior voxels are checked)."""
    return torch.roll(f, shifts=(dz, dy, dx), dims=(-3, -2, -1))


@pytest.mark.parametrize("shift", [(1, 0, -2), (0, 0, 0), (-1, 2, 1)])
def test_soft_argmax_recovers_a_known_shift_exactly(shift):
    g = torch.Generator().manual_seed(0)
    f0 = torch.nn.functional.normalize(torch.randn(2, 16, 8, 9, 10, generator=g), dim=1) * 4
    flow = soft_argmax_flow(f0, shifted(f0, *shift), 2, temperature=0.05)
    inner = flow[..., 2:-2, 2:-2, 2:-2]  # voxels whose true match lies in the grid
    want = torch.tensor(shift, dtype=flow.dtype)[None, :, None, None, None].expand_as(inner)
    torch.testing.assert_close(inner, want, atol=1e-5, rtol=0)


def test_a_reach_per_axis_recovers_a_shift_and_looks_only_that_far():
    g = torch.Generator().manual_seed(1)
    f0 = torch.nn.functional.normalize(torch.randn(16, 8, 6, 12, generator=g), dim=0) * 4
    flow = soft_argmax_flow(f0, shifted(f0, 3, 0, -1), (3, 0, 1), temperature=0.05)
    torch.testing.assert_close(flow[:, 1:-1, :, 3:-3], torch.tensor([3.0, 0.0, -1.0])[:, None, None, None].expand(
        3, 6, 6, 6), atol=1e-5, rtol=0)  # fmt: skip
    off = neighbourhood_offsets((3, 0, 1))
    assert off.shape == (7 * 3, 3) and (off[:, 1] == 0).all() and off[:, 0].abs().max() == 3
    dense, ok = local_correlation(f0, f0, (3, 0, 1))
    sparse, ok_s = local_correlation(f0, f0, (3, 0, 1), index=torch.arange(8 * 6 * 12))
    torch.testing.assert_close(dense, sparse)
    assert torch.equal(ok, ok_s)
    with pytest.raises(ValueError, match="radius"):
        neighbourhood_offsets((1, 2))


def test_chosen_voxels_agree_with_every_voxel_and_batch_shapes():
    f0, f1 = torch.randn(2, 4, 5, 6, 7).unbind(0)  # no batch dims
    dense = soft_argmax_flow(f0, f1, 1)
    assert dense.shape == (3, 5, 6, 7)
    idx = torch.tensor([0, 17, 209, 5 * 6 * 7 - 1])
    sparse = soft_argmax_flow(f0, f1, 1, index=idx)
    torch.testing.assert_close(sparse, dense.reshape(3, -1)[:, idx])
    fb0, fb1 = torch.randn(2, 2, 3, 4, 5, 6, 7).unbind(0)
    assert soft_argmax_flow(fb0, fb1, 1).shape == (2, 3, 3, 5, 6, 7)
    assert soft_argmax_flow(fb0[:1], fb1[:1], 1, index=torch.zeros(1, 3, 9, dtype=torch.long)).shape == (1, 3, 3, 9)
    # chunking does not change the scores
    a, ok_a = local_correlation(f0[None], f1[None], 1)
    b, ok_b = local_correlation(f0[None], f1[None], 1, chunk=7)
    torch.testing.assert_close(a, b)
    assert torch.equal(ok_a, ok_b)


def test_correlation_matches_a_slow_loop_and_never_looks_outside_the_grid():
    f0, f1 = torch.randn(2, 1, 3, 3, 4, 5, dtype=torch.float64).unbind(0)
    s, ok = local_correlation(f0, f1, 1)
    off = neighbourhood_offsets(1)
    for n in range(3 * 4 * 5):
        z, y, x = n // 20, (n // 5) % 4, n % 5
        for k, (dx, dy, dz) in enumerate(off.tolist()):
            inside = 0 <= x + dx < 5 and 0 <= y + dy < 4 and 0 <= z + dz < 3
            assert bool(ok[0, k, n]) == inside
            want = (f0[0, :, z, y, x] * f1[0, :, z + dz, y + dy, x + dx]).sum() / 3**0.5 if inside else 0.0
            assert float(s[0, k, n]) == pytest.approx(float(want), abs=1e-12)
    flow = soft_argmax_flow(f0, f1, 1)
    corner = flow[0, :, 0, 0, 0]  # no offset below 0 is allowed at the corner
    assert (corner >= 0).all()


def test_flow_gradients_reach_both_volumes():
    f0, f1 = torch.randn(2, 1, 2, 3, 3, 3, dtype=torch.float64).unbind(0)
    f0.requires_grad_(True)
    f1.requires_grad_(True)
    idx = torch.tensor([[0, 13, 26]])
    assert torch.autograd.gradcheck(lambda a, b: soft_argmax_flow(a, b, 1, index=idx), (f0, f1))


def test_bad_inputs_are_named():
    f = torch.randn(1, 2, 3, 3, 3)
    with pytest.raises(ValueError, match="feat1"):
        soft_argmax_flow(f, torch.randn(1, 2, 3, 3, 4), 1)
    with pytest.raises(ValueError, match="index"):
        soft_argmax_flow(f, f, 1, index=torch.tensor([[27]]))
    with pytest.raises(ValueError, match="temperature"):
        soft_argmax_flow(f, f, 1, temperature=0)
    with pytest.raises(ValueError, match="radius"):
        neighbourhood_offsets(-1)


def test_a_piece_moves_as_one_where_its_voxels_alone_are_ambiguous():
    """The aperture problem in one line of voxels: a bar of identical features with one distinct end moves by
    one voxel; a voxel of the bar matches the bar wherever it is, but the piece's summed correlation has one
    peak."""
    from unrender.nn import piece_flow

    a, b, c = torch.eye(4)[:3] * 2
    f0 = b[:, None].repeat(1, 12)
    f0[:, 2:5], f0[:, 5] = a[:, None], c  # the bar at x = 2..4, its end at 5
    f1 = torch.roll(f0, 1, dims=-1)
    f0, f1 = f0.reshape(4, 1, 1, 12), f1.reshape(4, 1, 1, 12)
    labels = torch.zeros(1, 1, 12, dtype=torch.long)
    labels[..., 2:6] = 1
    alone = soft_argmax_flow(f0, f1, (3, 0, 0), temperature=0.01)[0, 0, 0, 2]
    assert abs(float(alone) - 2.0) < 1e-3  # the bar's voxel at x = 2 matches x = 3, 4 and 5 alike
    flow = piece_flow(f0, f1, labels, (3, 0, 0), temperature=0.01)
    torch.testing.assert_close(flow[0, 0, 0, 2:6], torch.ones(4), atol=1e-4, rtol=0)
    assert (flow[:, ..., :2] == 0).all() and (flow[:, ..., 6:] == 0).all() and (flow[1:] == 0).all()
    # only the masked voxels count: the end alone decides; a piece with none of them stays put
    end = torch.zeros(1, 1, 12, dtype=torch.bool)
    end[..., 5] = True
    torch.testing.assert_close(piece_flow(f0, f1, labels, (3, 0, 0), mask=end, temperature=0.01)[0, 0, 0, 2],
                               torch.tensor(1.0), atol=1e-4, rtol=0)  # fmt: skip
    assert (piece_flow(f0, f1, labels, (3, 0, 0), mask=torch.zeros_like(end)) == 0).all()
    # the frame before: where the next frame does not show the piece, its place one step earlier (at constant
    # velocity) still pins the motion down
    hidden = b[:, None, None, None].repeat(1, 1, 1, 12)
    before = torch.roll(f0, -1, dims=-1)
    assert abs(float(piece_flow(f0, hidden, labels, (3, 0, 0), temperature=0.01)[0, 0, 0, 2]) - 1.0) > 0.1
    both = piece_flow(f0, hidden, labels, (3, 0, 0), temperature=0.01, before=before)
    torch.testing.assert_close(both[0, 0, 0, 2:6], torch.ones(4), atol=1e-3, rtol=0)
    assert (both[1:] == 0).all()
    with pytest.raises(ValueError, match="before"):
        piece_flow(f0, f1, labels, 1, before=f0[:2])
    with pytest.raises(ValueError, match="labels"):
        piece_flow(f0, f1, labels.float(), 1)
    with pytest.raises(ValueError, match="feat0"):
        piece_flow(f0[None], f1[None], labels, 1)
