import kornia.geometry.camera as KCam
import kornia.geometry.linalg as KL
import pytest
import torch
import torch.nn.functional as F
from _util import BATCHES, gen, rand_rigid

from unrender.geometry import (
    camera_rays,
    compose,
    crop_intrinsics,
    depth_to_points,
    distort_points,
    invert_rigid,
    look_at,
    make_intrinsics,
    make_rigid,
    normalized_to_pixels,
    pixel_centers,
    pixels_to_normalized,
    plucker,
    plucker_map,
    project_points,
    scale_intrinsics,
    split_rigid,
    transform_directions,
    transform_points,
    undistort_points,
    unproject_points,
    validate_intrinsics,
)

F64 = torch.float64


def rand_K(batch, dtype=F64):
    g = gen(7)
    f = 50 + 50 * torch.rand(batch, generator=g, dtype=dtype)
    return make_intrinsics(f, f * 1.1, 30 + torch.rand(batch, generator=g, dtype=dtype), 20.0 + 0 * f)


# --- poses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_pose_round_trips(batch):
    a_from_b, b_from_c = rand_rigid(batch, seed=1), rand_rigid(batch, seed=2)
    a_from_c = compose(a_from_b, b_from_c)
    eye = torch.eye(4, dtype=F64).expand(*batch, 4, 4)
    torch.testing.assert_close(compose(invert_rigid(a_from_c), a_from_c), eye)
    torch.testing.assert_close(compose(a_from_c, invert_rigid(b_from_c)), a_from_b)
    pts = torch.randn(*batch, 5, 3, dtype=F64)
    torch.testing.assert_close(transform_points(invert_rigid(a_from_b), transform_points(a_from_b, pts)), pts)
    R, t = split_rigid(a_from_b)
    torch.testing.assert_close(make_rigid(R, t), a_from_b)
    homog = (a_from_b[..., None, :, :] @ torch.cat([pts, torch.ones_like(pts[..., :1])], -1)[..., None])[..., :3, 0]
    torch.testing.assert_close(transform_points(a_from_b, pts), homog)
    torch.testing.assert_close(transform_directions(a_from_b, pts), pts @ R.transpose(-1, -2))


def test_poses_agree_with_kornia():
    T1, T2 = rand_rigid((4,), torch.float32, 1), rand_rigid((4,), torch.float32, 2)
    pts = torch.randn(4, 10, 3)
    torch.testing.assert_close(compose(T1, T2), KL.compose_transformations(T1, T2), atol=1e-5, rtol=0)
    torch.testing.assert_close(invert_rigid(T1), KL.inverse_transformation(T1), atol=1e-5, rtol=0)
    torch.testing.assert_close(transform_points(T1, pts), KL.transform_points(T1, pts), atol=1e-5, rtol=0)


def test_look_at_opencv_axes():
    # camera at the origin looking along +z in the y-down world: the identity
    T = look_at(torch.zeros(3), torch.tensor([0.0, 0.0, 5.0]))
    torch.testing.assert_close(T, torch.eye(4))
    # a camera looking at a point sees it on its optical axis, in front
    eye, tgt = torch.tensor([3.0, -2.0, -4.0]), torch.tensor([0.5, 1.0, 2.0])
    p = transform_points(look_at(eye, tgt), tgt[None])[0]
    torch.testing.assert_close(p[:2], torch.zeros(2), atol=1e-5, rtol=0)
    assert p[2] > 0
    # world "up" (-y) appears up in the image (negative camera y)
    up_pt = transform_points(look_at(eye, tgt), (tgt + torch.tensor([0.0, -1.0, 0.0]))[None])[0]
    assert up_pt[1] < 0


@pytest.mark.parametrize("batch", BATCHES)
def test_look_at_batch_and_degenerate(batch):
    eye = torch.randn(*batch, 3, dtype=F64)
    T = look_at(eye, eye + torch.tensor([0.0, 2.0, 0.0], dtype=F64))  # looking straight down: parallel to up
    assert T.shape == (*batch, 4, 4) and torch.isfinite(T).all()
    R = T[..., :3, :3]
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=F64).expand(*batch, 3, 3))
    assert torch.isfinite(look_at(eye, eye)).all()  # eye == target: documented, looks along +z


def test_pose_gradcheck():
    T, pts = rand_rigid((2,)).requires_grad_(True), torch.randn(2, 3, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(transform_points, (T, pts))
    assert torch.autograd.gradcheck(transform_directions, (T, pts))
    assert torch.autograd.gradcheck(invert_rigid, (T,))
    assert torch.autograd.gradcheck(compose, (T, rand_rigid((2,), seed=5).requires_grad_(True)))
    eye = torch.tensor([1.0, -2.0, -3.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(look_at, (eye, torch.zeros(3, dtype=F64)))
    R, t = split_rigid(T.detach())
    assert torch.autograd.gradcheck(make_rigid, (R.requires_grad_(True), t.requires_grad_(True)))


# --- camera -----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_project_unproject_round_trip(batch):
    K = rand_K(batch)
    pts = torch.randn(*batch, 6, 3, dtype=F64)
    pts[..., 2] = pts[..., 2].abs() + 0.5
    uv, z, ok = project_points(pts, K)
    assert uv.shape == (*batch, 6, 2) and z.shape == (*batch, 6) and ok.all()
    torch.testing.assert_close(unproject_points(uv, z, K), pts)
    dm = torch.rand(*batch, 1, 4, 5, dtype=F64) + 1
    P = depth_to_points(dm, K)
    assert P.shape == (*batch, 4, 5, 3)
    uv2, z2, _ = project_points(P.flatten(-3, -2), K)
    torch.testing.assert_close(uv2, pixel_centers(4, 5, dtype=F64).reshape(-1, 2).expand_as(uv2))
    torch.testing.assert_close(z2, dm.flatten(-3))


def test_camera_agrees_with_kornia():
    K = rand_K((8,), torch.float32)
    pts = torch.randn(8, 3)
    pts[:, 2] = pts[:, 2].abs() + 1
    uv, z, _ = project_points(pts[:, None], K)
    torch.testing.assert_close(uv[:, 0], KCam.project_points(pts, K), atol=1e-5, rtol=1e-6)
    back = unproject_points(uv, z, K)[:, 0]
    torch.testing.assert_close(back, KCam.unproject_points(uv[:, 0], z, K), atol=1e-5, rtol=1e-6)


def test_points_behind_camera_are_masked_and_finite():
    K = make_intrinsics(100.0, 100.0, 50.0, 50.0)
    pts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, -2.0], [0.1, 0.2, 3.0]], requires_grad=True)
    uv, z, ok = project_points(pts, K)
    assert ok.tolist() == [False, False, True]
    assert torch.isfinite(uv).all()
    uv.sum().backward()
    assert torch.isfinite(pts.grad).all()


def test_convention_pixel_centres_match_grid_sample():
    # The value of pixel (row i, col j) is sampled exactly at (u, v) = (j, i) through our normalisation.
    H, W = 5, 7
    img = torch.arange(H * W, dtype=F64).reshape(1, 1, H, W)
    uv = pixel_centers(H, W, dtype=F64)
    xy = pixels_to_normalized(uv, H, W)
    out = F.grid_sample(img, xy[None], mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, img)
    torch.testing.assert_close(normalized_to_pixels(xy, H, W), uv)
    # and a half-pixel shift would not: (u + 0.5) samples between pixels
    shifted = F.grid_sample(img, pixels_to_normalized(uv + 0.5, H, W)[None], mode="bilinear", align_corners=False)
    assert not torch.allclose(shifted, img)


def test_convention_pixel_centre_projection():
    # A point on the optical axis lands at (cx, cy); with cx = (W - 1) / 2 that is the image centre.
    W, H = 8, 6
    K = make_intrinsics(10.0, 10.0, (W - 1) / 2, (H - 1) / 2)
    uv, _, _ = project_points(torch.tensor([[0.0, 0.0, 1.0]]), K)
    xy = pixels_to_normalized(uv, H, W)
    torch.testing.assert_close(xy, torch.zeros(1, 2))


def test_convention_scale_intrinsics_keeps_edges():
    # Downsampling 2x by averaging 2x2 blocks: the point between pixel centres 0 and 1 becomes centre 0.
    K = make_intrinsics(100.0, 100.0, 0.5, 0.5)  # principal point on the corner shared by pixels 0 and 1
    K2 = scale_intrinsics(K, 0.5, 0.5)
    uv, _, _ = project_points(torch.tensor([[0.0, 0.0, 1.0]]), K2)
    torch.testing.assert_close(uv, torch.zeros(1, 2))
    # verify with a real image: block average of a ramp
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    small = F.avg_pool2d(img, 2)
    xy = pixels_to_normalized(uv, 2, 2)
    val = F.grid_sample(small, xy[None, None], align_corners=False)
    big_val = F.grid_sample(
        img, pixels_to_normalized(torch.tensor([[0.5, 0.5]]), 4, 4)[None, None], align_corners=False
    )
    torch.testing.assert_close(val, big_val)


def test_crop_intrinsics():
    K = rand_K((2, 3))
    pts = torch.tensor([[0.2, -0.1, 2.0]], dtype=F64)
    uv, _, _ = project_points(pts, K)
    uvc, _, _ = project_points(pts, crop_intrinsics(K, 3, 5))
    torch.testing.assert_close(uvc, uv - torch.tensor([5.0, 3.0], dtype=F64))
    assert scale_intrinsics(K, 2.0, 2.0).shape == (2, 3, 3, 3)


def test_camera_gradcheck():
    K = rand_K((2,)).requires_grad_(True)
    pts = torch.tensor([[[0.1, 0.2, 2.0], [0.3, -0.1, 1.5]]] * 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, k: project_points(p, k)[0], (pts, K))
    uv = torch.rand(2, 2, 2, dtype=F64, requires_grad=True)
    z = torch.rand(2, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(unproject_points, (uv, z, K))
    assert torch.autograd.gradcheck(depth_to_points, (torch.rand(2, 1, 2, 3, dtype=F64, requires_grad=True), K))
    assert torch.autograd.gradcheck(lambda k: scale_intrinsics(k, 0.5, 0.25), (K,))
    assert torch.autograd.gradcheck(lambda k: crop_intrinsics(k, 1, 2), (K,))
    assert torch.autograd.gradcheck(lambda x: pixels_to_normalized(x, 4, 5), (uv,))
    assert torch.autograd.gradcheck(lambda x: normalized_to_pixels(x, 4, 5), (uv,))


def test_impossible_cameras_raise():
    with pytest.raises(ValueError, match="focal length is zero"):
        make_intrinsics(0.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        validate_intrinsics(torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match=r"K: expected shape \(\.\.\., 3, 3\), got \(4, 4\)"):
        project_points(torch.zeros(2, 3), torch.eye(4))
    with pytest.raises(ValueError, match=r"points_cam: expected shape \(\.\.\., \?, 3\), got \(2, 2\)"):
        project_points(torch.zeros(2, 2), torch.eye(3))
    with pytest.raises(ValueError, match="batch shapes do not broadcast"):
        project_points(torch.zeros(2, 5, 3), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match="depth"):
        unproject_points(torch.zeros(4, 2), torch.zeros(3), torch.eye(3))


# --- rays ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_rays_pass_through_pixels(batch):
    K, T = rand_K(batch), rand_rigid(batch, seed=4)
    o, d = camera_rays(K, T, 3, 4)
    assert o.shape == d.shape == (*batch, 3, 4, 3)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(*batch, 3, 4, dtype=F64))
    pts = (o + 2.5 * d).flatten(-3, -2)
    uv, z, ok = project_points(transform_points(T, pts), K)
    assert ok.all()
    torch.testing.assert_close(uv, pixel_centers(3, 4, dtype=F64).reshape(-1, 2).expand_as(uv))
    pm = plucker_map(K, T, 3, 4)
    assert pm.shape == (*batch, 6, 3, 4)
    torch.testing.assert_close(pm.movedim(-3, -1), plucker(o, d))


FOX_LENS = torch.tensor([0.0578, -0.0805, -0.00098, 0.00016, 0.0], dtype=F64)  # the fox capture's k1 k2 p1 p2


@pytest.mark.parametrize("batch", BATCHES)
def test_undistort_points_inverts_distort_points(batch):
    xy = (torch.rand(*batch, 7, 2, generator=gen(9), dtype=F64) - 0.5) * 1.4  # a 1080 x 1920 image's extent
    torch.testing.assert_close(undistort_points(distort_points(xy, FOX_LENS), FOX_LENS), xy)
    torch.testing.assert_close(distort_points(undistort_points(xy, FOX_LENS), FOX_LENS), xy)


def test_undistort_points_matches_kornia():
    from kornia.geometry.calibration import undistort_points as k_undistort

    uv = torch.rand(1, 50, 2, generator=gen(3), dtype=F64) * torch.tensor([1080.0, 1920.0], dtype=F64)
    K = make_intrinsics(1375.5, 1374.5, 554.6, 965.3).to(F64)
    ref = k_undistort(uv, K[None], FOX_LENS[None])  # pixels out
    xy = undistort_points(unproject_points(uv[0], torch.ones(50, dtype=F64), K)[:, :2], FOX_LENS)
    ours = project_points(torch.cat([xy, torch.ones(50, 1, dtype=F64)], -1), K)[0]
    torch.testing.assert_close(ours, ref[0], atol=1e-4, rtol=0)  # kornia stops after 5 iterations


def test_rays_of_a_distorting_lens_land_on_their_pixels():
    K, T = rand_K(()), rand_rigid((), seed=5)
    o, d = camera_rays(K, T, 3, 4, distortion=FOX_LENS)
    p = transform_points(T, (o + 2.0 * d).reshape(-1, 3))
    xy = distort_points(p[:, :2] / p[:, 2:], FOX_LENS)
    uv = project_points(torch.cat([xy, torch.ones_like(xy[:, :1])], -1), K)[0]
    torch.testing.assert_close(uv, pixel_centers(3, 4, dtype=F64).reshape(-1, 2))
    o0, d0 = camera_rays(K, T, 3, 4)
    assert (d - d0).abs().max() > 1e-4  # the lens moved the rays


def test_convention_plucker_order_and_moment():
    # A ray along +z through (1, 0, 0): d = (0, 0, 1), o x d = (0, -1, 0). Swapping the halves or
    # using d x o would fail.
    p = plucker(torch.tensor([1.0, 0.0, 5.0]), torch.tensor([0.0, 0.0, 3.0]))
    torch.testing.assert_close(p, torch.tensor([0.0, 0.0, 1.0, 0.0, -1.0, 0.0]))
    # the moment does not depend on the point chosen on the ray
    o, d = torch.randn(3, dtype=F64), torch.randn(3, dtype=F64)
    torch.testing.assert_close(plucker(o, d), plucker(o + 1.7 * d, d))


def test_rays_gradcheck():
    K, T = rand_K((1,)).requires_grad_(True), rand_rigid((1,)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda k, t: camera_rays(k, t, 2, 3), (K, T))
    assert torch.autograd.gradcheck(lambda k, t: plucker_map(k, t, 2, 2), (K, T))
    o, d = torch.randn(2, 3, dtype=F64, requires_grad=True), torch.randn(2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(plucker, (o, d))
