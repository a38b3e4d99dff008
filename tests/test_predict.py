"""`unrender predict depth` on a user's image, video or folder: the files it writes, their formats, and
that the point cloud reprojects onto the image where the depth PNG says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _util import one_line_error, untrained_checkpoint
from PIL import Image

from unrender.cli import main
from unrender.data.formats import fit_view_crop, read_kitti_depth_png, read_ply, write_ply
from unrender.geometry import make_intrinsics, project_points, undistort_image

KITTI_K = [707.0493, 707.0493, 604.0814, 180.5066]  # ../shared/data/kitti_depth/test_annotations.json


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return untrained_checkpoint("depth", "cpu", tmp_path_factory.mktemp("depth-ckpt"))


def test_kitti_frame_gives_depth_png_preview_and_a_ply_that_reprojects(shared_data, tmp_path, capsys):
    """The README's command on a fresh clone: the shipped weights (no --ckpt) on a real KITTI frame."""
    frame = shared_data / "kitti_depth" / "rgb" / "0000000005.png"
    K_file = Path(__file__).resolve().parents[1] / "docs" / "data" / "kitti_depth_intrinsics.json"
    out = tmp_path / "pred"
    assert main(["predict", "depth", "--input", str(frame), "--intrinsics", str(K_file), "--out", str(out),
                 "--gt", str(shared_data / "kitti_depth" / "depth")]) == 0, capsys.readouterr().err  # fmt: skip
    with Image.open(out / "0000000005_depth.png") as im:
        assert im.size == (1242, 375) and np.asarray(im).dtype == np.uint16  # KITTI: uint16, metres x 256
    with Image.open(out / "0000000005_preview.png") as im:
        assert im.mode == "RGB" and im.size[0] > 400
    depth = read_kitti_depth_png(out / "0000000005_depth.png")[0]
    top, left, ch, cw = fit_view_crop(375, 1242, 64, 192)
    assert bool((depth[:, :left] == 0).all()) and bool((depth[:, left : left + cw] > 0).all())
    pts, colors = read_ply(out / "0000000005.ply")
    assert pts.shape == (64 * 192, 3) and colors is not None and colors.dtype == torch.uint8
    K = make_intrinsics(*KITTI_K, dtype=torch.float64)
    uv, z, ok = project_points(pts.double(), K)
    assert bool(ok.all())
    ij = torch.floor(uv + 0.5).long()
    assert bool(((ij[:, 0] >= left) & (ij[:, 0] < left + cw) & (ij[:, 1] >= top) & (ij[:, 1] < top + ch)).all())
    rel = (depth[ij[:, 1], ij[:, 0]].double() - z).abs() / z  # the PNG's depth where each point lands
    assert rel.median() < 0.01 and torch.quantile(rel, 0.95) < 0.05
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["camera"]["source"].startswith("intrinsics file") and summary["metric_scale"]["metric"]
    assert summary["checkpoint"].endswith("weights/depth")
    assert summary["frames"][0]["median_depth_m"] > 0
    scores = summary["frames"][0]  # scored against KITTI's ground truth where the model saw the scene
    assert 0 < scores["gt_pixels_scored"] < 1 and scores["unscaled/abs_rel"] > 0 and scores["median/abs_rel"] > 0
    assert summary["mean median/abs_rel"] == pytest.approx(scores["median/abs_rel"])


def _write_video(path: Path, frames: int, H: int = 48, W: int = 64) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):
            img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_video_with_a_field_of_view_guess(ckpt, tmp_path, capsys):
    _write_video(tmp_path / "clip.mp4", 5)
    out = tmp_path / "pred"
    assert main(["predict", "depth", "--input", str(tmp_path / "clip.mp4"), "--fov", "70", "--ckpt", str(ckpt),
                 "--out", str(out), "--every", "2", "--no-ply"]) == 0  # fmt: skip
    names = sorted(p.name for p in out.glob("*_depth.png"))
    assert names == ["clip_000000_depth.png", "clip_000002_depth.png", "clip_000004_depth.png"]
    summary = json.loads((out / "predictions.json").read_text())
    assert "guess" in summary["camera"]["source"] and not list(out.glob("*.ply"))


def test_real_dashcam_video_is_undistorted(ckpt, shared_data, tmp_path, capsys):
    video = shared_data / "udacity_drive" / "project_video.mp4"
    out = tmp_path / "pred"
    assert main(["predict", "depth", "--input", str(video), "--intrinsics",
                 str(shared_data / "udacity_drive" / "intrinsics.json"), "--ckpt", str(ckpt), "--out", str(out),
                 "--max-frames", "2", "--every", "25"]) == 0  # fmt: skip
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["camera"]["undistorted"] and len(summary["frames"]) == 2
    with Image.open(out / "project_video_000025_depth.png") as im:
        assert im.size == (1280, 720)


def test_undistortion_matches_kornia():
    kornia = pytest.importorskip("kornia")
    torch.manual_seed(0)
    img = torch.rand(1, 3, 48, 64)
    K = make_intrinsics(50.0, 52.0, 31.0, 24.5)
    dist = torch.tensor([-0.25, 0.05, 0.001, -0.002, 0.01])
    ours = undistort_image(img[0], K, dist)
    ref = kornia.geometry.calibration.undistort_image(img, K[None], dist[None])[0]
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_ply_round_trip(tmp_path):
    pts = torch.randn(10, 3)
    cols = torch.randint(0, 255, (10, 3), dtype=torch.uint8)
    write_ply(tmp_path / "a.ply", pts, cols)
    back, c2 = read_ply(tmp_path / "a.ply")
    assert torch.equal(back, pts) and torch.equal(c2, cols)
    (tmp_path / "b.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                                    "property float z\nend_header\n1 2 3\n4 5 6\n")  # fmt: skip
    assert read_ply(tmp_path / "b.ply")[0].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_bad_inputs_give_one_line(ckpt, tmp_path, capsys):
    img = tmp_path / "frame.png"
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(img)
    base = ["predict", "depth", "--ckpt", str(ckpt), "--out", str(tmp_path / "o")]
    one_line_error(main([*base, "--input", str(img)]), capsys.readouterr().err, "--intrinsics", "--fov")
    (tmp_path / "K.json").write_text(json.dumps({"fx": 100, "fy": 100, "cx": 320, "cy": 240, "width": 640,
                                                 "height": 240}))  # fmt: skip
    one_line_error(main([*base, "--input", str(img), "--intrinsics", str(tmp_path / "K.json")]),
                   capsys.readouterr().err, "K.json", "640 x 240")  # fmt: skip
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    one_line_error(main([*base, "--input", str(tmp_path / "bad.mp4"), "--fov", "60"]), capsys.readouterr().err,
                   "bad.mp4", "video")  # fmt: skip
    one_line_error(main([*base, "--input", str(tmp_path / "missing.png"), "--fov", "60"]), capsys.readouterr().err,
                   "missing.png")  # fmt: skip
    (tmp_path / "K2.json").write_text(json.dumps({"fx": 0, "fy": 100, "cx": 40, "cy": 30}))
    one_line_error(main([*base, "--input", str(img), "--intrinsics", str(tmp_path / "K2.json")]),
                   capsys.readouterr().err, "focal")  # fmt: skip
    one_line_error(main([*base, "--input", str(img), "--fov", "200"]), capsys.readouterr().err, "--fov")


def test_without_ckpt_the_shipped_weights_are_used_or_the_error_says_there_are_none(capsys):
    from unrender.weights import SHIPPED

    if (SHIPPED / "toy" / "model.safetensors").is_file():
        pytest.skip("toy weights are shipped")
    one_line_error(main(["eval", "toy"]), capsys.readouterr().err, "ships no weights for 'toy'", "--ckpt")


def test_energy_pose_lifts_keypoints_and_refuses_a_wrong_joint_count(tmp_path, capsys):
    untrained_checkpoint("energy-pose", "tiny", tmp_path / "ck")
    K = [[1145.0, 0.0, 512.0], [0.0, 1144.0, 515.0], [0.0, 0.0, 1.0]]
    j2d = (np.random.default_rng(0).normal(0, 40, (2, 17, 2)) + [512, 515]).tolist()
    (tmp_path / "kp.json").write_text(json.dumps({"K": K, "joints_2d": j2d}))
    out = tmp_path / "out"
    assert main(["predict", "energy-pose", "--input", str(tmp_path / "kp.json"), "--ckpt", str(tmp_path / "ck"),
                 "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    result = json.loads((out / "joints_3d.json").read_text())
    assert len(result["poses"]) == 2 and len(result["poses"][0]) == 17 and "pelvis" in result["poses"][0]
    assert all(np.isfinite(v).all() for pose in result["poses"] for v in pose.values())
    with Image.open(out / "skeletons.png") as im:
        assert im.size[0] > 0
    (tmp_path / "bad.json").write_text(json.dumps({"K": K, "joints_2d": j2d[0][:16]}))
    one_line_error(main(["predict", "energy-pose", "--input", str(tmp_path / "bad.json"), "--ckpt",
                         str(tmp_path / "ck")]), capsys.readouterr().err, "bad.json", "17")  # fmt: skip


def test_dashcam_video_gives_a_depth_video(ckpt, shared_data, tmp_path, capsys):
    from unrender.data.formats import iter_frames

    video = shared_data / "udacity_drive" / "project_video.mp4"
    out = tmp_path / "pred"
    assert main(["predict", "depth", "--input", str(video), "--intrinsics",
                 str(shared_data / "udacity_drive" / "intrinsics.json"), "--ckpt", str(ckpt), "--out", str(out),
                 "--max-frames", "3", "--every", "10", "--no-ply"]) == 0, capsys.readouterr().err  # fmt: skip
    frames = [img for _, img in iter_frames(out / "depth_preview.mp4")]
    with Image.open(out / "project_video_000000_preview.png") as im:
        w, h = im.size
    assert len(frames) == 3 and abs(frames[0].shape[-1] - w) <= 1 and abs(frames[0].shape[-2] - h) <= 1


def test_voxel_cube_resampling_keeps_the_shape():
    """The binvox cube written by predict energy-voxels holds the frustum grid's occupancy where it was."""
    from unrender.methods.energy.voxels.config import VoxelData
    from unrender.methods.energy.voxels.data import grid_occupancy, grid_points
    from unrender.methods.energy.voxels.predict import cube_from_grid
    from unrender.world import Scene
    from unrender.world.sample import SynthConfig, make_sample

    d = VoxelData(resolution=32)
    s = make_sample(SynthConfig(kind="objects", views=1, height=64, width=64, seed=3), 0)
    scene, K, T = (
        Scene.from_json(str(s["scene_json"])),
        torch.from_numpy(s["K"][0]),
        torch.from_numpy(s["cam_from_world"][0]),
    )
    frustum = grid_occupancy(scene, T, grid_points(d, K)) > 0.5
    cube, grid = cube_from_grid(frustum, d, K)
    exact = grid_occupancy(scene, T, grid.centers(dtype=torch.float64)).reshape(cube.shape) > 0.5
    iou = float((cube & exact).sum() / (cube | exact).sum())
    assert exact.sum() > 50 and iou > 0.6, iou  # nearest-cell resampling of a 32-cell frustum: ~0.7-0.8


def test_energy_voxels_image_to_binvox(shared_data, tmp_path, capsys):
    from unrender.data.formats import read_binvox
    from unrender.methods.energy.voxels.data import grid_occupancy
    from unrender.world import Scene
    from unrender.world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="objects", views=1, height=128, width=128, seed=11), 0)
    Image.fromarray(s["rgb"][0].transpose(1, 2, 0)).save(tmp_path / "obj.png")
    (tmp_path / "K.json").write_text(json.dumps({"K": s["K"][0].tolist(), "width": 128, "height": 128}))
    out = tmp_path / "out"
    assert main(["predict", "energy-voxels", "--input", str(tmp_path / "obj.png"), "--intrinsics",
                 str(tmp_path / "K.json"), "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    occ, grid = read_binvox(out / "obj.binvox")
    pts, _ = read_ply(out / "obj.ply")
    assert occ.shape == (32, 32, 32) and len(pts) > 0
    exact = grid_occupancy(Scene.from_json(str(s["scene_json"])), torch.from_numpy(s["cam_from_world"][0]),
                           grid.centers(dtype=torch.float64)).reshape(occ.shape) > 0.5  # fmt: skip
    iou = float((occ & exact).sum() / (occ | exact).sum())
    assert iou > 0.2, iou  # the shipped weights score ~0.5 on held-out views; an untrained model ~0.0
    one_line_error(main(["predict", "energy-voxels", "--input", str(tmp_path / "obj.png"), "--out", str(out)]),
                   capsys.readouterr().err, "--intrinsics", "--fov")  # fmt: skip


def test_capture_normalisation_and_orbit():
    from unrender.data.capture import TRAIN_DISTANCE, capture_frame, normalise, orbit_cameras
    from unrender.geometry import invert_rigid, look_at

    g = torch.Generator().manual_seed(0)
    centre = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    eyes = centre + 7.0 * torch.nn.functional.normalize(torch.randn(12, 3, generator=g, dtype=torch.float64), dim=-1)
    T = look_at(eyes, centre.expand_as(eyes))
    found, scale, how = capture_frame(T)
    assert how.startswith("inward")
    torch.testing.assert_close(found, centre)
    assert abs(scale - TRAIN_DISTANCE / 7.0) < 1e-9
    Tn = normalise(T, found, scale)
    torch.testing.assert_close(
        invert_rigid(Tn)[:, :3, 3].norm(dim=-1), torch.full((12,), TRAIN_DISTANCE, dtype=torch.float64)
    )
    orbit = orbit_cameras(Tn, 6)
    origin_cam = orbit[:, :3, 3]  # where the origin lands in each orbit camera: straight ahead
    assert torch.allclose(origin_cam[:, :2], torch.zeros(6, 2, dtype=torch.float64), atol=1e-9)
    assert (origin_cam[:, 2] > 0).all()


def test_orbit_is_upright_and_stays_on_the_arc_the_cameras_span():
    import math

    from unrender.data.capture import centres_axes, orbit_cameras
    from unrender.geometry import invert_rigid, look_at

    def ring(angles: torch.Tensor) -> torch.Tensor:  # cameras 3 m out, 1 m above the origin (y down), upright
        eyes = torch.stack([3 * torch.sin(angles), torch.full_like(angles, -1.0), -3 * torch.cos(angles)], -1)
        return look_at(eyes, torch.zeros_like(eyes))

    arc = ring(torch.linspace(-1.0, 1.0, 9, dtype=torch.float64))  # a 115-degree arc, as in front of a wall
    orbit = orbit_cameras(arc, 16)
    c, _ = centres_axes(orbit)
    az = torch.atan2(c[:, 0], -c[:, 2])
    assert float(az.min()) >= -1.0 - 1e-6 and float(az.max()) <= 1.0 + 1e-6 and float(az.max() - az.min()) > 1.9
    torch.testing.assert_close(c[:, 1], torch.full((16,), -1.0, dtype=torch.float64))
    assert (invert_rigid(orbit)[:, 1, 1] > 0.9).all()  # upright: image down is world down, as in the inputs
    full = orbit_cameras(ring(torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8), 8)
    c, _ = centres_axes(full)
    az = torch.atan2(c[:, 0], -c[:, 2])
    assert len(set(torch.round(az, decimals=6).tolist())) == 8  # once round: eight different places
    assert float(torch.cos(az[1] - az[0])) < 0.75


def test_nvs_capture_to_held_out_views_and_video(shared_data, tmp_path, capsys):
    from unrender.data.formats import iter_frames

    untrained_checkpoint("nvs", "tiny", tmp_path / "ck")
    fox = shared_data / "nerf_fox" / "transforms.json"
    out = tmp_path / "out"
    assert main(["predict", "nvs", "--input", str(fox), "--holdout", "8", "--ckpt", str(tmp_path / "ck"),
                 "--out", str(out)]) == 0, capsys.readouterr().err  # fmt: skip
    summary = json.loads((out / "predictions.json").read_text())
    assert len(summary["views"]) == 7 and summary["undistorted"]  # 50 images, every 8th held out
    assert all(v["target"] not in v["inputs"] for v in summary["views"])
    assert 5 < summary["mean nearest_view_psnr"] < 40 and np.isfinite(summary["mean psnr"])
    assert len(list(iter_frames(out / "views.mp4"))) == 7 and len(list(out.glob("view_*.png"))) == 7
    meta = json.loads(fox.read_text())
    meta["frames"] = [dict(f, file_path=str(fox.parent / f["file_path"])) for f in meta["frames"]
                      if (fox.parent / f["file_path"]).is_file()][:6]  # fmt: skip
    (tmp_path / "six.json").write_text(json.dumps(meta))
    assert main(["predict", "nvs", "--input", str(tmp_path / "six.json"), "--orbit", "4", "--ckpt",
                 str(tmp_path / "ck"), "--out", str(tmp_path / "orbit")]) == 0  # fmt: skip
    assert len(list((tmp_path / "orbit").glob("view_*.png"))) == 4
    capsys.readouterr()
    one_line_error(main(["predict", "nvs", "--input", str(fox), "--ckpt", str(tmp_path / "ck")]),
                   capsys.readouterr().err, "--targets", "--orbit")  # fmt: skip


def _room_as_tum_and_transforms(root: Path) -> dict:
    """A generated room (8 views) written as a TUM RGB-D folder and as an RGB-D transforms.json."""
    from unrender.data.formats import opengl_from_cam_from_world
    from unrender.geometry import invert_rigid, matrix_to_quaternion
    from unrender.world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="rooms", views=8, height=96, width=128, seed=4), 0)
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_lines, depth_lines, gt_lines, frames = [], [], [], []
    for v in range(8):
        t = 1000.0 + v / 30
        Image.fromarray(s["rgb"][v].transpose(1, 2, 0)).save(root / "rgb" / f"{v}.png")
        mm = np.clip(s["depth"][v, 0] * 5000, 0, 65535).astype(np.uint16)  # TUM: 5000 units per metre
        Image.fromarray(mm).save(root / "depth" / f"{v}.png")
        rgb_lines.append(f"{t:.6f} rgb/{v}.png")
        depth_lines.append(f"{t + 0.004:.6f} depth/{v}.png")
        world_from_cam = invert_rigid(torch.from_numpy(s["cam_from_world"][v]))
        w, x, y, z = matrix_to_quaternion(world_from_cam[:3, :3]).tolist()
        gt_lines.append(
            f"{t - 0.003:.6f} " + " ".join(f"{a:.9f}" for a in [*world_from_cam[:3, 3].tolist(), x, y, z, w])
        )
        Image.fromarray((s["depth"][v, 0] * 5000).astype(np.uint16)).save(root / "depth" / f"{v}_tf.png")
        c2w = opengl_from_cam_from_world(torch.from_numpy(s["cam_from_world"][v]))
        frames.append(
            {"file_path": f"rgb/{v}.png", "depth_file_path": f"depth/{v}_tf.png", "transform_matrix": c2w.tolist()}
        )
    (root / "rgb.txt").write_text("# timestamp filename\n" + "\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    (root / "groundtruth.txt").write_text("# timestamp tx ty tz qx qy qz qw\n" + "\n".join(gt_lines) + "\n")
    K = s["K"][0]
    (root / "K.json").write_text(json.dumps({"K": K.tolist(), "width": 128, "height": 96}))
    meta = {"fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2] + 0.5, "cy": K[1, 2] + 0.5, "w": 128, "h": 96,
            "depth_unit_scale_factor": 1 / 5000, "frames": frames}  # fmt: skip
    (root / "transforms.json").write_text(json.dumps(meta, default=float))
    return s


def test_mapping_rgbd_capture_to_occupancy_boxes_and_views(tmp_path, capsys):
    from unrender.data.capture import gravity_direction
    from unrender.data.formats import read_binvox, read_tum_rgbd
    from unrender.geometry import transform_points
    from unrender.methods.mapping.data import mem_from_world

    s = _room_as_tum_and_transforms(tmp_path / "room")
    T = torch.from_numpy(s["cam_from_world"]).double()
    seq = read_tum_rgbd(tmp_path / "room")
    torch.testing.assert_close(seq.cam_from_world, T, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        gravity_direction(T), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-6, rtol=0
    )
    untrained_checkpoint("mapping", "tiny", tmp_path / "ck")
    for name, src in (("tum", tmp_path / "room"), ("tf", tmp_path / "room" / "transforms.json")):
        out = tmp_path / name
        extra = ["--intrinsics", str(tmp_path / "room" / "K.json")] if name == "tum" else []
        assert main(["predict", "mapping", "--input", str(src), "--ckpt", str(tmp_path / "ck"), "--out", str(out),
                     "--inputs", "0", "2", "4", *extra]) == 0, capsys.readouterr().err  # fmt: skip
        summary = json.loads((out / "predictions.json").read_text())
        # the generated world is already level: the memory frame is the training one of the first input view
        mem = torch.tensor(summary["mem_from_world"], dtype=torch.float64)
        torch.testing.assert_close(mem, mem_from_world(T[0]), atol=1e-5, rtol=0)
        occ, grid = read_binvox(out / "occupancy.binvox")
        pts, cols = read_ply(out / "occupancy.ply")
        assert occ.sum() == len(pts) == summary["occupied_voxels"] and cols is not None
        if len(pts):  # the PLY's world points fall in occupied binvox cells of the memory frame
            p = transform_points(mem, pts.double())
            idx = ((p - torch.tensor(grid.bounds_min)) / torch.tensor(grid.voxel_size)).floor().long()
            assert occ[idx[:, 2], idx[:, 1], idx[:, 0]].all()
        boxes = json.loads((out / "boxes.json").read_text())
        assert all(len(b["corners_world"]) == 8 for b in boxes["boxes"])
        with np.load(out / "semantics.npz") as z:
            assert z["classes"].shape == z["occupancy_probability"].shape == occ.shape[:0] + tuple(grid_shape(summary))
        rendered = [r["view"] for r in summary["rendered"]]
        assert len(rendered) == 4 and not {0, 2, 4} & set(rendered)  # --render 4 of the views the model did not see
    capsys.readouterr()
    one_line_error(main(["predict", "mapping", "--input", str(tmp_path / "room"), "--ckpt", str(tmp_path / "ck"),
                         "--inputs", "0", "1"]), capsys.readouterr().err, "--inputs")  # fmt: skip
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(tmp_path / "room" / "depth" / "2.png")  # half size
    one_line_error(main(["predict", "mapping", "--input", str(tmp_path / "room"), "--ckpt", str(tmp_path / "ck"),
                         "--intrinsics", str(tmp_path / "room" / "K.json"), "--inputs", "0", "2", "4"]),
                   capsys.readouterr().err, "2.png", "64 x 48", "128 x 96")  # fmt: skip
    (tmp_path / "room" / "groundtruth.txt").write_text("1000.0 0 0 0 0 0 0 2\n")
    one_line_error(main(["predict", "mapping", "--input", str(tmp_path / "room"), "--ckpt", str(tmp_path / "ck")]),
                   capsys.readouterr().err, "groundtruth.txt", "quaternion")  # fmt: skip


def grid_shape(summary: dict) -> tuple[int, int, int]:
    X, Y, Z = summary["memory_box_m"]["resolution_xyz"]
    return Z, Y, X


def test_mapping_shipped_weights_recover_a_generated_room_from_its_tum_files(tmp_path, capsys):
    """The shipped mapping weights, through the TUM RGB-D reader, on a room they never saw: the predicted
    occupancy overlaps the exact occupancy of the scene in the memory frame."""
    from unrender.methods import get_method
    from unrender.methods.mapping.data import mem_from_world, memory_grid
    from unrender.weights import shipped_checkpoint
    from unrender.world import Scene
    from unrender.world.truth import occupancy

    s = _room_as_tum_and_transforms(tmp_path / "room")
    out = tmp_path / "out"
    assert main(["predict", "mapping", "--input", str(tmp_path / "room"), "--intrinsics",
                 str(tmp_path / "room" / "K.json"), "--inputs", "0", "3", "6", "--out", str(out)]) == 0, (
        capsys.readouterr().err)  # fmt: skip
    cfg = get_method("mapping").make_config("cpu")
    assert json.loads((shipped_checkpoint("mapping") / "config.json").read_text())["data"]["resolution"] == list(
        cfg.data.resolution
    )
    M = mem_from_world(torch.from_numpy(s["cam_from_world"][0]).double())
    exact, _ = occupancy(Scene.from_json(str(s["scene_json"])), memory_grid(cfg), grid_from_world=M)
    with np.load(out / "semantics.npz") as z:
        pred = torch.from_numpy(z["occupancy_probability"].astype(np.float32)) > 0.5
    exact = exact[0] > 0.5
    iou = float((pred & exact).sum() / (pred | exact).sum())
    assert iou > 0.5, iou  # 0.79 on average over the held-out rooms (docs/results.md); an untrained net ~0.1
