"""Learned-energy inverse graphics: the unrolled optimiser, pose-lifting data, models and evaluation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.func import functional_call

from unrender.methods.energy.pose.config import tiny
from unrender.methods.energy.pose.data import SYNTH_K, PoseLifting, h36m_samples, synth_poses
from unrender.methods.energy.pose.evaluate import count_macs, fit_to_2d, mean_bone_lengths, pose_losses
from unrender.methods.energy.pose.model import EnergyPose, MLPLifter, normalized_joints, project
from unrender.methods.energy.unrolled import FirstOrderUpdater, UnrolledOptimizer, clip_per_sample, step_weights
from unrender.metrics.pose import mpjpe, n_mpjpe, p_mpjpe
from unrender.world.generators import H36M_PARENTS


def _quadratic(A: torch.Tensor, m: torch.Tensor):
    """E(y) = 1/2 (y - m)^T A (y - m) per sample, y (B, D)."""
    return lambda y: 0.5 * torch.einsum("bi,ij,bj->b", y - m, A, y - m)


def test_unrolled_optimizer_converges_on_a_quadratic():
    g = torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    A = Q @ torch.diag(torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)) @ Q.T
    m = torch.randn(4, generator=g, dtype=torch.float64)
    opt = UnrolledOptimizer((), steps=60, alpha=0.2, momentum=0.5, max_grad_norm=100.0).double().eval()
    y0 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    ys = opt(_quadratic(A, m), y0)
    assert len(ys) == 61
    errors = [float((y - m).norm(dim=-1).max()) for y in ys]
    assert errors[-1] < 1e-6 * errors[0]
    # the test-time step count overrides the trained one
    assert len(opt(_quadratic(A, m), y0, steps=3)) == 4
    # without gradients enabled (evaluation under torch.no_grad) the steps still run
    with torch.no_grad():
        assert torch.allclose(opt(_quadratic(A, m), y0)[-1], ys[-1])


def test_unrolled_optimizer_gradients_reach_alpha_momentum_and_the_energy():
    A = torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    y0 = torch.tensor([[1.0, -0.5], [0.2, 0.4]], dtype=torch.float64)
    opt = UnrolledOptimizer((2,), steps=3, alpha=0.1, momentum=0.4, max_grad_norm=100.0).double().train()

    def final(raw_alpha, raw_momentum, m):
        ys = functional_call(opt, {"raw_alpha": raw_alpha, "raw_momentum": raw_momentum}, (_quadratic(A, m), y0))
        return ys[-1]

    inputs = (opt.raw_alpha.detach().clone().requires_grad_(True),
              opt.raw_momentum.detach().clone().requires_grad_(True),
              torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True))  # fmt: skip
    assert torch.autograd.gradcheck(final, inputs)
    # and through the module's own parameters, in a training step
    (final(opt.raw_alpha, opt.raw_momentum, inputs[2]) ** 2).sum().backward()
    assert opt.raw_alpha.grad.abs().sum() > 0 and opt.raw_momentum.grad.abs() > 0
    assert opt.alpha.min() > 0 and 0 < opt.momentum < 1


def test_steps_stay_finite_on_wild_inputs():
    # an energy whose gradient overflows: per-sample clipping turns it into a bounded step
    opt = UnrolledOptimizer((), steps=5, alpha=0.5, max_grad_norm=1.0).train()
    y0 = torch.randn(4, 3, requires_grad=True)
    ys = opt(lambda y: 1e38 * (y**4).sum(-1), y0)
    assert all(torch.isfinite(y).all() for y in ys)
    assert ((ys[1] - ys[0]).norm(dim=-1) <= 0.5 + 1e-5).all()
    g = clip_per_sample(torch.tensor([[float("nan"), 3.0, 4.0], [0.0, 0.0, 0.0]]), 1.0)
    assert torch.allclose(g, torch.tensor([[0.0, 0.6, 0.8], [0.0, 0.0, 0.0]]))
    # the pose model on random 2D points and random cameras, in training (double backprop) and eval
    cfg = tiny()
    torch.manual_seed(0)
    model = EnergyPose(cfg).train()
    batch = {"joints_2d": torch.rand(8, 17, 2) * 2000 - 500, "K": SYNTH_K.float().expand(8, 3, 3),
             "joints_cam": torch.randn(8, 17, 3)}  # fmt: skip
    out = pose_losses(model, batch, cfg)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.optimizer.raw_alpha.grad.abs().sum() > 0 and model.prior.net[0].weight.grad.abs().sum() > 0
    model.eval()
    assert all(torch.isfinite(y).all() for y in model(batch, steps=8))


def test_step_weights_grow_and_sum_to_one():
    w = step_weights(4, growth=2.0)
    assert len(w) == 5 and math.isclose(float(w.sum()), 1.0, rel_tol=1e-6) and (w.diff() > 0).all()


def test_first_order_updater_starts_as_identity_and_learns_without_second_derivatives():
    upd = FirstOrderUpdater(dim=3, hidden=8, steps=2)
    y0 = torch.randn(5, 3, requires_grad=True)
    ys = upd(lambda y: (y**2).sum(-1), y0)
    assert all(torch.equal(y, y0) for y in ys)  # zero-initialised last layer
    ys[-1].sum().backward()
    assert upd.net[-1].weight.grad.abs().sum() > 0


def test_p_mpjpe_and_n_mpjpe_agree_with_hand_computed_values():
    # a square in the z = 0 plane, predicted with its corners pushed +-e out of the plane: the best
    # similarity is the identity rotation with scale 1 / (1 + e^2), leaving every joint e / sqrt(1 + e^2) off
    e = 0.75
    gt = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=torch.float64)
    pred = gt + torch.tensor([[0, 0, e], [0, 0, e], [0, 0, -e], [0, 0, -e]], dtype=torch.float64)
    assert float(p_mpjpe(pred, gt)) == pytest.approx(0.6)  # e / sqrt(1 + e^2) = 0.75 / 1.25
    assert float(mpjpe(pred, gt, root=None)) == pytest.approx(0.75)
    assert float(n_mpjpe(pred, gt, root=None)) == pytest.approx(0.6)


def test_synthetic_poses_follow_the_issue_camera_ranges():
    J, uv = synth_poses(400, seed=3)
    root = J[:, 0]
    dist = root.norm(dim=-1)
    assert dist.min() > 3.2 and dist.max() < 6.8  # 3.5-6.5 m from the pelvis (+- 10 cm aim)
    # pixels are the exact projection through the H36M-like camera
    assert torch.allclose(uv, project(J) * 1145.0 + 499.5, atol=1e-9)
    # bones keep plausible lengths: thigh 0.35-0.52 m
    thigh = (J[:, 2] - J[:, 1]).norm(dim=-1)
    assert thigh.min() > 0.33 and thigh.max() < 0.54
    # cameras are upright and 5 degrees below to 25 degrees above the person: the spine is vertical in
    # the world, so its direction in the camera gives the camera's pitch
    up = J[:, 8] - J[:, 7]
    up = up / up.norm(dim=-1, keepdim=True)
    assert (up[:, 1] < -0.8).all()
    above = torch.rad2deg(torch.asin(-up[:, 2]))
    assert -8 < above.min() < 0 < 20 < above.max() < 28
    # items are deterministic; noise levels come from the config
    cfg = tiny()
    a, b = PoseLifting(cfg, "train"), PoseLifting(cfg, "train")
    assert torch.equal(a[5]["joints_2d"], b[5]["joints_2d"]) and set(a.noise_px.tolist()) <= {0.0, 5.0}
    val = PoseLifting(cfg, "val", 5.0)
    clean = PoseLifting(cfg, "val", 0.0)
    assert 3.5 < float((val.joints_2d - clean.joints_2d).std()) < 6.5
    assert not torch.equal(val.joints_cam[:4], a.joints_cam[:4])


def test_normalized_joints_rejects_bad_input():
    K = SYNTH_K.float()[None]
    with pytest.raises(ValueError, match="joints_2d"):
        normalized_joints(torch.zeros(1, 17, 3), K)
    with pytest.raises(ValueError, match="non-finite"):
        normalized_joints(torch.full((1, 17, 2), float("nan")), K)


def test_fit_baseline_fits_the_2d_points_and_macs_count_the_gradient_steps():
    J, uv = synth_poses(16, seed=1)
    y = fit_to_2d(uv.float(), SYNTH_K.float().expand(16, 3, 3), mean_bone_lengths(200))
    xn = normalized_joints(uv.float(), SYNTH_K.float().expand(16, 3, 3))
    assert float((project(y) - xn).abs().max()) * 1145 < 6.0  # within a few px
    assert float(mpjpe(y, J.float()).mean()) < 0.3
    model = EnergyPose(tiny()).eval()
    batch = {"joints_2d": uv[:1].float(), "K": SYNTH_K.float()[None]}
    macs = [count_macs(lambda k=k: model(batch, steps=k)) for k in (0, 1, 2)]
    assert macs[0] > 0 and macs[2] - macs[1] == macs[1] - macs[0] > 0


def test_mlp_lifter_matches_martinez_size():
    m = MLPLifter(1024, 2)
    params = sum(p.numel() for p in m.parameters())
    assert 4.0e6 < params < 4.6e6  # ~4.3 M as in Martinez et al. (2017)


def test_h36m_frames_enter_the_sample_schema(shared_data):
    batch = h36m_samples(shared_data / "h36m")
    assert batch["joints_2d"].shape == (4, 17, 2) and batch["joints_cam"].shape == (4, 17, 3)
    xn = normalized_joints(batch["joints_2d"], batch["K"])
    assert float((project(batch["joints_cam"]) - xn).abs().max()) * 1145 < 3.0  # the truth reprojects
    # H36M and the synthetic world share the joint order: the same bones have similar lengths
    bones = torch.stack([(batch["joints_cam"][:, j] - batch["joints_cam"][:, p]).norm(dim=-1)
                         for j, p in enumerate(H36M_PARENTS) if p >= 0], 1).mean(0)  # fmt: skip
    assert (bones - mean_bone_lengths(200)).abs().max() < 0.1


def test_train_and_eval_energy_pose_from_the_cli(tmp_path, monkeypatch):
    from unrender.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "energy-pose", "--preset", "tiny", "--train.no-progress"]) == 0
    assert main(["train", "energy-pose", "--preset", "tiny", "--train.no-progress", "--model.kind", "mlp",
                 "--train.out-dir", "runs/mlp"]) == 0  # fmt: skip
    md = tmp_path / "results.md"
    assert main(["eval", "energy-pose", "--ckpt", "runs/energy-pose-tiny", "runs/mlp", "--markdown", str(md)]) == 0
    text = md.read_text()
    for row in ("energy, K = 0", "energy, K = 2", "MLP 32 x 1", "fit to 2D"):
        assert row in text
    scores = json.loads((tmp_path / "runs/mlp/checkpoints/step_00000020/eval.json").read_text())
    assert scores["mlp/params"] > 0 and scores["mlp/mpjpe@5px"] > 0 and "fit/p_mpjpe@0px" in scores
    assert ("Human3.6M columns empty" in text) == (not any("/h36m/" in k for k in scores))
    assert scores["held_out"] == 32  # the preset's count
    assert main(["eval", "energy-pose", "--ckpt", "runs/mlp", "--held-out", "5", "--out", "five.json"]) == 0
    assert json.loads((tmp_path / "five.json").read_text())["held_out"] == 5


# ------------------------------------------------------------------------------------------ voxels
def _voxel_cfg(tmp_path, resolution=16, grid="frustum"):
    from unrender.methods.energy.voxels.config import tiny as voxel_tiny

    cfg = voxel_tiny()
    cfg.data.root, cfg.data.resolution, cfg.data.grid = tmp_path / "data", resolution, grid
    return cfg


def test_frustum_occupancy_matches_the_rendered_silhouette_and_depth(tmp_path):
    from unrender.methods.energy.voxels.data import VoxelViews

    cfg = _voxel_cfg(tmp_path, resolution=32)  # one voxel column per pixel of the 32 x 32 view
    data = VoxelViews(cfg, "train")
    d = cfg.data
    z = d.near + (torch.arange(32) + 0.5) * (d.far - d.near) / 32
    for i in range(len(data)):
        item = data[i]
        depth = torch.from_numpy(data.synth.raw(i // d.views_per_scene)["depth"][i % d.views_per_scene, 0])
        silhouette, columns = depth > 0, item["occupancy"].amax(0) > 0
        assert silhouette.sum() > 20
        assert (silhouette == columns).float().mean() > 0.98  # only pixels grazing the outline differ
        first = torch.where(item["occupancy"] > 0, z[:, None, None], torch.tensor(99.0)).amin(0)
        both = silhouette & columns
        # the nearest occupied plane is the rendered depth, to within a plane (8 cm)
        assert float((first[both] - depth[both]).abs().mean()) < (d.far - d.near) / 32


def test_voxel_models_shapes_finite_steps_and_matched_baseline_size(tmp_path):
    from unrender.methods.energy.voxels.evaluate import voxel_losses
    from unrender.methods.energy.voxels.model import build_voxel_model

    cfg = _voxel_cfg(tmp_path)
    torch.manual_seed(0)
    energy = build_voxel_model(cfg)
    batch = {"image": torch.rand(2, 3, 32, 32), "K": torch.eye(3).expand(2, 3, 3),
             "occupancy": (torch.rand(2, 16, 16, 16) > 0.9).float()}  # fmt: skip
    out = voxel_losses(energy.train(), batch, cfg)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and energy.optimizer.raw_alpha.grad.abs().sum() > 0
    assert energy.energy.nets[0][0].weight.grad.abs().sum() > 0  # double backprop reaches the energy
    ys = energy.eval()(batch, steps=3)
    assert len(ys) == 4 and ys[-1].shape == (2, 16, 16, 16) and all(torch.isfinite(y).all() for y in ys)
    cfg.model.kind = "encdec"
    base = build_voxel_model(cfg)
    n_base, n_energy = (sum(p.numel() for p in m.parameters()) for m in (base, energy))
    assert 0.8 * n_energy <= n_base <= n_energy  # "of similar size"
    assert base(batch).shape == (2, 16, 16, 16)


def test_train_and_eval_energy_voxels_from_the_cli(tmp_path, monkeypatch):
    from unrender.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "energy-voxels", "--preset", "tiny", "--train.no-progress"]) == 0
    assert main(["train", "energy-voxels", "--preset", "tiny", "--train.no-progress", "--model.kind", "encdec",
                 "--data.grid", "metric", "--train.out-dir", "runs/base"]) == 0  # fmt: skip
    md = tmp_path / "results.md"
    assert main(["eval", "energy-voxels", "--ckpt", "runs/energy-voxels-tiny", "runs/base", "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "| energy | frustum | 16³ |" in text and "| encoder-decoder | metric (camera axes) | 16³ |" in text
    scores = json.loads((tmp_path / "runs/base/checkpoints/step_00000010/eval.json").read_text())
    assert 0 <= scores["encdec/iou"] <= 1 and scores["frustum_grid"] == 0
