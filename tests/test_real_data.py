"""`unrender eval <method> --data-format FORMAT --data-path PATH`: each method's real-data protocol, one
option naming scheme for all methods, and one-line errors for a wrong format or a missing path."""

from __future__ import annotations

import json

import torch
from _util import one_line_error, untrained_checkpoint
from PIL import Image

from unrender.cli import main


def test_kitti_depth_protocol_with_the_shipped_weights(shared_data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "depth", "--data-format", "kitti-depth", "--data-path", str(shared_data / "kitti_depth"),
                 "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    m = json.loads(out.read_text())
    assert m["frames"] == 3 and m["data_format"] == "kitti-depth"
    # docs/results.md, Real data: 0.243 unscaled, 0.312 median-scaled (inference only: stable across CPUs)
    assert abs(m["unscaled/abs_rel"] - 0.243) < 0.01 and abs(m["median/abs_rel"] - 0.312) < 0.01


def test_h36m_protocols_1_and_2(shared_data, tmp_path, capsys):
    untrained_checkpoint("energy-pose", "tiny", tmp_path / "ck")
    out = tmp_path / "eval.json"
    assert main(["eval", "energy-pose", "--ckpt", str(tmp_path / "ck"), "--data-format", "h36m", "--data-path",
                 str(shared_data / "h36m"), "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    m = json.loads(out.read_text())
    assert m["frames"] == 4
    for row in ("K0", "K2", "fit"):
        assert 0 < m[f"{row}/h36m/p_mpjpe"] <= m[f"{row}/h36m/mpjpe"] < 5000  # Procrustes can only lower it


def test_binvox_pairs_iou_with_the_shipped_weights(tmp_path, capsys):
    from unrender.data.formats import write_binvox
    from unrender.geometry import VoxelGrid
    from unrender.methods.energy.voxels.data import grid_occupancy
    from unrender.world import Scene
    from unrender.world.sample import SynthConfig, make_sample

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    grid = VoxelGrid((-0.8, -0.8, 1.7), (0.8, 0.8, 3.3), (24, 24, 24))  # camera frame, around the object
    for i in range(3):
        s = make_sample(SynthConfig(kind="objects", views=1, height=96, width=96, seed=20 + i), 0)
        Image.fromarray(s["rgb"][0].transpose(1, 2, 0)).save(pairs / f"o{i}.png")
        (pairs / f"o{i}.json").write_text(json.dumps({"K": s["K"][0].tolist()}))
        occ = grid_occupancy(Scene.from_json(str(s["scene_json"])), torch.from_numpy(s["cam_from_world"][0]),
                             grid.centers(dtype=torch.float64))  # fmt: skip
        write_binvox(pairs / f"o{i}.binvox", occ.reshape(24, 24, 24) > 0.5, grid)
    out = tmp_path / "eval.json"
    assert main(["eval", "energy-voxels", "--data-format", "binvox-pairs", "--data-path", str(pairs),
                 "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    m = json.loads(out.read_text())
    assert m["pairs"] == 3 and 0.2 < m["iou"] <= 1  # ~0.5 on held-out generated views; untrained ~0


def test_formats_are_named_alike_and_errors_are_one_line(tmp_path, capsys):
    one_line_error(main(["eval", "depth", "--data-format", "h36m", "--data-path", str(tmp_path)]),
                   capsys.readouterr().err, "no data format 'h36m'", "kitti-depth")  # fmt: skip
    one_line_error(main(["eval", "nvs", "--data-format", "transforms"]), capsys.readouterr().err, "--data-path")
    one_line_error(main(["eval", "energy-pose", "--data-path", str(tmp_path)]), capsys.readouterr().err,
                   "--data-format", "h36m")  # fmt: skip
    one_line_error(main(["eval", "depth", "--data-format", "kitti-depth", "--data-path", str(tmp_path)]),
                   capsys.readouterr().err, "rgb/")  # fmt: skip


def test_realestate10k_clip_through_eval_and_training_data(tmp_path, capsys):
    """A RealEstate10K camera file with its frames: scored by `eval nvs --data-format realestate10k` and read
    by `train nvs --data.capture` (the same reader, normalised to the training scale)."""
    from unrender.methods import get_method
    from unrender.world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="objects", views=9, height=48, width=64, seed=7), 0)
    (tmp_path / "clip").mkdir()
    lines = ["https://www.youtube.com/watch?v=generated"]
    for v in range(9):
        ts = 1000 * (v + 1)
        Image.fromarray(s["rgb"][v].transpose(1, 2, 0)).save(tmp_path / "clip" / f"{ts}.png")
        K, T = s["K"][v], s["cam_from_world"][v]
        intr = [K[0, 0] / 64, K[1, 1] / 48, (K[0, 2] + 0.5) / 64, (K[1, 2] + 0.5) / 48]
        lines.append(" ".join(str(x) for x in [ts, *intr, 0, 0, *T[:3].reshape(-1).tolist()]))
    (tmp_path / "clip.txt").write_text("\n".join(lines) + "\n")
    untrained_checkpoint("nvs", "tiny", tmp_path / "ck")
    out = tmp_path / "eval.json"
    assert main(["eval", "nvs", "--ckpt", str(tmp_path / "ck"), "--data-format", "realestate10k", "--data-path",
                 str(tmp_path / "clip.txt"), "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    m = json.loads(out.read_text())
    assert m["targets"] == 2 and 10 < m["nearest/psnr"] < 60  # views 0 and 8 held out
    method = get_method("nvs")
    cfg = method.make_config("tiny")
    cfg.data.capture, cfg.data.capture_items = tmp_path / "clip.txt", 5
    ds = method.build_dataset(cfg, "train")
    it = ds[0]
    assert len(ds) == 5 and it["images"].shape == (cfg.data.num_input, 3, cfg.data.height, cfg.data.width)
    assert ds.normalisation.startswith("inward")  # an object in the middle of the cameras


def test_forward_facing_capture_gets_the_stated_convention():
    from unrender.data.capture import TRAIN_DISTANCE, capture_frame, normalise
    from unrender.geometry import look_at

    eyes = torch.stack([torch.tensor([0.1 * i, 0.0, 0.3 * i], dtype=torch.float64) for i in range(6)])
    T = look_at(eyes, eyes + torch.tensor([0.0, 0.0, 10.0], dtype=torch.float64))  # a camera walking ahead
    centre, scale, how = capture_frame(T)
    assert how.startswith("forward")
    Tn = normalise(T, centre, scale)
    c = torch.linalg.inv(Tn)[:, :3, 3]
    assert abs(float(torch.cdist(c, c).max()) - 1.0) < 1e-9  # the trajectory spans 1 unit
    assert abs(float(c.mean(0)[2]) + TRAIN_DISTANCE) < 1e-9  # the origin 2.5 units ahead of the mean camera
