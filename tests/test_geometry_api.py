"""API-wide checks: every public geometry function documents an example, batches, differentiates, and
handles degenerate input without NaN."""

import inspect

import kornia.geometry.depth as KD
import pytest
import torch
from _util import BATCHES, gen

import unrender.geometry as G

F64 = torch.float64


def test_every_public_function_has_a_doctest_example():
    public = [n for n in G.__all__ if callable(getattr(G, n))]
    missing = [n for n in public if not (getattr(G, n).__doc__ and ">>>" in getattr(G, n).__doc__)]
    assert not missing, missing
    undocumented = [
        m for m, f in vars(G.VoxelGrid).items() if not m.startswith("_") and inspect.isfunction(f) and not f.__doc__
    ]
    assert not undocumented, undocumented


def rand_K(batch):
    f = 50 + 50 * torch.rand(batch, generator=gen(1), dtype=F64)
    return G.make_intrinsics(f, 1.1 * f, 20 + f * 0, 15 + f * 0)


@pytest.mark.parametrize("batch", BATCHES)
def test_camera_helpers_batch(batch):
    K = rand_K(batch)
    assert K.shape == (*batch, 3, 3)
    assert G.scale_intrinsics(K, 0.5, 0.25).shape == (*batch, 3, 3)
    assert G.crop_intrinsics(K, 2, 3).shape == (*batch, 3, 3)
    uv = torch.rand(*batch, 2, dtype=F64) * 10
    torch.testing.assert_close(G.normalized_to_pixels(G.pixels_to_normalized(uv, 8, 12), 8, 12), uv)
    g = G.VoxelGrid((-1, -1, 0), (1, 1, 2), (4, 5, 6))
    p = torch.rand(*batch, 3, dtype=F64)
    torch.testing.assert_close(g.index_to_world(g.world_to_index(p)), p)
    torch.testing.assert_close(g.normalized_to_world(g.world_to_normalized(p)), p)
    assert g.contains(p).shape == batch


def test_depth_to_points_agrees_with_kornia():
    K = rand_K((2,)).float()
    depth = torch.rand(2, 1, 6, 7) + 0.5
    ours = G.depth_to_points(depth, K)
    theirs = KD.depth_to_3d_v2(depth[:, 0], K)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-6)


def test_more_gradchecks():
    fx = torch.tensor([50.0, 60.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: G.make_intrinsics(f, 2 * f, 3.0, 4.0), (fx,))
    g = G.VoxelGrid((-1, -1, 0), (1, 1, 2), (4, 5, 6))
    p = torch.rand(3, 3, dtype=F64, requires_grad=True)
    for fn in (g.world_to_index, g.index_to_world, g.world_to_normalized, g.normalized_to_world):
        assert torch.autograd.gradcheck(fn, (p,))
    boxes = torch.tensor([[0.1, 0.2, 3.0, 2.0, 1.5, 1.0, 0.3]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(G.bev_polygons, (boxes,))


def test_degenerate_inputs_never_nan():
    K = rand_K(())
    # zero depth lifts to the camera centre
    pts = G.unproject_points(torch.tensor([[3.0, 4.0]], dtype=F64), torch.zeros(1, dtype=F64), K)
    assert torch.equal(pts, torch.zeros(1, 3, dtype=F64))
    # an all-unknown depth map carves nothing
    g = G.VoxelGrid((-1, -1, 0), (1, 1, 2), (4, 4, 4))
    occ, free = G.carve_depth(g, torch.zeros(1, 1, 8, 8, dtype=F64), K[None], torch.eye(4, dtype=F64)[None])
    assert occ.sum() == 0 and free.sum() == 0
    # views behind the grid see nothing: zero features, zero count
    behind = G.make_rigid(torch.eye(3, dtype=F64), torch.tensor([0.0, 0.0, -10.0], dtype=F64))
    feats, count = G.unproject_to_grid(g, torch.ones(1, 2, 8, 8, dtype=F64), K[None], behind[None])
    assert count.sum() == 0 and feats.abs().sum() == 0 and torch.isfinite(feats).all()
    # degenerate rotations and rays
    assert torch.isfinite(G.rotation_6d_to_matrix(torch.zeros(6, dtype=F64))).all()
    assert torch.isfinite(G.plucker(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64))).all()


def test_voxel_grid_json_errors():
    with pytest.raises(ValueError, match="not JSON"):
        G.VoxelGrid.from_json("{")
    with pytest.raises(ValueError, match="expected bounds_min"):
        G.VoxelGrid.from_json('{"a": 1}')


def test_dtype_and_device_mismatch_raise():
    with pytest.raises(ValueError, match=r"points_b: expected dtype torch.float32 \(the dtype of a_from_b\)"):
        G.transform_points(torch.eye(4), torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="K: expected dtype"):
        G.project_points(torch.zeros(2, 3), torch.eye(3, dtype=F64))
    g = G.VoxelGrid((-1, -1, 0), (1, 1, 2), (2, 2, 2))
    with pytest.raises(ValueError, match="cam_from_grid: expected dtype"):
        G.unproject_to_grid(g, torch.zeros(1, 1, 4, 4), torch.eye(3)[None], torch.eye(4, dtype=F64)[None])
