import math

import kornia.geometry.conversions as KC
import pytest
import torch
from _util import BATCHES, gen, rand_rot

from unrender.geometry import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    skew,
    so3_exp,
    so3_log,
    yaw_matrix,
)


def rand_aa(batch, dtype=torch.float64, seed=0, max_angle=3.0):
    g = gen(seed)
    axis = torch.randn(*batch, 3, generator=g, dtype=dtype)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    return axis * torch.rand(*batch, 1, generator=g, dtype=dtype) * max_angle


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips(batch, dtype):
    R = rand_rot(batch, dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert quaternion_to_matrix(matrix_to_quaternion(R)).shape == (*batch, 3, 3)
    torch.testing.assert_close(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=tol, rtol=0)
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=tol, rtol=0)
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=tol, rtol=0)
    torch.testing.assert_close(so3_exp(so3_log(R)), R, atol=tol, rtol=0)
    aa = rand_aa(batch, dtype)
    torch.testing.assert_close(quaternion_to_axis_angle(axis_angle_to_quaternion(aa)), aa, atol=tol, rtol=0)
    torch.testing.assert_close(
        quaternion_to_matrix(axis_angle_to_quaternion(aa)), axis_angle_to_matrix(aa), atol=tol, rtol=0
    )
    assert skew(aa).shape == (*batch, 3, 3)
    assert yaw_matrix(aa[..., 0]).shape == (*batch, 3, 3)


def test_outputs_are_rotations():
    R = rotation_6d_to_matrix(torch.randn(50, 6, dtype=torch.float64))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3))
    assert torch.allclose(torch.linalg.det(R), torch.ones(50, dtype=torch.float64))
    q = matrix_to_quaternion(rand_rot((50,)))
    assert (q[:, 0] >= 0).all()
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(50, dtype=torch.float64))


def test_agrees_with_kornia():
    R = rand_rot((64,), torch.float32, seed=3)
    q = matrix_to_quaternion(R)
    qk = KC.rotation_matrix_to_quaternion(R)
    qk = qk * torch.sign(qk[:, :1])
    torch.testing.assert_close(q, qk, atol=1e-5, rtol=0)
    torch.testing.assert_close(quaternion_to_matrix(q), KC.quaternion_to_rotation_matrix(q), atol=1e-5, rtol=0)
    aa = rand_aa((64,), torch.float32, seed=4)
    torch.testing.assert_close(axis_angle_to_matrix(aa), KC.axis_angle_to_rotation_matrix(aa), atol=1e-5, rtol=0)
    torch.testing.assert_close(matrix_to_axis_angle(R), KC.rotation_matrix_to_axis_angle(R), atol=1e-5, rtol=0)
    torch.testing.assert_close(axis_angle_to_quaternion(aa), KC.axis_angle_to_quaternion(aa), atol=1e-5, rtol=0)
    torch.testing.assert_close(quaternion_to_axis_angle(q), KC.quaternion_to_axis_angle(q), atol=1e-5, rtol=0)
    v = torch.randn(10, 3)
    torch.testing.assert_close(skew(v), KC.vector_to_skew_symmetric_matrix(v))


@pytest.mark.parametrize(
    "fn, make",
    [
        (quaternion_to_matrix, lambda: torch.randn(2, 4, dtype=torch.float64)),
        (matrix_to_quaternion, lambda: rand_rot((2,), max_angle=3.0)),
        (axis_angle_to_matrix, lambda: rand_aa((2,))),
        (matrix_to_axis_angle, lambda: rand_rot((2,), max_angle=3.0)),
        (axis_angle_to_quaternion, lambda: rand_aa((2,))),
        (quaternion_to_axis_angle, lambda: torch.randn(2, 4, dtype=torch.float64)),
        (rotation_6d_to_matrix, lambda: torch.randn(2, 6, dtype=torch.float64)),
        (matrix_to_rotation_6d, lambda: rand_rot((2,))),
        (yaw_matrix, lambda: torch.randn(2, dtype=torch.float64)),
        (skew, lambda: torch.randn(2, 3, dtype=torch.float64)),
    ],
)
def test_gradcheck(fn, make):
    x = make().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x,))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, math.pi - 1e-6, math.pi])
def test_degenerate_angles_finite(angle):
    aa = torch.tensor([0.3, -0.4, 0.866], dtype=torch.float64)
    aa = (aa / aa.norm() * angle).requires_grad_(True)
    R = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(R)
    assert torch.isfinite(R).all() and torch.isfinite(back).all()
    if angle < math.pi - 1e-3:
        torch.testing.assert_close(back, aa.detach(), atol=1e-8, rtol=0)
    else:  # at pi the axis sign is ambiguous
        torch.testing.assert_close(axis_angle_to_matrix(back), R.detach(), atol=1e-6, rtol=0)
    (R.sum() + back.sum()).backward()
    assert torch.isfinite(aa.grad).all()


def test_zero_quaternion_is_identity():
    torch.testing.assert_close(quaternion_to_matrix(torch.zeros(4)), torch.eye(3))
    assert torch.isfinite(quaternion_to_axis_angle(torch.zeros(4))).all()


def test_convention_quaternion_is_scalar_first():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45). Scalar-last would read it as ~180 deg about x.
    q = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    torch.testing.assert_close(quaternion_to_matrix(q) @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))


def test_convention_rotation_is_active_not_transposed():
    # A positive rotation about z maps x to +y (right-handed, column vectors); the transpose maps it to -y.
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    torch.testing.assert_close(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_convention_yaw_sign_is_kitti():
    # KITTI: rotation_y = -pi/2 means the object's x (length) axis points along +z, away from the camera.
    R = yaw_matrix(torch.tensor(-math.pi / 2))
    torch.testing.assert_close(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_6d_uses_columns():
    R = rand_rot((), torch.float64)
    torch.testing.assert_close(matrix_to_rotation_6d(R)[:3], R[:, 0])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"R: expected shape \(\.\.\., 3, 3\), got \(3, 4\)"):
        matrix_to_quaternion(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"q: expected shape \(\.\.\., 4\), got \(3,\)"):
        quaternion_to_matrix(torch.zeros(3))
    with pytest.raises(ValueError, match="floating-point"):
        axis_angle_to_matrix(torch.zeros(3, dtype=torch.long))
