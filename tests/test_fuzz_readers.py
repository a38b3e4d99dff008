"""Property-based fuzzing of every reader: a valid file of each format, made here, is truncated,
bit-flipped, replaced by random bytes or has a number swapped for NaN, inf, 0, a negative or text.
Whatever comes in, a reader either returns finite, sane values or raises its documented error type
(``FormatError`` for the format readers, ``DatasetError`` for synthetic-dataset samples) -- never
anything else. Hypothesis runs derandomised, so every machine tries the same inputs."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from unrender.data.formats import (
    FormatError,
    KittiObject,
    read_binvox,
    read_colmap_text,
    read_h36m,
    read_intrinsics,
    read_kitti_calib,
    read_kitti_cam_to_cam,
    read_kitti_depth_png,
    read_kitti_label,
    read_kitti_raw,
    read_kitti_velodyne,
    read_ply,
    read_realestate10k,
    read_rgb,
    read_transforms_json,
    write_binvox,
    write_kitti_label,
    write_kitti_raw,
    write_ply,
)
from unrender.data.synth import DatasetError, SynthDataset, write_dataset
from unrender.geometry import VoxelGrid, make_intrinsics
from unrender.world.sample import SynthConfig

FUZZ = settings(
    max_examples=60,
    database=None,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "0", "0.0", "-1", "-1e308", "1e308", "", "abc", "1e-320"]
NUMBER = re.compile(rb"-?\d+(\.\d+)?(e-?\d+)?")


@st.composite
def mutated(draw, data: bytes, text: bool):
    """A damaged copy of ``data``: truncated, bytes overwritten, random bytes, or (text) a number replaced."""
    kinds = ["truncate", "flip", "random"] + (["number", "number"] if text else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=256))
    if kind == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    spans = [m.span() for m in NUMBER.finditer(data)]
    lo, hi = spans[draw(st.integers(0, len(spans) - 1))]
    return data[:lo] + draw(st.sampled_from(BAD_NUMBERS)).encode() + data[hi:]


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _finite(x) -> None:
    """What a reader returns is finite wherever it is a float tensor."""
    items = x.values() if isinstance(x, dict) else (vars(x).values() if hasattr(x, "__dict__") else [x])
    for v in items:
        if isinstance(v, (list, tuple)) and not isinstance(v, str):
            for w in v:
                _finite(w)
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            assert bool(torch.isfinite(v).all()), "a reader returned NaN or inf"


# ---- one valid input per reader: (file the fuzzer damages, call, whether it is text) ----------------------
def _kitti_label(d: Path):
    obj = KittiObject(["Car", "Pedestrian"], torch.tensor([0.0, 0.1]), torch.tensor([0, 1]), torch.tensor([0.1, -1.0]),
                      torch.tensor([[10.0, 20, 50, 60], [100, 30, 120, 90]]),
                      torch.tensor([[1.0, 0.9, 10, 4, 1.5, 1.7, 0.3], [-2, 0.8, 8, 0.6, 1.7, 0.5, 1.0]]))  # fmt: skip
    write_kitti_label(d / "label.txt", obj)
    return d / "label.txt", lambda: read_kitti_label(d / "label.txt"), True


def _kitti_calib(d: Path):
    P = "7.2e+02 0.0 6.0e+02 4.5e+01 0.0 7.2e+02 1.7e+02 -3.4e-01 0.0 0.0 1.0 2.7e-03"
    text = f"P0: {P}\nP1: {P}\nP2: {P}\nP3: {P}\nR0_rect: 1 0 0 0 1 0 0 0 1\n"
    text += "Tr_velo_to_cam: 0 -1 0 0 0 0 -1 -0.08 1 0 0 -0.27\nTr_imu_to_velo: 1 0 0 -0.8 0 1 0 0.3 0 0 1 -0.9\n"
    (d / "calib.txt").write_text(text)
    return d / "calib.txt", lambda: read_kitti_calib(d / "calib.txt"), True


def _velodyne(d: Path):
    pts = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    (d / "scan.bin").write_bytes(pts.tobytes())
    return d / "scan.bin", lambda: read_kitti_velodyne(d / "scan.bin"), False


def _depth_png(d: Path):
    (d / "depth.png").write_bytes(_png((np.arange(12 * 16).reshape(12, 16) * 256).astype(np.uint16)))
    return d / "depth.png", lambda: read_kitti_depth_png(d / "depth.png"), False


def _rgb(d: Path):
    (d / "img.jpg").write_bytes(_png(np.random.default_rng(1).integers(0, 255, (12, 16, 3), dtype=np.uint8), "JPEG"))
    return d / "img.jpg", lambda: read_rgb(d / "img.jpg"), False


def _binvox(d: Path):
    grid = VoxelGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (8, 8, 8))
    write_binvox(d / "a.binvox", torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5, grid)
    return d / "a.binvox", lambda: read_binvox(d / "a.binvox"), False


def _kitti_raw(d: Path):
    K = make_intrinsics(20.0, 20.0, 7.5, 5.5, dtype=torch.float64)
    write_kitti_raw(d / "raw", "2026_01_01", "2026_01_01_drive_0000_sync", torch.rand(3, 3, 12, 16), K,
                    depth=torch.rand(3, 1, 12, 16) * 50)  # fmt: skip
    calib = d / "raw" / "2026_01_01" / "calib_cam_to_cam.txt"

    def call():
        read_kitti_cam_to_cam(calib)
        return read_kitti_raw(d / "raw")

    return calib, call, True


def _transforms(d: Path):
    (d / "images").mkdir()
    frames = []
    for i in range(2):
        (d / "images" / f"{i}.png").write_bytes(_png(np.zeros((12, 16, 3), np.uint8)))
        m = np.eye(4)
        m[:3, 3] = [i, 0.5, 2.0]
        frames.append({"file_path": f"images/{i}.png", "transform_matrix": m.tolist()})
    meta = {"camera_angle_x": 0.69, "w": 16, "h": 12, "k1": 0.01, "frames": frames}
    (d / "transforms.json").write_text(json.dumps(meta, indent=1))
    return d / "transforms.json", lambda: read_transforms_json(d / "transforms.json"), True


def _h36m_cameras(d: Path):
    cams = [{"subject": "S9", "id": "54138969", "R": np.eye(3).tolist(), "T": [0.1, 0.2, -4.0], "f": [1145.0, 1144.0],
             "c": [512.0, 515.0], "k": [-0.2, 0.2, -0.005], "p": [-0.0009, -0.0004]}]  # fmt: skip
    (d / "cameras.json").write_text(json.dumps({"cameras": cams}, indent=1))
    rng = np.random.default_rng(2)
    part = np.concatenate([rng.uniform(0, 1000, (2, 17, 2)), np.ones((2, 17, 1))], -1)
    S = np.concatenate([rng.normal(0, 0.5, (2, 17, 3)) + [0, 0, 5], np.ones((2, 17, 1))], -1)
    names = np.array(["S9_Directions_1.54138969_000001.jpg", "S9_Directions_1.54138969_000002.jpg"])
    np.savez(d / "h36m.npz", imgname=names, part=part, S=S)
    return d / "cameras.json", lambda: read_h36m(d / "h36m.npz", d / "cameras.json"), True


def _h36m_npz(d: Path):
    _h36m_cameras(d)
    return d / "h36m.npz", lambda: read_h36m(d / "h36m.npz", d / "cameras.json"), False


def _colmap(d: Path):
    (d / "cameras.txt").write_text(
        "# cameras\n1 PINHOLE 640 480 500 510 320 240\n2 SIMPLE_RADIAL 320 240 300 160 120 0.01\n"
    )
    (d / "images.txt").write_text(
        "1 0.9238795 0 0.3826834 0 0.1 0.2 0.3 1 a.png\n10.0 20.0 -1\n2 1 0 0 0 -0.5 0 2 2 b.png\n\n"
    )
    (d / "points3D.txt").write_text("1 0.5 0.2 3.0 255 0 0 0.1 1 0\n")
    return d / "images.txt", lambda: read_colmap_text(d), True


def _colmap_cameras(d: Path):
    _colmap(d)
    return d / "cameras.txt", lambda: read_colmap_text(d), True


def _realestate(d: Path):
    rows = ["https://example.org/v"]
    for i in range(2):
        rows.append(f"{1000 * i} 0.5 0.9 0.5 0.5 0 0 1 0 0 {i} 0 1 0 0.5 0 0 1 2")
    (d / "clip.txt").write_text("\n".join(rows) + "\n")
    return d / "clip.txt", lambda: read_realestate10k(d / "clip.txt"), True


def _intrinsics_json(d: Path):
    meta = {"K": [[1156.4, 0.0, 671.3], [0.0, 1151.2, 389.2], [0.0, 0.0, 1.0]], "width": 1280, "height": 720,
            "dist_opencv_k1k2p1p2k3": [-0.246, -0.025, -0.0006, 0.0001, 0.0106]}  # fmt: skip
    (d / "K.json").write_text(json.dumps(meta, indent=1))
    return d / "K.json", lambda: read_intrinsics(d / "K.json").for_image(640, 360), True


def _ply(d: Path):
    rng = np.random.default_rng(3)
    write_ply(d / "a.ply", rng.normal(size=(20, 3)).astype(np.float32), rng.integers(0, 255, (20, 3), dtype=np.uint8))
    return d / "a.ply", lambda: read_ply(d / "a.ply"), False


def _keypoints_json(d: Path):
    from unrender.methods.energy.pose.predict import read_keypoints

    j2d = (np.random.default_rng(4).normal(0, 40, (2, 17, 2)) + 500).round(2).tolist()
    (d / "kp.json").write_text(json.dumps({"K": [[1145.0, 0, 512.0], [0, 1144.0, 515.0], [0, 0, 1]], "joints_2d": j2d}))
    return d / "kp.json", lambda: read_keypoints(d / "kp.json"), True


READERS: dict[str, Callable[[Path], tuple[Path, Callable[[], object], bool]]] = {
    "kitti_label": _kitti_label,
    "kitti_calib": _kitti_calib,
    "kitti_velodyne": _velodyne,
    "kitti_depth_png": _depth_png,
    "rgb": _rgb,
    "binvox": _binvox,
    "kitti_raw": _kitti_raw,
    "transforms_json": _transforms,
    "h36m_cameras": _h36m_cameras,
    "h36m_npz": _h36m_npz,
    "colmap_images": _colmap,
    "colmap_cameras": _colmap_cameras,
    "realestate10k": _realestate,
    "intrinsics_json": _intrinsics_json,
    "ply": _ply,
    "keypoints_json": _keypoints_json,
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_damaged_files_raise_only_format_error(name, tmp_path):
    target, call, text = READERS[name](tmp_path)
    _finite(call())  # the undamaged file reads
    original = target.read_bytes()

    @FUZZ
    @given(data=mutated(original, text))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = call()
            except FormatError:
                return
        _finite(out)

    check()


def test_damaged_synthetic_samples_raise_only_dataset_error(tmp_path):
    root = write_dataset(SynthConfig(kind="objects", num=1, views=1, height=8, width=8), tmp_path / "ds",
                         workers=1, progress=False)  # fmt: skip
    target = root / "samples" / "000000.npz"
    original = target.read_bytes()
    SynthDataset(root)[0]

    @FUZZ
    @given(data=mutated(original, False))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        try:
            SynthDataset(root)[0]
        except DatasetError:
            pass

    check()
