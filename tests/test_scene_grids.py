"""Per-scene latent grids: distinct optimisers per scene, saving and restoring one scene mid-way, and the
method end to end on two rooms."""

from __future__ import annotations

import json

import numpy as np
import torch
from _util import untrained_checkpoint

from unrender.methods.scenegrids.bank import SceneBank
from unrender.methods.scenegrids.evaluate import scene_losses


def _loss(grid: torch.Tensor, step: int) -> torch.Tensor:
    target = torch.sin(torch.arange(grid.numel(), dtype=torch.float32).reshape(grid.shape) * 0.1 + step)
    return (grid - target).pow(2).mean() + grid.diff(dim=-1).abs().mean()


def _run(bank: SceneBank, scene: int, steps: range) -> None:
    for s in steps:
        _loss(bank.get(scene), s).backward()  # the grid's own optimiser steps inside backward


def test_one_scene_saved_and_restored_mid_way_continues_as_if_never_stopped(tmp_path):
    shape = (2, 3, 4, 5)
    straight = SceneBank(tmp_path / "a", 4, shape, lr=0.05)
    _run(straight, 2, range(12))
    first = SceneBank(tmp_path / "b", 4, shape, lr=0.05)
    _run(first, 2, range(5))
    first.flush()
    assert (tmp_path / "b" / "scene_00002.pt").is_file() and not (tmp_path / "b" / "scene_00001.pt").exists()
    state = first.optimizer(2).state_dict()["state"][0]
    assert int(state["step"]) == 5 and float(state["exp_avg"].abs().sum()) > 0  # momentum is part of what is saved
    again = SceneBank(tmp_path / "b", 4, shape, lr=0.05)  # a new process: nothing in memory
    _run(again, 2, range(5, 12))
    assert torch.equal(again.get(2).detach(), straight.get(2).detach())
    # without the optimiser state (a fresh Adam on the saved grid) the result differs: the state mattered
    fresh = SceneBank(tmp_path / "b", 4, shape, lr=0.05)
    fresh.get(2)
    fresh.optimizer(2).state.clear()
    _run(fresh, 2, range(5, 12))
    assert not torch.allclose(fresh.get(2).detach(), straight.get(2).detach())


def test_every_scene_has_its_own_optimiser_and_a_step_touches_only_its_scene(tmp_path):
    bank = SceneBank(tmp_path, 3, (4, 4), lr=0.1)
    opts = [bank.optimizer(i) for i in range(3)]
    assert len({id(o) for o in opts}) == 3
    before = [bank.get(i).detach().clone() for i in range(3)]
    _run(bank, 1, range(2))
    after = [bank.get(i).detach() for i in range(3)]
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])
    assert not opts[0].state and not opts[2].state and int(opts[1].state_dict()["state"][0]["step"]) == 2


def test_a_bank_with_a_small_cache_writes_scenes_it_pushes_out(tmp_path):
    bank = SceneBank(tmp_path, 3, (4,), lr=0.1, cache=1)
    _run(bank, 0, range(3))
    value = bank.get(0).detach().clone()
    _run(bank, 1, range(1))  # pushes scene 0 out of memory: written
    assert (tmp_path / "scene_00000.pt").is_file()
    assert torch.equal(bank.get(0).detach(), value)  # read back


def test_scene_grids_train_and_evaluate_end_to_end(tmp_path):
    from unrender.engine import Trainer
    from unrender.methods import get_method

    untrained_checkpoint("mapping", "tiny", tmp_path / "mapping")
    method = get_method("scene-grids")
    cfg = method.make_config("tiny")
    cfg.data.mapping, cfg.data.root = tmp_path / "mapping", tmp_path / "data"
    cfg.data.scenes, cfg.data.new_scenes = 1, 1  # the tiny mapping preset holds out 2 rooms
    cfg.train.out_dir, cfg.train.progress = tmp_path / "run", False
    cfg.data.pseudo_views = 2  # the net's views from 2 ring cameras where no input looked
    m = Trainer(method, cfg).fit()
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(np.isfinite(r.get("train/net_views", np.nan)) for r in logged)
    for k in ("grids/psnr", "grids/occ_iou", "feedforward/psnr", "new/psnr@0", "new/psnr@4"):
        assert torch.isfinite(torch.tensor(m[k])), k
    assert (tmp_path / "run" / "scenes" / "scene_00000.pt").is_file()  # written with the checkpoint
    assert not (tmp_path / "run" / "scenes" / "scene_00001.pt").exists()  # the new room was fitted elsewhere


def test_the_feed_forward_prior_reaches_only_voxels_no_input_ray_saw(tmp_path):
    from unrender.methods import get_method

    untrained_checkpoint("mapping", "tiny", tmp_path / "mapping")
    method = get_method("scene-grids")
    cfg = method.make_config("tiny")
    cfg.data.mapping, cfg.data.root, cfg.train.out_dir = tmp_path / "mapping", tmp_path / "data", tmp_path / "run"
    # the prior alone
    cfg.loss.rgb = cfg.loss.depth = cfg.loss.occupancy = cfg.loss.tv = cfg.loss.empty = cfg.loss.net_views = 0.0
    cfg.loss.prior, cfg.loss.prior_voxels = 1.0, 10_000
    model, item = method.build_model(cfg), method.build_dataset(cfg, "train")[0]
    assert item["prior_occ"].shape == item["known"].shape[1:] and item["prior_rgb"].shape[-1] == 3
    grid = model.bank.get(0).detach().clone().requires_grad_(True)  # a copy: no scene optimiser steps
    out = scene_losses(model, grid, item, cfg)
    out["loss"].backward()
    assert float(out["prior"]) > 0
    # the grid has upsample 1 in the tiny preset: a voxel's gradient is non-zero only next to unseen voxels
    touched = grid.grad.abs().sum(0) > 0
    unseen = item["known"][0] == 0
    near = torch.nn.functional.max_pool3d(unseen[None, None].float(), 3, 1, 1)[0, 0] > 0
    assert touched.any() and not (touched & ~near).any()


def test_a_ray_through_empty_space_shows_the_learned_background(tmp_path):
    from unrender.geometry import VoxelGrid
    from unrender.methods.scenegrids.config import tiny
    from unrender.methods.scenegrids.model import SceneGridModel

    grid = VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0), (4, 4, 4))
    for renderer in ("nerf", "composite", "linear"):
        cfg = tiny()
        cfg.model.renderer = renderer
        m = SceneGridModel(cfg, grid, tmp_path / renderer, 1)
        with torch.no_grad():
            m.field[-1].bias[0] = -30.0  # nothing anywhere
            m.background.copy_(torch.linspace(-1.0, 1.0, len(m.background)))
        rays = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
        with torch.no_grad():
            out = m(m.bank.get(0), torch.zeros(5, 3), rays)
        assert float(out["opacity"].max()) < 1e-6
        assert m.scene_grid.shape == m.shape[1:] == (4, 4, 4)  # the tiny preset: no margin, the memory's box
        colour = m.to_rgb(m.background) if renderer == "linear" else m.background  # linear: a feature
        torch.testing.assert_close(out["rgb"], torch.sigmoid(colour).detach().expand(5, 3))


def test_the_scene_grids_cover_the_memory_box_grown_by_the_margin(tmp_path):
    from unrender.geometry import VoxelGrid
    from unrender.methods.scenegrids.config import tiny
    from unrender.methods.scenegrids.model import SceneGridModel

    cfg = tiny()
    cfg.model.upsample, cfg.model.margin = 2, 0.5
    m = SceneGridModel(cfg, VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0), (4, 4, 4)), tmp_path, 1)
    assert m.scene_grid.bounds_min == (-1.5, -1.5, -0.5) and m.scene_grid.bounds_max == (1.5, 1.5, 2.5)
    assert m.shape == (4, 12, 12, 12) and m.scene_grid.voxel_size == (0.25, 0.25, 0.25)
    g = torch.zeros(m.shape)
    g[:, 0, 0, 0] = 1.0  # the corner voxel, outside the memory's box, is read where it is
    f = m.sample(g, torch.tensor([[-1.375, -1.375, -0.375]]))
    torch.testing.assert_close(f, torch.ones(1, 4))


def test_total_variation_over_a_block_is_the_whole_grids_in_expectation():
    from unrender.methods.scenegrids.evaluate import total_variation

    g = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(0))
    whole = total_variation(g)
    torch.testing.assert_close(total_variation(g, block=8), whole)  # a block larger than the grid: all of it
    torch.manual_seed(0)
    blocks = torch.stack([total_variation(g, block=3) for _ in range(2000)])
    assert abs(float(blocks.mean()) - float(whole)) < 0.05 * float(whole)


def test_ring_cameras_circle_the_point_the_input_axes_meet_and_look_at_it():
    from unrender.geometry import invert_rigid, look_at
    from unrender.methods.scenegrids.data import ring_cameras

    centre = torch.tensor([0.7, 0.0, -1.2], dtype=torch.float64)
    a = torch.tensor([0.3, 2.0, 4.1], dtype=torch.float64)
    eyes = torch.stack([centre[0] + 2 * a.cos(), torch.tensor([-1.5, -1.2, -1.8]), centre[2] + 2 * a.sin()], -1)
    targets = centre + torch.tensor([0.0, -0.5, 0.0], dtype=torch.float64)
    T = ring_cameras(look_at(eyes, targets.expand(3, 3)), 16, torch.Generator().manual_seed(0))
    world = invert_rigid(T)
    e, f = world[:, :3, 3], world[:, :3, 2]
    flat = (e - centre)[:, [0, 2]]
    assert torch.allclose(flat.norm(dim=-1), torch.full((16,), 2.0, dtype=torch.float64), atol=1e-9)
    assert (e[:, 1] >= -1.8 - 1e-9).all() and (e[:, 1] <= -1.2 + 1e-9).all()
    to_centre = -flat / flat.norm(dim=-1, keepdim=True)  # every new camera looks at the centre (horizontally)
    heading = f[:, [0, 2]] / f[:, [0, 2]].norm(dim=-1, keepdim=True)
    assert torch.allclose(heading, to_centre, atol=1e-9)
    assert torch.atan2(flat[:, 1], flat[:, 0]).std() > 1  # spread round the ring, not bunched


def test_covered_pixels_are_the_pixels_an_input_view_saw():
    from unrender.geometry import make_intrinsics
    from unrender.methods.scenegrids.data import covered_pixels

    K = make_intrinsics(20.0, 20.0, 7.5, 7.5, dtype=torch.float64)[None]
    T = torch.eye(4, dtype=torch.float64)[None]
    depth = torch.full((1, 1, 16, 16), 3.0, dtype=torch.float64)
    depth[..., 4:12, 4:12] = 0  # the input saw nothing there
    seen = covered_pixels(depth, K, T, K, T, 16, 16)[0]  # the input camera itself
    assert seen[depth[0, 0] > 0].all()
    assert not seen[5:11, 5:11].any()  # one pixel of growth, no more
    T_away = T.clone()
    T_away[0, 2, 3] = -10  # the points lie behind a camera 10 m ahead
    assert not covered_pixels(depth, K, T, K, T_away, 16, 16).any()
