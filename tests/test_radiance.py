"""Fitting a radiance grid to a posed capture: contraction, rays through the lens, reprojection, export,
a fit of a generated object's capture, and ``unrender predict radiance``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _util import one_line_error
from PIL import Image

from unrender.cli import main
from unrender.methods import get_method
from unrender.methods.radiance.config import RadianceConfig, RadianceData, RadianceModel
from unrender.methods.radiance.data import load_views, view_rays
from unrender.methods.radiance.evaluate import reproject
from unrender.methods.radiance.model import RadianceGrid, contract
from unrender.methods.radiance.predict import export_occupancy


def _object_capture(root: Path, views: int = 16, size: int = 48) -> Path:
    """A generated object seen by ``views`` cameras around it, written as a transforms.json with PNGs."""
    from unrender.data.formats import opengl_from_cam_from_world
    from unrender.world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="objects", views=views, height=size, width=size, seed=3, occupancy=False), 0)
    root.mkdir(parents=True)
    frames = []
    for v in range(views):
        Image.fromarray(s["rgb"][v].transpose(1, 2, 0)).save(root / f"{v}.png")
        c2w = opengl_from_cam_from_world(torch.from_numpy(s["cam_from_world"][v]))
        frames.append({"file_path": f"{v}.png", "transform_matrix": c2w.tolist()})
    K = s["K"][0]
    meta = {"fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2] + 0.5, "cy": K[1, 2] + 0.5, "w": size, "h": size,
            "frames": frames}  # fmt: skip
    (root / "transforms.json").write_text(json.dumps(meta, default=float))
    return root / "transforms.json"


def test_contraction_is_linear_inside_continuous_at_the_radius_and_bounded():
    x = torch.randn(1000, 3, dtype=torch.float64)
    n = x.norm(dim=-1, keepdim=True)
    inside = x / n * 0.9
    torch.testing.assert_close(contract(inside, 2.0), inside / 4)
    at = x / n * 2.0
    torch.testing.assert_close(contract(at * (1 + 1e-9), 2.0), contract(at, 2.0))
    far = contract(x / n * 1e12, 2.0)
    torch.testing.assert_close(far.norm(dim=-1), torch.ones(1000, dtype=torch.float64))


def test_a_view_reprojected_into_itself_is_itself_through_the_lens(shared_data):
    views = load_views(shared_data / "nerf_fox" / "transforms.json", 32, 8)
    assert views.distortion is not None and views.images.shape[-2:] == (60, 33)
    i = views.train[0]
    o, d = view_rays(views, i)
    pts = (o + d * (torch.rand(len(o), 1) * 3 + 0.5)).double()  # any depth: a camera sees its own rays' points
    out = reproject(views.images[i], views.K[i], views.cam_from_world[i], views.distortion, pts)
    torch.testing.assert_close(out.T.reshape(views.images[i].shape), views.images[i], atol=1e-4, rtol=0)


def test_export_finds_a_dense_ball_in_the_capture_coordinates():
    cfg = RadianceConfig(model=RadianceModel(resolution=32))
    model = RadianceGrid(cfg).eval()
    model.centre.copy_(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    model.scale.fill_(0.5)
    r = cfg.model.inner_radius
    with torch.no_grad():
        c = (torch.arange(32) + 0.5) / 32 * 2 - 1  # voxel centres, contracted box
        z, y, x = torch.meshgrid(c, c, c, indexing="ij")
        ball = (x**2 + y**2 + z**2).sqrt() < 0.25  # contracted 0.25 = normalised r / 2
        model.grids[0][0, 0] = torch.where(ball, 10.0, -10.0)
        model.grids[0][0, 1] = 5.0  # red
    pts, colours, occ, grid = export_occupancy(model)
    assert occ.shape == (16, 16, 16) and 0 < len(pts) == int(occ.sum())
    radius_world = (pts - torch.tensor([1.0, -2.0, 3.0])).norm(dim=-1)  # normalised r / 2 = world r
    assert float(radius_world.max()) <= r + 2 * (2 * r / 0.5 / 16)
    assert float(radius_world.max()) >= r - 2 * (2 * r / 0.5 / 16)
    assert (colours[:, 0] > 0.99).all() and (colours[:, 1:] == 0.5).all()
    torch.testing.assert_close(torch.tensor(grid.bounds_min), torch.tensor([1.0, -2.0, 3.0]) - r / 0.5)


def test_fitting_a_generated_object_beats_reprojecting_the_nearest_view(tmp_path):
    from unrender.engine import Trainer

    path = _object_capture(tmp_path / "obj")
    method = get_method("radiance")
    cfg = method.make_config("tiny")
    cfg.data = RadianceData(capture=path, downscale=1, holdout=4)
    cfg.model = RadianceModel(resolution=32, inner_samples=32, outer_samples=4)
    cfg.train.max_steps, cfg.train.batch_size, cfg.train.out_dir = 150, 1024, tmp_path / "run"
    cfg.train.progress = False
    m = Trainer(method, cfg).fit()
    assert m["held_out_views"] == 4
    # a blank-background object: the fit must learn its shape to beat a warped neighbour by a clear margin
    assert m["fit/psnr"] > m["nearest_plane/psnr"] + 2 and m["fit/psnr"] > 19, m


def test_predict_fits_a_capture_and_writes_the_orbit_scores_and_voxels(tmp_path, capsys):
    from unrender.data.formats import iter_frames, read_binvox, read_ply

    path = _object_capture(tmp_path / "obj", views=8, size=32)
    out = tmp_path / "out"
    assert main(["predict", "radiance", "--input", str(path), "--preset", "tiny", "--downscale", "1",
                 "--holdout", "4", "--orbit", "3", "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["steps"] == summary["max_steps"] == 6 and "stopped_by" not in summary
    assert np.isfinite(summary["held_out"]["fit/psnr"]) and summary["held_out"]["held_out_views"] == 2
    assert len(list(iter_frames(out / "orbit.mp4"))) == 3 and (out / "orbit_0000.png").is_file()
    pts, _ = read_ply(out / "occupancy.ply")
    occ, _ = read_binvox(out / "occupancy.binvox")
    assert len(pts) == summary["occupied_voxels"] == int(occ.sum())
    # the fitted run renders again without its images (the capture frame is in the checkpoint)
    assert (
        main(["predict", "radiance", "--ckpt", str(out / "fit"), "--orbit", "2", "--out", str(tmp_path / "again")]) == 0
    )
    capsys.readouterr()
    one_line_error(main(["predict", "radiance", "--out", str(tmp_path / "x")]), capsys.readouterr().err, "--input")
    missing = ["predict", "radiance", "--input", str(tmp_path / "missing.json"), "--out", str(tmp_path / "m")]
    one_line_error(main(missing), capsys.readouterr().err, "missing.json")
    assert not (tmp_path / "m").exists()  # a bad capture fails before any run folder is made


@pytest.mark.parametrize("bad", ["levels", "downscale"])
def test_bad_settings_are_named(bad, tmp_path):
    path = _object_capture(tmp_path / "obj", views=4, size=16)
    if bad == "levels":
        with pytest.raises(ValueError, match="levels"):
            RadianceGrid(RadianceConfig(model=RadianceModel(resolution=8, levels=4)))
    else:
        with pytest.raises(ValueError, match="downscale"):
            load_views(path, 0, 0)


def test_weights_shipped_in_half_precision_load_into_the_float32_model(tmp_path, monkeypatch):
    from _util import untrained_checkpoint

    import unrender.weights as weights
    from unrender.engine import load_checkpoint

    untrained_checkpoint("radiance", "tiny", tmp_path / "ck")
    monkeypatch.setattr(weights, "SHIPPED", tmp_path / "shipped")
    with torch.no_grad():
        ref = RadianceGrid(get_method("radiance").make_config("tiny"))
    load_checkpoint(sorted((tmp_path / "ck" / "checkpoints").iterdir())[-1], ref)
    folder = weights.ship_checkpoint(tmp_path / "ck", "radiance", card="# test\n", half=True)
    assert (folder / "model.safetensors").stat().st_size < 0.6 * 4 * ref.grids[0].numel()
    _, model, _, _ = weights.load_trained("radiance", None, "cpu")  # checks the rewritten checksum
    assert model.grids[0].dtype == torch.float32 and model.K.dtype == torch.float64
    torch.testing.assert_close(model.grids[0], ref.grids[0], atol=2e-3, rtol=1e-3)
