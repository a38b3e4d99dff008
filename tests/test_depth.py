import dataclasses
import math

import pytest
import torch
from torch.utils.data import default_collate

from unrender.data.formats import read_kitti_calib, read_kitti_label, read_kitti_velodyne, velodyne_depth_map
from unrender.engine import Trainer, find_latest_checkpoint, load_checkpoint
from unrender.geometry import depth_to_points, make_intrinsics, make_rigid, so3_exp
from unrender.methods import get_method
from unrender.methods.depth.data import DepthDataset
from unrender.methods.depth.evaluate import ablation_table
from unrender.methods.depth.losses import (
    camera_height_loss,
    depth_losses,
    frame_geometry,
    photometric_error,
    road_diagnostics,
    road_plane_loss,
    scale_weights,
    ssim_dissimilarity,
    travel_direction,
    update_camera_target,
)
from unrender.methods.depth.scale import (
    footprint_camera_height,
    mask_extents,
    object_depth_from_height,
    plane_containing,
    plane_from_point_map,
)
from unrender.render import inverse_warp
from unrender.world import CLASSES

DEPTH = get_method("depth")


def make_cfg(tmp_path, preset="tiny", **data):
    cfg = DEPTH.make_config(preset)
    cfg.data = dataclasses.replace(cfg.data, root=tmp_path / "data", **data)
    cfg.train = dataclasses.replace(cfg.train, out_dir=tmp_path / "run", progress=False, tensorboard=False)
    return cfg


@pytest.fixture(scope="module")
def streets(tmp_path_factory):
    """Two generated street videos of 6 frames at 96x320 (ground truth for the geometry tests)."""
    cfg = make_cfg(tmp_path_factory.mktemp("streets"), num_train=3, frames=6, height=96, width=320)
    return cfg, DepthDataset(cfg, "train", workers=2)


# --- geometry ----------------------------------------------------------------------------------


def test_ssim_matches_a_per_statistic_average_pool_reference():
    """The one-convolution SSIM equals Monodepth2's form: five 3x3 average pools on reflection padding."""
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 9, 13, dtype=torch.float64), torch.rand(2, 3, 9, 13, dtype=torch.float64)

    def pool(t):
        return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(t, (1, 1, 1, 1), mode="reflect"), 3, 1)

    mx, my = pool(x), pool(y)
    sx, sy, sxy = pool(x * x) - mx**2, pool(y * y) - my**2, pool(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ref = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sx + sy + c2))
    torch.testing.assert_close(ssim_dissimilarity(x, y), ((1 - ref) / 2).clamp(0, 1), rtol=0, atol=1e-12)


def test_plane_fit_recovers_a_known_camera_height(streets):
    # analytic: a plane tilted by a known rotation, 1.65 m from the camera
    R = so3_exp(torch.tensor([0.05, 0.02, -0.03], dtype=torch.float64))
    v, u = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    local = torch.stack([u - 8, torch.zeros_like(u), v + 4], -1).double()  # the plane y = 0
    pts = local @ R.T + R @ torch.tensor([0.0, 1.65, 0.0], dtype=torch.float64)
    fit = plane_from_point_map(pts[None], torch.ones(1, 12, 16, dtype=torch.bool))
    assert fit["height"].item() == pytest.approx(1.65, rel=1e-6)
    torch.testing.assert_close(fit["normal"][0], -R[:, 1])
    # rendered: the road of generated frames, back-projected with the true depth
    cfg, ds = streets
    batch = default_collate([ds[i] for i in range(0, len(ds), 2)])
    pts = depth_to_points(batch["depth"], batch["K"])
    fit = plane_from_point_map(pts, batch["road"][:, 0] & (batch["depth"][:, 0] > 0))
    assert fit["ok"].all()
    assert ((fit["height"] / batch["camera_height"] - 1).abs() < 0.01).all(), fit["height"]


def test_plane_fit_is_differentiable_in_the_depth():
    K = make_intrinsics(50.0, 50.0, 15.5, 7.5, dtype=torch.float64)[None]
    v = torch.arange(16, dtype=torch.float64)[:, None].expand(16, 32)
    depth = (50.0 * 1.65 / (v - 7.5 + 4.0))[None, None].clone().requires_grad_(True)  # a flat road
    fit = plane_from_point_map(depth_to_points(depth, K), torch.ones(1, 16, 32, dtype=torch.bool))
    fit["height"].sum().backward()
    assert torch.isfinite(depth.grad).all() and depth.grad.abs().sum() > 0


def _road_depth(K: torch.Tensor, H: int, W: int, height) -> torch.Tensor:
    """Depth of the rays of an ``H x W`` image that hit the surface ``y = height(x)`` (x, y camera metres
    per unit depth solved by fixed-point iteration: the road under a camera looking along +z)."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    ry, rx = (v - K[0, 1, 2]) / K[0, 1, 1], (u - K[0, 0, 2]) / K[0, 0, 0]
    d = 1.65 / ry
    for _ in range(50):
        d = height(d * rx) / ry
    return d[None, None]


def test_plane_containing_recovers_a_rolled_road_through_outliers(streets):
    # analytic: a road rolled by 4 degrees about the direction of travel (+z), 1.65 m from the camera,
    # with a fifth of its points replaced by a wrong depth (a car's mask leaking into the road)
    K = make_intrinsics(50.0, 50.0, 15.5, -4.0, dtype=torch.float64)[None]
    roll = math.radians(4.0)
    depth = _road_depth(K, 16, 32, lambda x: (1.65 - x * math.sin(roll)) / math.cos(roll))
    bad = torch.rand(1, 1, 16, 32, generator=torch.Generator().manual_seed(0)) < 0.2
    depth = torch.where(bad, depth * 0.6, depth)
    fit = plane_containing(depth_to_points(depth, K), torch.ones(1, 16, 32, dtype=torch.bool),
                           torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))  # fmt: skip
    true_n = torch.tensor([-math.sin(roll), -math.cos(roll), 0.0], dtype=torch.float64)  # towards up
    assert math.degrees(math.acos(min(1.0, float(fit["normal"][0] @ true_n)))) < 0.3
    assert fit["height"].item() == pytest.approx(1.65, rel=0.01)
    # rendered: the road of generated frames with the true depth and the true motion
    cfg, ds = streets
    batch = default_collate([ds[i] for i in range(0, len(ds), 2)])
    road = batch["road"][:, 0] & (batch["depth"][:, 0] > 0)
    fit = plane_containing(depth_to_points(batch["depth"], batch["K"]), road, travel_direction(batch["src_from_tgt"]))
    assert fit["ok"].all()
    assert ((fit["height"] / batch["camera_height"] - 1).abs() < 0.01).all(), fit["height"]


def test_footprints_through_the_travel_plane_ignore_a_pitched_road(streets):
    """Issue 29: a road fitted 2 degrees pitched (as early in training) biased the camera height the
    footprints imply; the normal of the road plane that contains the direction of travel does not pitch."""
    cfg, ds = streets
    batch = default_collate([ds[i] for i in range(len(ds))])
    K, depth = batch["K"].double(), batch["depth"].double()
    H, W = depth.shape[-2:]
    v = torch.arange(H, dtype=torch.float64)[:, None].expand(H, W)
    ry = (v - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None]  # (B, H, W)
    pitch = math.radians(2.0)
    pitched = 1.65 / (ry + pitch)  # the road y = 1.65 - pitch z (camera frame), along each ray
    road = batch["road"][:, 0] & (ry + pitch > 0.02)
    depth = torch.where(road[:, None], pitched[:, None], depth)
    geo = frame_geometry(depth.float(), batch, cfg)
    on_road = geo["keep"] & (batch["labels"] == 0)
    along = plane_containing(geo["points"], geo["road"], travel_direction(batch["src_from_tgt"]))
    implied = {name: footprint_camera_height(geo["extents"], geo["prior"], batch["K"], n, on_road)
               for name, n in (("fitted", geo["plane"]["normal"]), ("travel", along["normal"]))}  # fmt: skip
    err = {k: (v[torch.isfinite(v)].median() / 1.65 - 1).abs().item() for k, v in implied.items()}
    assert err["travel"] < 0.06 and err["fitted"] > 2 * err["travel"] + 0.05, err


def test_the_footprint_rule_reads_the_mask_top_as_the_roof_far_edge():
    """Issue 29: seen from above its roof, a car's mask ends at the roof's far edge, not above its near
    ground contact; the rule with the roof depth gives the camera height exactly, without it low. A van
    taller than the camera shows its near top edge, and the roof depth does not enter."""
    f, cy, cam = 100.0, 30.0, 1.65
    K = make_intrinsics(f, f, 40.0, cy, dtype=torch.float64)[None].expand(2, 3, 3)
    z, roof = 12.0, 2.5
    heights = torch.tensor([[1.5], [2.1]], dtype=torch.float64)  # a car below the camera, a van above it
    far = torch.tensor([[z + roof], [z]], dtype=torch.float64)  # the depth of the edge the mask's top is
    ext = {"bottom": cy + f * cam / torch.full_like(heights, z), "top": cy + f * (cam - heights) / far,
           "centre_u": torch.full_like(heights, 55.0)}  # fmt: skip
    n, keep = torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64).expand(2, 3), torch.ones(2, 1, dtype=torch.bool)
    exact = footprint_camera_height(ext, heights, K, n, keep, roof_depth=roof)
    plain = footprint_camera_height(ext, heights, K, n, keep)
    assert torch.allclose(exact, torch.full_like(exact, cam), atol=1e-9), exact
    assert plain[0, 0] < cam - 0.02 and plain[1, 0] == pytest.approx(cam, abs=1e-9), plain
    hidden = footprint_camera_height(ext, heights, K, n, torch.zeros_like(keep), roof_depth=roof)
    assert torch.isnan(hidden).all()


def test_scale_weights_hand_over_from_objects_to_camera_and_relax_the_road_once_levelled():
    cfg = DEPTH.make_config("cpu")
    s = cfg.scale
    first, late = scale_weights(0, cfg), scale_weights(s.camera_freeze_epochs, cfg)
    assert first == (s.object_weight, 0.0, s.road_weight)
    assert late[2] == s.road_settled_weight < s.road_weight
    assert late[0] < first[0] and late[1] > first[1]
    assert scale_weights(s.camera_freeze_epochs - 1, cfg)[2] == s.road_weight


def test_road_plane_loss_flattens_the_collapsed_road():
    """The collapse of issue 29: the road far in the centre of the lower image, near at the sides. Its
    fitted mean normal is level with the motion (a loss on that normal sees nothing wrong); the
    road-plane loss does, and descending it on the depth makes the road flat and level."""
    K = make_intrinsics(50.0, 50.0, 15.5, -4.0, dtype=torch.float64)[None]
    true = _road_depth(K, 16, 32, lambda x: torch.full_like(x, 1.65))
    bent = _road_depth(K, 16, 32, lambda x: 1.65 + 0.6 * torch.exp(-((x / 1.5) ** 2)))  # a trough under the camera
    poses = torch.eye(4, dtype=torch.float64).repeat(1, 2, 1, 1)
    poses[0, 0, 2, 3], poses[0, 1, 2, 3] = 1.0, -1.0  # previous 1 m behind, next 1 m ahead
    road = torch.ones(1, 16, 32, dtype=torch.bool)
    batch = {"depth": true.float(), "K": K.float(), "road": road[:, None]}

    def diag(depth):
        pts = depth_to_points(depth.detach(), K)
        return road_diagnostics(plane_from_point_map(pts, road), depth.detach(), poses, batch)

    before = diag(bent)
    # the loss does not move the global scale (the camera-height loss's job): no gradient along it
    gain = torch.ones((), dtype=torch.float64, requires_grad=True)
    pts = depth_to_points(bent, K)
    road_plane_loss(pts * gain, road, plane_containing(pts, road, travel_direction(poses))).backward()
    assert abs(gain.grad.item()) < 1e-9
    assert before["road_travel_deg"] < 0.01  # the mean normal contains the motion ...
    assert before["road_spread_deg"] > 5 and before["road_abs_rel"] > 0.05  # ... while the road is bent
    depth = bent.clone().requires_grad_(True)
    opt = torch.optim.Adam([depth], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        pts = depth_to_points(depth, K)
        road_plane_loss(pts, road, plane_containing(pts, road, travel_direction(poses))).backward()
        opt.step()
    after = diag(depth)
    assert after["road_spread_deg"] < 1 and after["road_tilt_deg"] < 1, after
    # the right shape up to the scale (which is the camera-height loss's job): depth / truth is one number
    ratio = (depth.detach() / true).flatten()
    assert ratio.std() / ratio.mean() < 0.01 < (bent / true).std() / (bent / true).mean()
    # the pull is along the plane's normal only: a flat level road costs nothing
    pts = depth_to_points(true, K)
    assert road_plane_loss(pts, road, plane_containing(pts, road, travel_direction(poses))).item() < 1e-6
    # a frame without road or without a plane drops out, its gradient included (no NaN from 0 * inf)
    two = torch.cat([bent, bent]).requires_grad_(True)
    roads = torch.stack([road[0], torch.zeros_like(road[0])])
    plane = plane_containing(depth_to_points(two.detach(), K.expand(2, 3, 3)), road.expand(2, -1, -1),
                             travel_direction(poses.expand(2, -1, -1, -1)))  # fmt: skip
    plane["normal"][1], plane["height"][1] = float("nan"), float("nan")
    for r in (roads, road.expand(2, -1, -1)):
        loss = road_plane_loss(depth_to_points(two, K.expand(2, 3, 3)), r, plane)
        (g,) = torch.autograd.grad(loss, two)
        assert torch.isfinite(loss) and torch.isfinite(g).all() and g[1].abs().max() == 0


def test_warping_with_true_depth_and_pose_explains_static_pixels(streets):
    cfg, ds = streets
    item = default_collate([ds[1]])
    static = (item["depth"] > 0) & (item["depth"] < 60) & ~item["masks"].any(1, keepdim=True)
    tgt = item["rgb"][:, 1]
    for j, src in enumerate((item["rgb"][:, 0], item["rgb"][:, 2])):
        warped, valid = inverse_warp(src, item["depth"], item["K"], item["src_from_tgt"][:, j])
        m = static & valid
        err = photometric_error(warped, tgt)[m]
        ident = photometric_error(src, tgt)[m]
        assert m.float().mean() > 0.3
        # near zero except where the source sees the pixel's surface occluded (disocclusions, edges)
        assert err.median() < 0.01, err.median()
        assert err.mean() < 0.3 * ident.mean(), (err.mean(), ident.mean())


def test_moving_pixels_are_what_true_depth_and_pose_cannot_explain(streets):
    """The ``moving`` mask (evaluation only) marks objects that move in the world: boxed objects,
    whose pixels the warp with true depth and ego pose explains far worse than the static scene."""
    cfg, ds = streets
    items = default_collate([ds[i] for i in range(len(ds))])
    moving = items["moving"]
    assert moving.any() and not (moving & (items["semantic"] == CLASSES.index("building"))).any()
    warped, valid = inverse_warp(items["rgb"][:, 2], items["depth"], items["K"], items["src_from_tgt"][:, 1])
    err = photometric_error(warped, items["rgb"][:, 1])
    visible = valid & (items["depth"] > 0) & (items["depth"] < 60)
    static = visible & ~items["masks"].any(1, keepdim=True)
    assert err[visible & moving].median() > 5 * err[static].median()


def test_direct_alignment_recovers_a_perturbed_pose(streets):
    """Gauss-Newton alignment with the true depth pulls a pose rotated by ~0.5 degrees and shifted
    by ~8 cm back towards the true one."""
    from unrender.geometry import axis_angle_to_matrix, matrix_to_axis_angle
    from unrender.render import align_pose

    cfg, ds = streets
    items = default_collate([ds[i] for i in range(len(ds))])
    true = items["src_from_tgt"][:, 1]
    gen = torch.Generator().manual_seed(0)
    B = len(true)
    noise = make_rigid(axis_angle_to_matrix(torch.randn(B, 3, generator=gen) * 0.006),
                       torch.randn(B, 3, generator=gen) * 0.05)  # fmt: skip
    depth = torch.where(items["depth"] > 0, items["depth"], torch.full_like(items["depth"], 200.0))

    def errors(T):
        d = T @ torch.linalg.inv(true)
        return matrix_to_axis_angle(d[:, :3, :3]).norm(dim=-1).rad2deg().mean(), d[:, :3, 3].norm(dim=-1).mean()

    rot0, tr0 = errors(noise @ true)
    rot, tr = errors(align_pose(items["rgb"][:, 2], items["rgb"][:, 1], depth, items["K"], noise @ true, iters=3))
    assert rot < 0.4 * rot0 and tr < 0.7 * tr0, (rot0, rot, tr0, tr)


def test_scale_recovery_on_scaled_ground_truth(streets):
    """Object heights and the road plane recover a known factor k applied to the true depth."""
    cfg, ds = streets
    batch = default_collate([ds[i] for i in range(len(ds))])
    for k in (0.5, 2.0, 7.0):
        geo = frame_geometry(batch["depth"] * k, batch, cfg)
        assert geo["keep"].sum() >= 5
        # each frame's scale (mean over its kept objects) estimates 1/k; the median frame is within 2 %
        fs = geo["frame_scale"]
        assert (1 / fs[torch.isfinite(fs)].median()).item() == pytest.approx(k, rel=0.02)
        assert (geo["plane"]["height"] / (1.65 * k)).sub(1).abs().max() < 0.01


def test_metric_scale_moves_depth_and_motion_together(tmp_path):
    """The learned metric scale multiplies depth and translation alike, so warping (and the
    photometric loss) cannot see it; the camera-height loss reaches nothing but that scale."""
    cfg = DEPTH.make_config("tiny")
    cfg.data = dataclasses.replace(cfg.data, root=tmp_path)
    model = DEPTH.build_model(cfg).eval()
    batch = default_collate([DepthDataset(cfg, "train")[0]])
    with torch.no_grad():
        model.pose_net.out.bias.copy_(torch.tensor([0.0, 0, 0, 0.1, 0.0, 0.8]))
        a = depth_losses(model, batch, cfg)["photometric"]
        d1 = model.predict_depth(batch["rgb"][:, 1])
        model.log_scale.fill_(0.7)
        b = depth_losses(model, batch, cfg)["photometric"]
        d2 = model.predict_depth(batch["rgb"][:, 1])
    assert torch.allclose(d2, d1 * math.exp(0.7), rtol=1e-5)
    assert b.item() == pytest.approx(a.item(), rel=1e-4)
    # ... nor its gradient, the alignment's correction of the poses included (which once did not scale)
    cfg.scale = dataclasses.replace(
        cfg.scale, object_weight=0.0, camera_weight=0.0, road_weight=0.0, road_settled_weight=0.0
    )
    cfg.loss = dataclasses.replace(cfg.loss, smoothness=0.0)
    loss = depth_losses(model, batch, cfg)["loss"]  # the photometric term alone
    (g_scale,) = torch.autograd.grad(loss, model.log_scale)
    assert abs(g_scale.item()) < 1e-5  # 4e-9 here; 0.033 when the correction did not scale
    loss = camera_height_loss(torch.tensor([1.2, float("nan")]), torch.tensor(1.65), model.log_scale)
    assert loss.item() == pytest.approx(0.45, rel=1e-6)
    loss.backward()
    assert model.log_scale.grad.item() == pytest.approx(-1.2, rel=1e-5)
    assert all(p.grad is None for n, p in model.named_parameters() if n != "log_scale")


def test_road_terms_and_the_per_epoch_road_report(tmp_path):
    """Each road constraint adds its term; the step that ends an epoch reports the epoch's road (tilt
    against the truth, bend, error, which loss moves it) and the collapse flag."""
    cfg = DEPTH.make_config("tiny")
    cfg.data = dataclasses.replace(cfg.data, root=tmp_path)
    batch = default_collate([DepthDataset(cfg, "train")[i] for i in range(2)])
    for road_loss, term in (("plane", "road_plane"), ("normal", "road_travel")):
        cfg.scale = dataclasses.replace(cfg.scale, road_loss=road_loss)
        torch.manual_seed(0)
        model = DEPTH.build_model(cfg).train()
        spe = len(DepthDataset(cfg, "train")) // cfg.train.batch_size
        out = depth_losses(model, batch, cfg)  # step 1: inside the first epoch
        assert term in out and "road_tilt_deg" in out and not any(k.startswith("epoch_") for k in out)
        model.steps.fill_(spe - 1)
        out = depth_losses(model, batch, cfg)  # the epoch's last step
        assert out[f"grad_road_{term}"] > 0 and out["grad_road_photometric"] > 0
        assert out["push_scale_object_height"] != 0  # what moves the metric scale (the road-plane term does not)
        if term == "road_plane":
            assert abs(out["push_scale_road_plane"]) < 1e-6
        assert {"epoch_road_tilt_deg", "epoch_road_spread_deg", "epoch_road_abs_rel", "epoch_road_collapse"} <= set(out)
        assert out["epoch_road_collapse"].item() == float(out["epoch_road_tilt_deg"] > 3.0)


def test_height_rule_flags_occluded_objects():
    from unrender.methods.depth.scale import abnormal_objects

    # three upright objects on the ground seen by a level camera 1.65 m up (f = 100, horizon row 50)
    f, cam, H = 100.0, 1.65, 1.5
    masks = torch.zeros(1, 4, 120, 200, dtype=torch.bool)
    for i, (D, u) in enumerate([(8.0, 40), (12.0, 90), (20.0, 140)]):
        vb = 50 + f * cam / D
        h = f * H / D
        masks[0, i, round(vb - h) : round(vb), u : u + 10] = True
    masks[0, 3] = masks[0, 0]
    masks[0, 3, :75] = False  # the same object cut at row 75: its top is hidden behind something
    masks[0, 3, :, :40] = False
    ext = mask_extents(masks)
    bad = abnormal_objects(ext, torch.full((1, 4), H), torch.tensor([50.0]), torch.ones(1, 4, dtype=torch.bool),
                           min_height_px=4, min_pixels=10, max_height_error=0.15)  # fmt: skip
    assert bad.tolist() == [[False, False, False, True]]


def test_camera_target_update_rules():
    from unrender.methods.depth.model import DepthModel

    cfg = DEPTH.make_config("tiny")
    cfg.scale = dataclasses.replace(cfg.scale, camera_freeze_epochs=1, camera_momentum=0.5, camera_max_jump=2.0)
    model = DepthModel(cfg)
    spe = 2

    def epoch(values, e):
        for v in values:
            model.steps += 1
            update_camera_target(model, torch.tensor([v]), e, spe)

    epoch([9.0, 9.0], 0)  # frozen: ignored
    assert model.camera_target.item() == 0
    epoch([1.0, 2.0], 1)
    assert model.camera_target.item() == pytest.approx(1.5)
    epoch([2.5, float("nan")], 2)  # NaN frames are skipped; momentum 0.5
    assert model.camera_target.item() == pytest.approx(2.0)
    epoch([10.0, 10.0], 3)  # a jump of 5x is ignored
    assert model.camera_target.item() == pytest.approx(2.0)


def test_camera_snap_sets_the_scale_to_the_target_at_each_epoch_end(tmp_path):
    from unrender.methods.depth.model import DepthModel

    cfg = DEPTH.make_config("tiny")
    cfg.scale = dataclasses.replace(cfg.scale, camera_freeze_epochs=1, camera_momentum=0.5, camera_snap=True)
    model = DepthModel(cfg)
    spe = 2

    def epoch(implied, planes, e):
        for v, p in zip(implied, planes, strict=True):
            model.steps += 1
            update_camera_target(model, torch.tensor([v]), e, spe, torch.tensor([p]))

    epoch([1.0, 1.0], [5.0, 5.0], 0)  # frozen: the scale stays
    assert model.log_scale.item() == 0
    epoch([1.5, 1.5], [2.0, float("nan")], 1)  # target 1.5, median plane height 2.0 at scale 1
    assert model.log_scale.exp().item() == pytest.approx(0.75)
    epoch([2.5, 2.5], [1.0, 3.0], 2)  # target 2.0 (momentum 0.5), median plane height 2.0
    assert model.log_scale.exp().item() == pytest.approx(1.0)
    # the ring survives a save and reload; weights saved without it (the shipped ones) still load
    state = model.state_dict()
    assert "plane_values" in state
    del state["plane_values"]
    DepthModel(cfg).load_state_dict(state, strict=True)


# --- the method ----------------------------------------------------------------------------------
def test_tiny_training_lowers_the_loss_and_checkpoints_reload(tmp_path):
    cfg = make_cfg(tmp_path)
    cfg.train = dataclasses.replace(cfg.train, max_steps=100, lr=2e-3, warmup_steps=0, schedule="constant")
    # the networks alone: direct alignment already explains most of the untrained loss (0.18 -> 0.12
    # on this batch), which leaves a short run little to show
    cfg.model = dataclasses.replace(cfg.model, align_iters=0)
    ds = DepthDataset(cfg, "train", workers=1)
    batches = [default_collate([ds[j] for j in range(i, min(len(ds), i + 4))]) for i in range(0, len(ds), 4)]
    batch = batches[0]

    def mean_loss(m) -> float:  # over the whole (6-item) training set
        with torch.no_grad():
            return sum(DEPTH.loss(m, b, cfg)["loss"].item() * len(b["rgb"]) for b in batches) / len(ds)

    torch.manual_seed(0)
    before = mean_loss(DEPTH.build_model(cfg).eval())
    Trainer(DEPTH, cfg).fit()
    ck = find_latest_checkpoint(tmp_path / "run")
    trained, again = DEPTH.build_model(cfg), DEPTH.build_model(cfg)
    load_checkpoint(ck, trained)
    load_checkpoint(ck, again)
    trained.eval()
    again.eval()
    after = mean_loss(trained)
    # Where a short run leads is chaotic, so the margin is set over runs from 8 different initial weights
    # (this test's procedure with train.seed 0-7, a far larger change than another CPU's last bits;
    # measured for issue 29): after 40 steps they ended at 0.63-0.99 x the untrained loss over the training set (an
    # Intel machine failed this test at 40 steps: 0.1757 -> 0.1669), after 100 steps at 0.58-0.87.
    assert after < 0.95 * before, (before, after)
    assert trained.steps.item() == 100  # the metric-scale state is part of the checkpoint
    with torch.no_grad():
        assert torch.equal(trained.predict_depth(batch["rgb"][:, 1]), again.predict_depth(batch["rgb"][:, 1]))
    metrics = DEPTH.evaluate(trained, cfg, torch.device("cpu"))
    for mode in ("unscaled", "median", "camera_height"):
        assert math.isfinite(metrics[f"{mode}/abs_rel"])
    assert "median/scale_median" in metrics and "camera_height_est" in metrics
    assert math.isfinite(metrics["pose/rotation_error_deg"])
    assert 0.0 <= metrics["road_tilt_deg"] <= 90.0
    for kind in (CLASSES, ("0-5m", "5-10m", "10-20m", "20-40m", "40-80m"), ("static", "moving objects")):
        for mode in ("median", "unscaled"):  # each breakdown's parts sum to the abs_rel
            parts = [metrics[f"{mode}/share/{g}"] for g in kind if f"{mode}/share/{g}" in metrics]
            assert sum(parts) == pytest.approx(metrics[f"{mode}/abs_rel"])
        assert sum(metrics.get(f"pixels/{g}", 0.0) for g in kind) == pytest.approx(1.0)
    table = ablation_table({"a": {**metrics, "scale_enabled": 0.0}, "e": metrics}, "cmd")
    assert "(b) self-supervised, median scaling" in table and "(e) full method" in table
    assert "| static |" in table and "(e) part of abs_rel" in table
    # seeds: mean ± std per variant, every run listed, a collapsed road marked
    bad = {**metrics, "road_collapse": 1.0, "unscaled/abs_rel": metrics["unscaled/abs_rel"] + 0.5}
    good = {**metrics, "road_collapse": 0.0}
    table = ablation_table({"b0": {**good, "scale_enabled": 0.0}, "e0": good, "e1": bad}, "cmd")
    row = next(line for line in table.splitlines() if line.startswith("| (e) full method"))
    assert "road collapsed: e1" in row and "e0, e1" in row
    mean = metrics["unscaled/abs_rel"] + 0.25
    assert f"{mean:.4f} ± {0.5 / math.sqrt(2):.4f}" in row
    assert "| e1 | (e) |" in table and table.count("| yes |") == 1
    # a run the time limit cut is marked wherever it is quoted
    done = {"trained_steps": 4000.0, "schedule_steps": 4000.0, "skipped_steps": 3.0}
    short = {**good, "trained_steps": 3652.0, "schedule_steps": 4000.0, "skipped_steps": 0.0}
    table = ablation_table({"b0": {**good, **done, "scale_enabled": 0.0}, "e0": {**good, **done}, "e1": short}, "cmd")
    row = next(line for line in table.splitlines() if line.startswith("| (e) full method"))
    assert "cut short: e1 (3652 of 4000 steps)" in row
    assert "| 4000 of 4000 (3) |" in table and "3652 of 4000 (0) **cut short**" in table
    assert "cut short" not in next(line for line in table.splitlines() if line.startswith("| (b)"))


def test_automask_margin_keeps_near_ties_in_the_loss(streets):
    cfg, ds = streets
    cfg = dataclasses.replace(cfg)  # the fixture's config stays as it is
    batch = default_collate([ds[i] for i in range(2)])
    torch.manual_seed(0)
    model = DEPTH.build_model(cfg).eval()
    fractions = []
    for margin in (0.0, 0.03, 10.0):
        cfg.loss = dataclasses.replace(cfg.loss, automask_margin=margin)
        with torch.no_grad():
            fractions.append(DEPTH.loss(model, batch, cfg)["automask_fraction"].item())
    # the share of pixels the warped frames explain (not masked) grows with the margin; a margin
    # larger than any photometric error masks nothing
    assert fractions[0] < fractions[1] < fractions[2] == 1.0, fractions


def test_pose_errors_in_degrees():
    from unrender.methods.depth.evaluate import _pose_errors

    true = make_rigid(so3_exp(torch.tensor([0.0, math.radians(2.0), 0.0])), torch.tensor([0.0, 0.0, 1.0]))
    pred = make_rigid(torch.eye(3), torch.tensor([0.1, 0.0, 0.5]))
    e = _pose_errors(pred[None], true[None])
    assert e["pose/rotation_error_deg"] == pytest.approx(2.0, rel=1e-4)
    assert e["pose/true_rotation_deg"] == pytest.approx(2.0, rel=1e-4)
    assert e["pose/translation_angle_deg"] == pytest.approx(math.degrees(math.atan(0.2)), rel=1e-4)
    assert e["pose/translation_ratio"] == pytest.approx(math.hypot(0.1, 0.5), rel=1e-5)


def test_bad_inputs(tmp_path):
    cfg = make_cfg(tmp_path)
    model = DEPTH.build_model(cfg).eval()
    with pytest.raises(ValueError, match="rgb"):
        model({"rgb": torch.rand(1, 2, 3, 32, 96)})
    with pytest.raises(ValueError, match="multiple of 32"):
        model.predict_depth(torch.rand(1, 3, 30, 96))
    with pytest.raises(ValueError, match="lacks 'rgb'"):
        model({})
    with pytest.raises(ValueError, match="lacks 'K'"):  # pose alignment needs the intrinsics
        model({"rgb": torch.rand(1, 3, 3, 32, 96)})
    with pytest.raises(ValueError, match="frames"):
        DepthDataset(make_cfg(tmp_path, frames=2), "train")


# --- real data ---------------------------------------------------------------------------------
KITTI_PRIORS = {"Car": 1.53, "Pedestrian": 1.76}  # mean heights of KITTI's labelled cars and pedestrians


def lidar_road_plane(lidar: torch.Tensor, K: torch.Tensor, boxes_2d: torch.Tensor, block: int = 8) -> dict:
    """Road plane of a sparse LiDAR depth map ``(1, H, W)``: the LiDAR points of the lower middle of
    the image outside every labelled box, organised on ``block`` x ``block`` pixel blocks (the mean
    camera-frame point of each block), fitted by :func:`plane_from_point_map`."""
    _, H, W = lidar.shape
    pts = depth_to_points(lidar[None].double(), K[None])[0]  # (H, W, 3)
    rows, cols = torch.arange(H)[:, None], torch.arange(W)[None, :]
    road = (lidar[0] > 0) & (rows > 0.68 * H) & (cols > 0.25 * W) & (cols < 0.75 * W)
    for x1, y1, x2, y2 in boxes_2d.tolist():
        road &= ~((cols >= x1) & (cols <= x2) & (rows >= y1) & (rows <= y2 + 10))
    Hb, Wb = H // block, W // block

    def blocks(x: torch.Tensor) -> torch.Tensor:  # (H, W, ...) -> (Hb, Wb, block * block, ...)
        x = x[: Hb * block, : Wb * block].reshape(Hb, block, Wb, block, *x.shape[2:]).transpose(1, 2)
        return x.flatten(2, 3)

    w = blocks(road.double()).sum(2)
    mean = (blocks(pts) * blocks(road.double())[..., None]).sum(2) / w.clamp(min=1)[..., None]
    return plane_from_point_map(mean[None], (w > 0)[None])


def test_kitti_object_heights_and_road_plane(shared_data):
    """D = f H / h from the label's 2D box agrees with the LiDAR; the road plane of the LiDAR gives
    the camera height."""
    root = shared_data / "kitti_object"
    checked, heights = 0, []
    for frame in ("000000", "000001", "000002"):
        lab = read_kitti_label(root / "label_2" / f"{frame}.txt")
        calib = read_kitti_calib(root / "calib" / f"{frame}.txt")
        from PIL import Image

        W, H = Image.open(root / "image_2" / f"{frame}.png").size
        lidar = velodyne_depth_map(read_kitti_velodyne(root / "velodyne" / f"{frame}.bin"), calib, H, W)
        K = calib["P2"][:, :3]
        for i, t in enumerate(lab.types):
            if t not in KITTI_PRIORS or lab.truncated[i] > 0 or lab.occluded[i] > 0:
                continue
            x1, y1, x2, y2 = lab.boxes_2d[i].tolist()
            D = object_depth_from_height(K[1, 1], torch.tensor(KITTI_PRIORS[t], dtype=torch.float64),
                                         torch.tensor(y2 - y1, dtype=torch.float64)).item()  # fmt: skip
            patch = lidar[0, math.ceil(y1) : int(y2) + 1, math.ceil(x1) : int(x2) + 1]
            d_lidar = patch[patch > 0].quantile(0.25).item()
            assert abs(D / d_lidar - 1) < 0.15, (frame, t, D, d_lidar)
            checked += 1
        fit = lidar_road_plane(lidar, K, lab.boxes_2d)
        heights.append(fit["height"].item())
        assert abs(fit["height"].item() / 1.65 - 1) < 0.10, (frame, fit["height"].item())
    assert checked >= 3


# --- KITTI raw layout ----------------------------------------------------------------------------
def test_synth_streets_export_to_kitti_raw_reads_back(tmp_path):
    from unrender.cli import main
    from unrender.data.formats import read_kitti_depth_png, read_kitti_raw, read_kitti_raw_image
    from unrender.data.synth import SynthDataset

    out = tmp_path / "kitti"
    assert main(["synth", "streets", "--out", str(out), "--num", "2", "--views", "3", "--height", "32",
                 "--width", "96", "--workers", "1", "--format", "kitti-raw"]) == 0  # fmt: skip
    drives = read_kitti_raw(out)
    assert [d.drive for d in drives] == ["2026_01_01_drive_0000_sync", "2026_01_01_drive_0001_sync"]
    ref = SynthDataset(out / "npz")
    for i, d in enumerate(drives):
        s = ref[i]
        assert (d.height, d.width) == (32, 96) and len(d.frames) == 3
        torch.testing.assert_close(d.K, s["K"][0], atol=1e-4, rtol=1e-6)
        for t in range(3):
            torch.testing.assert_close(read_kitti_raw_image(d.frames[t]), s["rgb"][t], atol=1 / 255 + 1e-6, rtol=0)
            torch.testing.assert_close(read_kitti_depth_png(d.depth[t]), s["depth"][t].clamp(max=255), atol=1 / 256,
                                       rtol=0)  # fmt: skip
    assert main(["synth", "rooms", "--out", str(tmp_path / "r"), "--num", "1", "--format", "kitti-raw"]) == 2
    # the exported videos train the self-supervised losses directly (no masks there)
    from unrender.methods.depth.data import KittiRawVideo

    video = KittiRawVideo(out)
    assert len(video) == 2
    torch.testing.assert_close(video[1]["rgb"], ref[1]["rgb"], atol=1 / 255 + 1e-6, rtol=0)
    cfg = make_cfg(tmp_path, kitti_raw=out)
    batch = default_collate([video[0], video[1]])
    terms = DEPTH.loss(DEPTH.build_model(cfg).train(), batch, cfg)
    assert torch.isfinite(terms["loss"]) and "object_height" not in terms


def test_kitti_raw_reader_errors(tmp_path):
    from unrender.data.formats import FormatError, read_kitti_cam_to_cam, read_kitti_raw

    with pytest.raises(FileNotFoundError):
        read_kitti_raw(tmp_path / "nothing")
    with pytest.raises(FormatError, match="no <date>"):
        read_kitti_raw(tmp_path)
    (tmp_path / "c.txt").write_text("calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1242 375\n")
    with pytest.raises(FormatError, match="P_rect_02"):
        read_kitti_cam_to_cam(tmp_path / "c.txt")
    (tmp_path / "c.txt").write_text("S_rect_02: 1242 375\nP_rect_02: 1 2 3\n")
    with pytest.raises(FormatError, match="3 values, expected 12"):
        read_kitti_cam_to_cam(tmp_path / "c.txt")
    (tmp_path / "c.txt").write_text("S_rect_02: 1242 x\n")
    with pytest.raises(FormatError, match="non-numeric"):
        read_kitti_cam_to_cam(tmp_path / "c.txt")


def test_networks_start_at_the_identity_pose_and_the_initial_depth(tmp_path):
    cfg = make_cfg(tmp_path)
    cfg.model = dataclasses.replace(cfg.model, align_iters=0)  # the networks' own output
    model = DEPTH.build_model(cfg).eval()
    rgb = torch.rand(2, 3, 3, 32, 96)
    with torch.no_grad():
        out = model({"rgb": rgb})
        depth = model.predict_depth(rgb[:, 1])
    eye = make_rigid(torch.eye(3), torch.zeros(3)).expand(2, 2, 4, 4)
    assert torch.allclose(out["src_from_tgt"], eye, atol=1e-6)  # zero-initialised output layer
    assert sorted(out["disp"]) == [0, 1, 2, 3]
    ratio = depth.median() / cfg.model.init_depth
    assert 0.5 < ratio < 2, ratio  # the disparity heads start at init_depth (up to the random weights)


def test_training_on_a_users_video_with_their_instance_masks(streets, tmp_path):
    """`unrender train depth --data.video DIR --data.intrinsics K.json --data.masks MASKS`: frames and masks
    from files (as an external segmenter would write them), the object-height losses switched on by them."""
    import json

    import numpy as np
    from PIL import Image

    from unrender.methods.depth.data import FrameVideo

    s = streets[1].synth[0]  # 6 frames at 96x320
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    road = CLASSES.index("road")
    for v in range(len(s["rgb"])):
        Image.fromarray((s["rgb"][v].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
            frames / f"f{v}.png"
        )
        inst = s["instance"][v, 0].numpy().astype(np.uint16)
        inst[s["semantic"][v, 0].numpy() == road] = 999  # the road as one more "instance"
        Image.fromarray(inst).save(masks / f"f{v}.png")
        table = {str(int(i)): CLASSES[int(c)] for i, c in zip(s["box_instance"], s["box_classes"], strict=True)}
        (masks / f"f{v}.json").write_text(json.dumps({**table, "999": "road"}))
    (tmp_path / "K.json").write_text(json.dumps({"K": s["K"][0].tolist(), "width": 320, "height": 96}))
    cfg = get_method("depth").make_config("tiny")
    cfg.data = dataclasses.replace(cfg.data, video=frames, intrinsics=tmp_path / "K.json", masks=masks)
    ds = FrameVideo(cfg.data)
    item = ds[0]
    assert len(ds) == 4 and item["rgb"].shape == (3, 3, cfg.data.height, cfg.data.width)
    road_share = float((s["semantic"][1, 0] == road).float().mean())
    assert abs(float(item["road"].float().mean()) - road_share) < 0.05 and bool((item["labels"] >= 0).any())
    method = get_method("depth")
    torch.manual_seed(0)
    losses = method.loss(method.build_model(cfg), default_collate([ds[0], ds[1]]), cfg)
    assert any("height" in k for k in losses) and torch.isfinite(losses["loss"]), sorted(losses)
    assert len(method.build_dataset(cfg, "train")) == 4  # what `unrender train depth --data.video ...` reads


def test_a_video_that_does_not_move_is_refused_with_a_reason(tmp_path):
    """Self-supervised depth needs camera motion: a still video (the same frame repeated) is one clear error."""
    import json

    import numpy as np
    from PIL import Image

    from unrender.methods.depth.data import FrameVideo

    frame = (np.random.default_rng(0).random((48, 144, 3)) * 255).astype(np.uint8)
    for i in range(5):
        Image.fromarray(frame).save(tmp_path / f"f{i}.png")
    (tmp_path / "K.json").write_text(json.dumps({"K": [[80.0, 0, 71.5], [0, 80.0, 23.5], [0, 0, 1]]}))
    cfg = get_method("depth").make_config("tiny")
    cfg.data = dataclasses.replace(cfg.data, video=tmp_path, intrinsics=tmp_path / "K.json")
    with pytest.raises(ValueError, match="barely change"):
        FrameVideo(cfg.data)


def short_full_run(root, seed: int, **scale) -> dict[str, float]:
    """Two epochs (352 steps) of the `cpu` preset's full method at a constant learning rate, on 48 generated
    street videos rendered with one ray per pixel (written in minutes; the preset's anti-aliased ones take
    12-23), 2 held-out videos: the road of the second epoch's training frames and of the held-out frames."""
    import json

    cfg = DEPTH.make_config("cpu")
    cfg.data = dataclasses.replace(cfg.data, root=root / "data", antialias=1, num_val=2)
    out = root / "-".join(["run", str(seed), *map(str, scale.values())])
    cfg.train = dataclasses.replace(cfg.train, max_steps=352, schedule="constant", seed=seed, time_limit_min=0,
                                    ckpt_every=0, out_dir=out, progress=False, tensorboard=False)  # fmt: skip
    cfg.scale = dataclasses.replace(cfg.scale, **scale)
    metrics = Trainer(DEPTH, cfg).fit()
    log = [json.loads(line) for line in (cfg.train.out_dir / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in log if "train/epoch_road_tilt_deg" in r][-1]
    return {
        "train_tilt": epoch["train/epoch_road_tilt_deg"],
        "train_spread": epoch["train/epoch_road_spread_deg"],
        "train_collapse": epoch["train/epoch_road_collapse"],
        "eval_tilt": metrics["road_tilt_deg"],
        "eval_collapse": metrics["road_collapse"],
        "road_share": metrics["median/share/road"],
    }


@pytest.mark.slow
def test_full_method_keeps_the_road_flat_and_level_over_three_seeds(tmp_path_factory):
    """Issue 29: the full method's road collapsed (tilted 25 degrees, far in the centre and near at the
    sides) on some CPUs and seeds. Every seed must keep a flat road within the collapse threshold
    (3 degrees) of the true one. Measured (docs/results.md): on the current code seeds 0-2 ended these runs
    at 0.82-1.38 degrees of tilt (held-out: 0.74-1.15), a bend of 3.2-4.1 degrees and the road's part of the
    median-scaled abs_rel at 0.017-0.030; with the earlier loss (``road_loss="normal"``) seed 0
    had collapsed: 11.2 degrees, a bend of 37.6 degrees, the road's part 0.383."""
    root = tmp_path_factory.mktemp("depth-short")
    for seed in (0, 1, 2):
        got = short_full_run(root, seed)
        assert got["train_collapse"] == 0 and got["eval_collapse"] == 0, (seed, got)
        assert got["train_spread"] < 8.0 and got["road_share"] < 0.08, (seed, got)
