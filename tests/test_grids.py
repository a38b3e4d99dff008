import pytest
import torch
import torch.nn.functional as F
from _util import BATCHES, gen

from unrender.geometry import (
    VoxelGrid,
    carve_depth,
    look_at,
    make_intrinsics,
    make_rigid,
    project_points,
    sample_frustum,
    transform_points,
    unproject_to_grid,
    warp_volume,
)

F64 = torch.float64
GRID = VoxelGrid((-1.0, -0.5, 1.0), (1.0, 0.5, 3.0), (4, 2, 6))


def test_voxel_grid_maps_round_trip():
    p = torch.rand(10, 3, dtype=F64) * 2 - 1
    torch.testing.assert_close(GRID.index_to_world(GRID.world_to_index(p)), p)
    torch.testing.assert_close(GRID.normalized_to_world(GRID.world_to_normalized(p)), p)
    c = GRID.centers(dtype=F64)
    assert c.shape == (6, 2, 4, 3)
    # voxel (iz, iy, ix) = (2, 1, 3) has its centre at min + (i + 0.5) * size
    torch.testing.assert_close(c[2, 1, 3], torch.tensor([-1 + 3.5 * 0.5, -0.5 + 1.5 * 0.5, 1 + 2.5 / 3], dtype=F64))
    torch.testing.assert_close(GRID.world_to_index(c[2, 1, 3]), torch.tensor([3.0, 1.0, 2.0], dtype=F64))
    assert GRID.contains(c).all()
    assert VoxelGrid.from_json(GRID.to_json()) == GRID


def test_voxel_grid_rejects_bad_descriptions():
    with pytest.raises(ValueError, match="bounds_max"):
        VoxelGrid((0, 0, 0), (1, 0, 1), (2, 2, 2))
    with pytest.raises(ValueError, match="resolution"):
        VoxelGrid((0, 0, 0), (1, 1, 1), (2, 0, 2))
    with pytest.raises(ValueError, match="3 values"):
        VoxelGrid((0, 0), (1, 1, 1), (2, 2, 2))


def test_convention_voxel_layout_zyx_matches_grid_sample():
    # grid_sample at a voxel centre's normalised coords returns that voxel's value: fails if the layout
    # were XYZ, the normalisation used align_corners=True, or centres lacked the +0.5.
    vol = torch.arange(GRID.num_voxels, dtype=F64).reshape(1, 1, *GRID.shape)
    c = GRID.centers(dtype=F64)
    xyz = GRID.world_to_normalized(c)
    out = F.grid_sample(vol, xyz[None], mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, vol)


def cameras_around(batch, n, dtype=F64):
    eyes = torch.stack(
        [torch.tensor([2.5 * torch.sin(torch.tensor(a)), -0.3, 2.0 - 2.5 * torch.cos(torch.tensor(a))]) for a in
         torch.linspace(-0.6, 0.6, n).tolist()]
    ).to(dtype)  # fmt: skip
    T = look_at(eyes, torch.tensor([0.0, 0.0, 2.0], dtype=dtype))
    K = make_intrinsics(12.0, 12.0, 7.5, 5.5, dtype=dtype).expand(n, 3, 3)
    return K.expand(*batch, n, 3, 3), T.expand(*batch, n, 4, 4)


def unproject_reference(grid, images, K, T):
    """One voxel, one view at a time."""
    N, C, H, W = images.shape
    out = torch.zeros(C, grid.num_voxels, dtype=images.dtype)
    cnt = torch.zeros(1, grid.num_voxels, dtype=images.dtype)
    for vi, p in enumerate(grid.centers(dtype=images.dtype).reshape(-1, 3)):
        for n in range(N):
            uv, z, ok = project_points(transform_points(T[n], p[None]), K[n])
            u, v = uv[0].tolist()
            if not (ok[0] and -0.5 <= u <= W - 0.5 and -0.5 <= v <= H - 0.5):
                continue
            cnt[0, vi] += 1
            # manual bilinear with zero padding
            x0, y0 = int(torch.floor(torch.tensor(u))), int(torch.floor(torch.tensor(v)))
            for xx, yy in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                wgt = (1 - abs(u - xx)) * (1 - abs(v - yy))
                if 0 <= xx < W and 0 <= yy < H:
                    out[:, vi] += wgt * images[n, :, yy, xx]
    out = out / cnt.clamp(min=1)
    return out.reshape(C, *grid.shape), cnt.reshape(1, *grid.shape)


def test_unproject_matches_reference():
    K, T = cameras_around((), 3)
    imgs = torch.rand(3, 2, 12, 16, dtype=F64)
    feat, cnt = unproject_to_grid(GRID, imgs, K, T)
    rf, rc = unproject_reference(GRID, imgs, K, T)
    torch.testing.assert_close(cnt, rc)
    torch.testing.assert_close(feat, rf)
    assert cnt.max() == 3 and cnt.min() >= 0


@pytest.mark.parametrize("batch", BATCHES)
def test_unproject_batch_shapes_and_mean(batch):
    K, T = cameras_around(batch, 2)
    imgs = torch.ones(*batch, 2, 1, 12, 16, dtype=F64)
    imgs[..., 1, :, :, :] = 3.0
    feat, cnt = unproject_to_grid(GRID, imgs, K, T)
    assert feat.shape == (*batch, 1, *GRID.shape) and cnt.shape == (*batch, 1, *GRID.shape)
    both = cnt == 2
    assert both.any()
    # interior voxels seen by both views average 1 and 3 (away from the image border, bilinear is exact)
    torch.testing.assert_close(feat[both].median(), torch.tensor(2.0, dtype=F64))


def carve_reference(grid, depth, K, T, margin):
    occ = torch.zeros(grid.num_voxels, dtype=depth.dtype)
    free = torch.zeros(grid.num_voxels, dtype=depth.dtype)
    N, _, H, W = depth.shape
    from unrender.geometry import depth_to_points, invert_rigid

    for n in range(N):
        P = transform_points(invert_rigid(T[n]), depth_to_points(depth[n], K[n]).reshape(-1, 3))
        for p, d in zip(P, depth[n].reshape(-1), strict=True):
            if d > 0 and grid.contains(p):
                i = torch.floor(grid.world_to_index(p) + 0.5).long().clamp(min=0)
                ix, iy, iz = [min(int(a), r - 1) for a, r in zip(i, grid.resolution, strict=True)]
                if all(0 <= int(a) < r for a, r in zip(i, grid.resolution, strict=True)):
                    occ[(iz * grid.shape[1] + iy) * grid.shape[2] + ix] = 1
    for vi, p in enumerate(grid.centers(dtype=depth.dtype).reshape(-1, 3)):
        for n in range(N):
            uv, z, ok = project_points(transform_points(T[n], p[None]), K[n])
            u, v = uv[0].tolist()
            if ok[0] and -0.5 <= u <= W - 0.5 and -0.5 <= v <= H - 0.5:
                j, i = min(int(u + 0.5), W - 1), min(int(v + 0.5), H - 1)
                d = depth[n, 0, i, j]
                if d > 0 and z[0] < d - margin:
                    free[vi] = 1
    free = free * (1 - occ)
    return occ.reshape(1, *grid.shape), free.reshape(1, *grid.shape)


def test_carve_matches_reference_and_plane():
    K, T = cameras_around((), 2)
    depth = 1.5 + torch.rand(2, 1, 12, 16, dtype=F64)
    depth[0, 0, :3, :3] = 0  # unknown pixels mark nothing
    occ, free = carve_depth(GRID, depth, K, T)
    ro, rf = carve_reference(GRID, depth, K, T, 0.5 * sum(s * s for s in GRID.voxel_size) ** 0.5)
    torch.testing.assert_close(occ, ro)
    torch.testing.assert_close(free, rf)
    assert not (occ * free).any()
    # a fronto-parallel plane: everything in front is free, the plane's layer occupied, behind unknown
    g = VoxelGrid((-0.5, -0.5, 0.0), (0.5, 0.5, 4.0), (2, 2, 8))
    K1 = make_intrinsics(20.0, 20.0, 15.5, 15.5)[None]
    occ, free = carve_depth(g, torch.full((1, 1, 32, 32), 2.2), K1, torch.eye(4)[None])
    z_free = free[0].amax((1, 2)).tolist()
    z_occ = occ[0].amax((1, 2)).tolist()
    assert z_occ == [0, 0, 0, 0, 1, 0, 0, 0]  # 2.2 m lies in the layer [2.0, 2.5)
    # centres 0.75..1.75 lie more than the margin (0.43 m) in front of it; 0.25 is outside the image
    assert z_free == [0, 1, 1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("batch", BATCHES)
def test_carve_batch_shapes(batch):
    K, T = cameras_around(batch, 2)
    occ, free = carve_depth(GRID, torch.full((*batch, 2, 1, 12, 16), 2.0, dtype=F64), K, T)
    assert occ.shape == free.shape == (*batch, 1, *GRID.shape)


@pytest.mark.parametrize("batch", BATCHES)
def test_warp_volume(batch):
    vol = torch.rand(*batch, 2, *GRID.shape, dtype=F64)
    eye = torch.eye(4, dtype=F64)
    torch.testing.assert_close(warp_volume(vol, GRID, eye), vol)
    # a shift by exactly one voxel along x moves values one index along X
    shift = make_rigid(torch.eye(3, dtype=F64), torch.tensor([0.5, 0.0, 0.0], dtype=F64))
    out = warp_volume(vol, GRID, shift.expand(*batch, 4, 4))
    torch.testing.assert_close(out[..., 1:], vol[..., :-1])
    assert (out[..., 0] == 0).all()
    back = warp_volume(out, GRID, torch.linalg.inv(shift))
    torch.testing.assert_close(back[..., :-1], vol[..., :-1])


@pytest.mark.parametrize("batch", BATCHES)
def test_sample_frustum_reads_linear_field(batch):
    # the volume holds each voxel centre's z coordinate: frustum samples at plane d (inside) read d
    g = VoxelGrid((-2.0, -2.0, 0.0), (2.0, 2.0, 4.0), (8, 8, 8))
    vol = g.centers(dtype=F64)[..., 2][None].expand(*batch, 1, *g.shape)
    K = make_intrinsics(4.0, 4.0, 3.5, 3.5, dtype=F64)
    depths = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    out = sample_frustum(vol, g, K, torch.eye(4, dtype=F64), 8, 8, depths)
    assert out.shape == (*batch, 1, 3, 8, 8)
    torch.testing.assert_close(out[..., 0, :, 3:5, 3:5], depths[:, None, None].expand(*batch, 3, 2, 2))


def test_frustum_sampling_inverts_unprojection():
    # unproject an image into the grid then sample the frustum of the same camera at the surface depth
    g = VoxelGrid((-1.0, -1.0, 1.0), (1.0, 1.0, 3.0), (16, 16, 16))
    K = make_intrinsics(8.0, 8.0, 7.5, 7.5, dtype=F64)
    img = torch.linspace(0, 1, 16, dtype=F64).expand(1, 16, 16).clone()[None]  # (N=1, C=1, H, W)
    feat, _ = unproject_to_grid(g, img, K[None], torch.eye(4, dtype=F64)[None])
    out = sample_frustum(feat, g, K, torch.eye(4, dtype=F64), 16, 16, torch.tensor([2.0], dtype=F64))
    torch.testing.assert_close(out[0, 0, 4:12, 4:12], img[0, 0, 4:12, 4:12], atol=0.03, rtol=0)


def test_grid_gradcheck():
    g = VoxelGrid((-1.0, -1.0, 1.0), (1.0, 1.0, 2.0), (3, 2, 2))
    K, T = cameras_around((), 2)
    imgs = torch.rand(2, 1, 6, 8, dtype=F64, requires_grad=True)
    K = make_intrinsics(6.0, 6.0, 3.5, 2.5, dtype=F64).expand(2, 3, 3)
    assert torch.autograd.gradcheck(lambda x: unproject_to_grid(g, x, K, T)[0], (imgs,))
    vol = torch.rand(1, *g.shape, dtype=F64, requires_grad=True)
    Tw = make_rigid(torch.eye(3, dtype=F64), torch.tensor([0.13, 0.07, 0.05], dtype=F64))
    assert torch.autograd.gradcheck(lambda v: warp_volume(v, g, Tw), (vol,))
    d = torch.tensor([1.2, 1.7], dtype=F64)
    assert torch.autograd.gradcheck(lambda v: sample_frustum(v, g, K[0], torch.eye(4, dtype=F64), 3, 4, d), (vol,))


def test_grid_bad_shapes_raise():
    K, T = cameras_around((), 2)
    with pytest.raises(ValueError, match=r"K: expected shape \(\.\.\., N, 3, 3\) where N=3, got \(2, 3, 3\)"):
        unproject_to_grid(GRID, torch.zeros(3, 1, 4, 4, dtype=F64), K, T)
    with pytest.raises(ValueError, match=r"volume: expected shape \(\.\.\., \?, 6, 2, 4\), got \(1, 4, 2, 6\)"):
        warp_volume(torch.zeros(1, 4, 2, 6), GRID, torch.eye(4))
    with pytest.raises(ValueError, match=r"depth: expected shape \(\.\.\., N, 1, H, W\)"):
        carve_depth(GRID, torch.zeros(2, 2, 4, 4, dtype=F64), K, T)


def components_reference(mask: torch.Tensor) -> torch.Tensor:
    """Breadth-first search over 26-neighbours, first voxels in memory order first."""
    Z, Y, X = mask.shape
    out = torch.zeros(mask.shape, dtype=torch.long)
    n = 0
    for start in mask.nonzero().tolist():
        if out[tuple(start)]:
            continue
        n += 1
        out[tuple(start)] = n
        todo = [start]
        while todo:
            z, y, x = todo.pop()
            for dz in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        q = (z + dz, y + dy, x + dx)
                        if 0 <= q[0] < Z and 0 <= q[1] < Y and 0 <= q[2] < X and mask[q] and not out[q]:
                            out[q] = n
                            todo.append(list(q))
    return out


def test_connected_components_match_a_search():
    from unrender.geometry import connected_components

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 6, 7, 8, generator=g) < 0.1
    got = connected_components(masks)
    for b in range(3):
        assert torch.equal(got[b], components_reference(masks[b]))
    assert got.max() > 5  # several components
    assert connected_components(masks[0]).shape == (6, 7, 8)
    with pytest.raises(ValueError, match="mask"):
        connected_components(masks.float())


def test_boxes_from_components_recover_a_turned_car():
    from unrender.geometry import box_iou_3d, boxes_from_components, connected_components
    from unrender.geometry.rotations import yaw_matrix

    grid = VoxelGrid((-6.0, -2.0, -6.0), (6.0, 0.0, 6.0), (96, 16, 96))
    pts = grid.centers(dtype=F64).reshape(-1, 3)
    for yaw in (0.0, 0.4, -1.2, 1.5):
        box = torch.tensor([1.0, -0.75, -0.5, 4.5, 1.5, 1.8, yaw], dtype=F64)
        local = (pts - box[:3]) @ yaw_matrix(box[6:7].squeeze())  # world -> box frame (R^T p as p @ R)
        inside = (local.abs() <= box[3:6] / 2).all(-1).reshape(grid.shape)
        (got,) = boxes_from_components(connected_components(inside), grid)
        assert box_iou_3d(got[None].float(), box[None].float()).item() > 0.85, (yaw, got)
        d = (got[6] - yaw + torch.pi / 2) % torch.pi - torch.pi / 2  # a half-turn is the same box
        assert abs(float(d)) < 0.05, (yaw, got)


def test_pasting_a_prototype_identity_translation_yaw_and_scale():
    """A 4-voxel prototype pasted into a scene grid: the identity gives it back exactly, a known translation
    and a quarter turn of yaw move it by exactly that, a scale of 2 makes it twice as wide."""
    from unrender.geometry import yaw_matrix

    proto_grid = VoxelGrid((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), (4, 4, 4))
    scene = VoxelGrid((-2.0, -2.0, -2.0), (2.0, 2.0, 2.0), (8, 8, 8))  # the same voxel size, twice as wide
    proto = torch.rand(2, 4, 4, 4, dtype=torch.float64, generator=gen(5))
    eye = torch.eye(4, dtype=torch.float64)
    out = warp_volume(proto, proto_grid, eye, dst_grid=scene, affine=True)
    torch.testing.assert_close(out[:, 2:6, 2:6, 2:6], proto, atol=1e-12, rtol=0)
    assert out.sum() == pytest.approx(proto.sum())  # nothing outside the pasted box
    shift = eye.clone()
    shift[:3, 3] = torch.tensor([1.0, 0.0, -0.5], dtype=torch.float64)  # +2 voxels along x, -1 along z
    out = warp_volume(proto, proto_grid, shift, dst_grid=scene, affine=True)
    torch.testing.assert_close(out[:, 1:5, 2:6, 4:8], proto, atol=1e-12, rtol=0)
    turn = eye.clone()
    turn[:3, :3] = yaw_matrix(torch.tensor(torch.pi / 2, dtype=torch.float64))
    out = warp_volume(proto, proto_grid, turn, dst_grid=scene, affine=True)[:, 2:6, 2:6, 2:6]
    rotated = torch.stack([torch.rot90(proto, k, dims=(1, 3)) for k in (1, -1)])  # (Z, Y, X): about y
    assert min(float((out - r).abs().max()) for r in rotated) < 1e-9
    big = eye.clone()
    big[:3, :3] *= 2
    out = warp_volume(torch.ones(1, 4, 4, 4, dtype=torch.float64), proto_grid, big, dst_grid=scene, affine=True)
    assert (out > 0).all() and torch.equal(out[0, 1:7, 1:7, 1:7], torch.ones(6, 6, 6, dtype=torch.float64))
    # a 2 m prototype now spans the 4 m scene box (its outer voxels blend with the zeros beyond it)
    vol = torch.rand(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: warp_volume(v, proto_grid, big, dst_grid=scene, affine=True), (vol,))
