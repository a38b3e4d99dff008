import json

import numpy as np
import torch
from _util import rand_rigid

from unrender.data.formats import (
    cam_from_world_from_colmap,
    cam_from_world_from_opengl,
    kitti_cam_from_velo,
    opengl_from_cam_from_world,
    read_kitti_calib,
)
from unrender.geometry import (
    invert_rigid,
    make_intrinsics,
    matrix_to_quaternion,
    project_points,
    transform_points,
)


def test_kitti_velodyne_projection_matches_devkit_formula(shared_data):
    root = shared_data / "kitti_object"
    calib = read_kitti_calib(root / "calib" / "000000.txt")
    pts = torch.from_numpy(
        np.fromfile(root / "velodyne" / "000000.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    ).double()
    pts = pts[pts[:, 0] > 5][:2000]  # in front of the car
    cam = transform_points(kitti_cam_from_velo(calib), pts)
    uv, z, ok = project_points(cam, calib["K"])
    # the devkit: x = P2 @ R0_rect @ Tr_velo_to_cam @ [X; 1]
    R0 = torch.eye(4, dtype=torch.float64)
    R0[:3, :3] = calib["R0_rect"]
    hom = (
        calib["P2"] @ R0 @ calib["Tr_velo_to_cam"] @ torch.cat([pts, torch.ones(len(pts), 1, dtype=pts.dtype)], 1).T
    ).T
    torch.testing.assert_close(uv[ok], (hom[:, :2] / hom[:, 2:])[ok])
    assert ok.float().mean() > 0.99
    inside = (uv[:, 0] > 0) & (uv[:, 0] < 1242) & (uv[:, 1] > 0) & (uv[:, 1] < 375)
    assert inside.float().mean() > 0.3  # a good share of the forward points land on the image


def test_nerf_fox_cameras_look_at_the_object(shared_data):
    meta = json.loads((shared_data / "nerf_fox" / "transforms.json").read_text())
    c2w = torch.tensor([f["transform_matrix"] for f in meta["frames"]], dtype=torch.float64)
    T = cam_from_world_from_opengl(c2w)
    K = make_intrinsics(meta["fl_x"], meta["fl_y"], meta["cx"], meta["cy"], dtype=torch.float64)
    centres = invert_rigid(T)[:, :3, 3]
    # the point nearest to all optical axes is the object every camera looks at
    axes = invert_rigid(T)[:, :3, 2]  # OpenCV +z (forward) in world
    A = torch.eye(3, dtype=torch.float64) - axes[:, :, None] * axes[:, None, :]
    target = torch.linalg.solve(A.sum(0), (A @ centres[:, :, None]).sum(0))[:, 0]
    uv, z, ok = project_points(transform_points(T, target[None].expand(len(T), 1, 3)), K)
    assert ok.all() and (z > 0).all()
    # it lands near the middle of every image (it would be behind the camera with OpenGL axes kept)
    assert ((uv[:, 0, 0] - meta["w"] / 2).abs() < meta["w"] / 2).all()
    assert ((uv[:, 0, 1] - meta["h"] / 2).abs() < meta["h"] / 2).all()
    torch.testing.assert_close(
        opengl_from_cam_from_world(T), c2w, atol=1e-4, rtol=0
    )  # file rotations are ~1e-6 off orthonormal


def test_colmap_is_world_to_camera():
    T = rand_rigid((3,))
    back = cam_from_world_from_colmap(matrix_to_quaternion(T[:, :3, :3]), T[:, :3, 3])
    torch.testing.assert_close(back, T)
