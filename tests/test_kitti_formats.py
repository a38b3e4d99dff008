import math

import pytest
import torch

from unrender.data.formats import KittiObject, read_kitti_calib, read_kitti_label, write_kitti_label
from unrender.geometry import box_corners


def test_real_kitti_boxes_project_onto_their_2d_boxes(shared_data):
    """Box centre at mid-height, yaw sign and corner layout agree with KITTI's own 2D annotations."""
    root = shared_data / "kitti_object"
    checked = 0
    for frame in ("000000", "000001", "000002"):
        lab = read_kitti_label(root / "label_2" / f"{frame}.txt")
        P2 = read_kitti_calib(root / "calib" / f"{frame}.txt")["P2"].float()
        corners = box_corners(lab.boxes)  # (N, 8, 3) in the rectified camera frame
        hom = torch.cat([corners, torch.ones_like(corners[..., :1])], -1) @ P2.T
        uv = hom[..., :2] / hom[..., 2:]
        for i in range(len(lab.types)):
            if lab.truncated[i] > 0 or lab.occluded[i] > 1 or lab.types[i] == "DontCare":
                continue
            proj = torch.cat([uv[i].amin(0), uv[i].amax(0)])
            err = (proj - lab.boxes_2d[i]).abs().max().item()
            assert err < 0.15 * (lab.boxes_2d[i, 3] - lab.boxes_2d[i, 1]).item() + 3, (frame, i, proj, lab.boxes_2d[i])
            checked += 1
    assert checked >= 3


def test_label_round_trip_and_errors(tmp_path, shared_data):
    lab = read_kitti_label(shared_data / "kitti_object" / "label_2" / "000001.txt")
    write_kitti_label(tmp_path / "x.txt", lab)
    back = read_kitti_label(tmp_path / "x.txt")
    assert back.types == lab.types
    torch.testing.assert_close(back.boxes, lab.boxes, atol=0.01, rtol=0)
    # pedestrian at (1.84, 1.47, 8.41) bottom centre, height 1.89: centre 0.945 m higher (smaller y)
    ped = read_kitti_label(shared_data / "kitti_object" / "label_2" / "000000.txt")
    assert ped.boxes[0, 1].item() == pytest.approx(1.47 - 1.89 / 2, abs=1e-5)
    calib = read_kitti_calib(shared_data / "kitti_object" / "calib" / "000000.txt")
    assert calib["K"].shape == (3, 3) and calib["cam_from_velo"].shape == (4, 4)


def test_detection_file_with_scores(tmp_path):
    obj = KittiObject(["Car"], torch.zeros(1), torch.zeros(1, dtype=torch.long), torch.zeros(1),
                      torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([[1.0, 0.5, 9, 4, 1.5, 1.7, math.pi / 3]]),
                      torch.tensor([0.75]))  # fmt: skip
    write_kitti_label(tmp_path / "d.txt", obj)
    back = read_kitti_label(tmp_path / "d.txt")
    assert back.scores.tolist() == [0.75]
    torch.testing.assert_close(back.boxes, obj.boxes, atol=0.01, rtol=0)


def test_malformed_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="label file not found"):
        read_kitti_label(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("Car 0 0 0 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected 15 or 16 fields, got 7"):
        read_kitti_label(tmp_path / "bad.txt")
    (tmp_path / "nan.txt").write_text("Car 0 0 0 1 2 3 4 1 1 1 x 1 1 0\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_kitti_label(tmp_path / "nan.txt")
    (tmp_path / "calib.txt").write_text("P0: 1 2 3\n")
    with pytest.raises(ValueError, match="P0 has 3 values, expected 12"):
        read_kitti_calib(tmp_path / "calib.txt")
