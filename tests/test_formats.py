import json
import random
import shutil
import warnings

import numpy as np
import pytest
import torch
from _util import rand_rigid
from PIL import Image

from unrender.data.formats import (
    FormatError,
    MissingFileError,
    read_binvox,
    read_colmap_text,
    read_h36m,
    read_kitti_calib,
    read_kitti_depth_png,
    read_kitti_label,
    read_kitti_velodyne,
    read_realestate10k,
    read_transforms_json,
    velodyne_depth_map,
    write_binvox,
)
from unrender.geometry import VoxelGrid, matrix_to_quaternion, transform_points

FRAMES = ("000000", "000001", "000002")


def test_kitti_object_frames_and_lidar_depth_agree_with_labels(shared_data):
    root = shared_data / "kitti_object"
    cars = 0
    for f in FRAMES:
        calib = read_kitti_calib(root / "calib" / f"{f}.txt")
        lab = read_kitti_label(root / "label_2" / f"{f}.txt")
        pts = read_kitti_velodyne(root / "velodyne" / f"{f}.bin")
        W, H = Image.open(root / "image_2" / f"{f}.png").size
        depth = velodyne_depth_map(pts, calib, H, W)
        assert depth.shape == (1, H, W) and (depth > 0).sum() > 10000
        for i, t in enumerate(lab.types):
            if t != "Car":
                continue
            x1, y1, x2, y2 = lab.boxes_2d[i].round().long().tolist()
            d = depth[0, y1 : y2 + 1, x1 : x2 + 1]
            d = d[d > 0]
            near = float(np.percentile(d.numpy(), 25))  # the car's visible surface
            l, w = lab.boxes[i, 3].item(), lab.boxes[i, 5].item()
            assert abs(near - lab.boxes[i, 2].item()) < max(l, w) / 2 + 0.5, (f, i, near, lab.boxes[i, 2])
            cars += 1
    assert cars >= 2


def test_kitti_depth_pngs(shared_data):
    root = shared_data / "kitti_depth"
    ann = json.loads((root / "test_annotations.json").read_text())
    for entry in ann["files"]:
        name = entry["depth"].split("/")[-1]
        d = read_kitti_depth_png(root / "depth" / name, scale=entry["depth_scale"])
        rgb = Image.open(root / "rgb" / name)
        assert d.shape == (1, rgb.size[1], rgb.size[0])
        valid = d[d > 0]
        assert 0.1 < (d > 0).float().mean() < 0.5 and 1 < valid.min() and valid.max() < 100


def test_nerf_fox_reports_missing_frames(shared_data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = read_transforms_json(shared_data / "nerf_fox" / "transforms.json")
    assert len(scene.image_paths) == 50 and len(scene.missing) == 17
    assert any("no image file" in str(w.message) for w in caught)
    meta = json.loads((shared_data / "nerf_fox" / "transforms.json").read_text())
    assert scene.K[0, 0, 2].item() == pytest.approx(meta["cx"] - 0.5)  # half-integer -> integer pixel centres
    assert scene.width == 1080 and scene.height == 1920 and scene.distortion["k1"] == pytest.approx(meta["k1"])


def test_h36m_joints_reproject_with_distortion(shared_data):
    s = read_h36m(shared_data / "h36m" / "test_h36m_body3d.npz", shared_data / "h36m" / "cameras.json")
    assert s.joints_cam.shape == (4, 17, 3) and s.subjects == ["S1", "S5", "S7", "S8"]
    x = s.joints_cam[..., :2] / s.joints_cam[..., 2:]
    k1, k2, p1, p2, k3 = s.distortion[:, None].unbind(-1)
    r2 = (x**2).sum(-1)
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x[..., 0] * radial + 2 * p1 * x[..., 0] * x[..., 1] + p2 * (r2 + 2 * x[..., 0] ** 2)
    yd = x[..., 1] * radial + p1 * (r2 + 2 * x[..., 1] ** 2) + 2 * p2 * x[..., 0] * x[..., 1]
    u = s.K[:, None, 0, 0] * xd + s.K[:, None, 0, 2]
    v = s.K[:, None, 1, 1] * yd + s.K[:, None, 1, 2]
    err = (torch.stack([u, v], -1) - s.joints_2d).norm(dim=-1)
    assert err.max() < 0.5
    # the camera pose puts the subject in front of the camera
    world = transform_points(torch.linalg.inv(s.cam_from_world), s.joints_cam)
    assert (transform_points(s.cam_from_world, world)[..., 2] > 2).all()


def test_colmap_text_round_trip(tmp_path):
    T = rand_rigid((3,), seed=4)
    q = matrix_to_quaternion(T[:, :3, :3])
    (tmp_path / "cameras.txt").write_text(
        "# comment\n1 PINHOLE 640 480 500 510 320 240\n2 SIMPLE_RADIAL 320 240 300 160 120 0.01\n"
    )
    lines = ["# images"]
    for i in range(3):
        vals = " ".join(f"{v:.17g}" for v in [*q[i].tolist(), *T[i, :3, 3].tolist()])
        lines += [f"{i + 1} {vals} {1 + i % 2} img{i}.png", "10.0 20.0 -1"]
    (tmp_path / "images.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "points3D.txt").write_text("1 0.5 0.2 3.0 255 0 0 0.1 1 0\n")
    m = read_colmap_text(tmp_path)
    torch.testing.assert_close(m.cam_from_world, T)
    assert m.image_names == ["img0.png", "img1.png", "img2.png"]
    K = m.K()
    assert K[0, 0, 2].item() == pytest.approx(319.5) and K[1, 0, 0].item() == pytest.approx(300)
    assert m.points.shape == (1, 3) and m.colors[0].tolist() == [255, 0, 0]
    (tmp_path / "cameras.txt").write_text("1 KANNALA 640 480 1 2 3\n")
    with pytest.raises(FormatError, match="expected 'ID MODEL W H PARAMS'"):
        read_colmap_text(tmp_path)
    with pytest.raises(MissingFileError):
        read_colmap_text(tmp_path / "nope")


def test_realestate10k_round_trip(tmp_path):
    T = rand_rigid((2,), seed=6)
    rows = ["https://www.youtube.com/watch?v=xyz"]
    for i in range(2):
        m = " ".join(f"{v:.17g}" for v in T[i, :3, :].reshape(-1).tolist())
        rows.append(f"{1000 * i} 0.5 0.9 0.5 0.5 0 0 {m}")
    (tmp_path / "clip.txt").write_text("\n".join(rows) + "\n")
    clip = read_realestate10k(tmp_path / "clip.txt")
    torch.testing.assert_close(clip.cam_from_world, T)
    K = clip.K(360, 640)
    # normalised cx = 0.5 is the image centre: (W - 1) / 2 with integer pixel centres
    assert K[0, 0, 2].item() == pytest.approx(319.5) and K[0, 0, 0].item() == pytest.approx(320)
    (tmp_path / "bad.txt").write_text("url\n1 2 3\n")
    with pytest.raises(FormatError, match="expected 19 fields"):
        read_realestate10k(tmp_path / "bad.txt")


def test_binvox_round_trip(tmp_path):
    grid = VoxelGrid((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (16, 16, 16))
    c = grid.centers()
    occ = (c[..., 0] ** 2 + (c[..., 1] / 0.5) ** 2 + c[..., 2] ** 2 < 0.2) & (c[..., 0] > -0.3)  # asymmetric
    write_binvox(tmp_path / "a.binvox", occ, grid)
    back, g2 = read_binvox(tmp_path / "a.binvox")
    assert torch.equal(back, occ)
    assert g2 == grid


def _mutations(data: bytes, rng: random.Random):
    yield data[: len(data) // 2]
    yield data[: max(1, len(data) // 7)]
    yield b""
    for _ in range(4):
        b = bytearray(data)
        for _ in range(max(1, len(b) // 50)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        yield bytes(b)
    yield bytes(rng.randrange(256) for _ in range(64))


def test_fuzzed_files_raise_format_error(tmp_path, shared_data):
    """Truncated or corrupted files either parse or raise FormatError, never anything else."""
    rng = random.Random(0)
    root = shared_data / "kitti_object"
    grid = VoxelGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (8, 8, 8))
    write_binvox(tmp_path / "ok.binvox", torch.rand(8, 8, 8) > 0.5, grid)
    cases = [
        (root / "label_2" / "000001.txt", read_kitti_label, "a.txt"),
        (root / "calib" / "000001.txt", read_kitti_calib, "a.txt"),
        (root / "velodyne" / "000001.bin", read_kitti_velodyne, "a.bin"),
        (shared_data / "kitti_depth" / "depth" / "0000000005.png", read_kitti_depth_png, "a.png"),
        (tmp_path / "ok.binvox", read_binvox, "a.binvox"),
    ]
    tried = 0
    for src, reader, name in cases:
        for data in _mutations(src.read_bytes(), rng):
            p = tmp_path / name
            p.write_bytes(data)
            try:
                reader(p)
            except FormatError:
                pass
            tried += 1
    # structured files: transforms.json and the Human3.6M pair
    fox = tmp_path / "fox"
    shutil.copytree(shared_data / "nerf_fox", fox, ignore=shutil.ignore_patterns("*.jpg"))
    for img in (shared_data / "nerf_fox" / "images").glob("*.jpg"):
        (fox / "images" / img.name).touch()  # the reader only needs them to exist (w and h are given)
    with pytest.warns(UserWarning, match="17 listed frame"):
        assert len(read_transforms_json(fox / "transforms.json").image_paths) == 50
    h36 = tmp_path / "h36m"
    h36.mkdir()
    for f in ("test_h36m_body3d.npz", "cameras.json"):
        shutil.copy(shared_data / "h36m" / f, h36 / f)
    for target, call in (
        (fox / "transforms.json", lambda: read_transforms_json(fox / "transforms.json")),
        (h36 / "cameras.json", lambda: read_h36m(h36 / "test_h36m_body3d.npz", h36 / "cameras.json")),
        (h36 / "test_h36m_body3d.npz", lambda: read_h36m(h36 / "test_h36m_body3d.npz", h36 / "cameras.json")),
    ):
        original = target.read_bytes()
        for data in _mutations(original, rng):
            target.write_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    call()
                except FormatError:
                    pass
            tried += 1
        target.write_bytes(original)
    assert tried > 60
    with pytest.raises(MissingFileError, match="KITTI velodyne file not found"):
        read_kitti_velodyne(tmp_path / "missing.bin")
    assert issubclass(MissingFileError, FileNotFoundError)
