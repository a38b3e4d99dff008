import math

import pytest
import torch
from _util import BATCHES, gen

from unrender.geometry import (
    bev_polygons,
    box_corners,
    box_iou_3d,
    box_iou_bev,
    box_volume,
    boxes_from_kitti,
    boxes_to_kitti,
    nms_boxes,
    yaw_matrix,
)

F64 = torch.float64


def rand_boxes(n, seed=0, dtype=F64, spread=1.5):
    g = gen(seed)
    c = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread
    s = 0.5 + 2 * torch.rand(n, 3, generator=g, dtype=dtype)
    yaw = (torch.rand(n, 1, generator=g, dtype=dtype) - 0.5) * 2 * math.pi
    return torch.cat([c, s, yaw], -1)


def inside_box(points, box):
    local = (points - box[:3]) @ yaw_matrix(box[6])  # R^T (p - c)
    return (local.abs() <= box[3:6] / 2).all(-1)


@pytest.mark.parametrize("batch", BATCHES)
def test_corners_and_kitti_round_trip(batch):
    b = rand_boxes(max(1, math.prod(batch)), seed=1).reshape(*batch, 7)
    c = box_corners(b)
    assert c.shape == (*batch, 8, 3)
    torch.testing.assert_close(c.mean(-2), b[..., :3])
    hwl, xyz, ry = boxes_to_kitti(b)
    torch.testing.assert_close(boxes_from_kitti(hwl, xyz, ry), b)
    assert box_volume(b).shape == batch
    assert bev_polygons(b).shape == (*batch, 4, 2)


def test_convention_corner_order_and_bottom_face():
    # y is down: corners 0-3 are the bottom face (larger y); 0-1 on the +x (front) face; 0 at +z.
    b = torch.tensor([1.0, 2.0, 3.0, 4.0, 2.0, 1.0, 0.0])
    c = box_corners(b)
    assert (c[:4, 1] == 3.0).all() and (c[4:, 1] == 1.0).all()
    torch.testing.assert_close(c[0], torch.tensor([3.0, 3.0, 3.5]))
    torch.testing.assert_close(c[1], torch.tensor([3.0, 3.0, 2.5]))
    torch.testing.assert_close(c[4:, [0, 2]], c[:4, [0, 2]])
    # with yaw = -pi/2 the length (x) axis points along +z
    c = box_corners(torch.tensor([0.0, 0.0, 0.0, 4.0, 2.0, 1.0, -math.pi / 2]))
    assert c[:, 2].max() == pytest.approx(2.0) and c[:, 0].max() == pytest.approx(0.5)


def test_kitti_bottom_centre():
    # KITTI's location is the bottom centre: the box centre sits h/2 above it (smaller y)
    b = boxes_from_kitti(torch.tensor([1.5, 1.6, 3.9]), torch.tensor([1.0, 1.7, 10.0]), torch.tensor(0.3))
    assert box_corners(b)[:4, 1].max().item() == pytest.approx(1.7)


def monte_carlo_iou(a, b, n=400_000, seed=0):
    g = gen(seed)
    ca, cb = box_corners(a), box_corners(b)
    lo = torch.minimum(ca.amin(0), cb.amin(0))
    hi = torch.maximum(ca.amax(0), cb.amax(0))
    p = lo + (hi - lo) * torch.rand(n, 3, generator=g, dtype=a.dtype)
    ia, ib = inside_box(p, a), inside_box(p, b)
    union = (ia | ib).sum()
    return ((ia & ib).sum() / union).item() if union > 0 else 0.0


def test_iou_3d_agrees_with_monte_carlo():
    A, B = rand_boxes(12, seed=3), rand_boxes(12, seed=4)
    B[:6, :3] = A[:6, :3] + 0.3 * torch.randn(6, 3, generator=gen(5), dtype=F64)  # make sure overlaps occur
    exact = box_iou_3d(A, B)
    hits = 0
    for i in range(12):
        mc = monte_carlo_iou(A[i], B[i], seed=i)
        assert abs(exact[i, i].item() - mc) < 0.01, (i, exact[i, i].item(), mc)
        hits += mc > 0.05
    assert hits >= 5


def test_iou_bev_agrees_with_monte_carlo():
    A, B = rand_boxes(8, seed=6), rand_boxes(8, seed=7)
    B[:, 1] = A[:, 1]
    B[:, 4] = A[:, 4]  # same vertical extent: 3D IoU of the extruded footprints equals... BEV IoU
    B[:4, [0, 2]] = A[:4, [0, 2]] + 0.2
    for i in range(8):
        mc = monte_carlo_iou(A[i], B[i], seed=10 + i)
        bev = box_iou_bev(A[i : i + 1], B[i : i + 1])[0, 0].item()
        if A[i, 4] == B[i, 4]:
            assert abs(bev - mc) < 0.01


def test_iou_special_cases():
    a = rand_boxes(5, seed=8)
    torch.testing.assert_close(box_iou_3d(a, a).diagonal(), torch.ones(5, dtype=F64))
    torch.testing.assert_close(box_iou_bev(a, a).diagonal(), torch.ones(5, dtype=F64))
    far = a.clone()
    far[:, 0] += 100
    assert (box_iou_3d(a, far) == 0).all()
    # a square footprint rotated by 90 degrees about its centre is the same box
    sq = torch.tensor([[0.0, 0.0, 0.0, 2.0, 1.0, 2.0, 0.4]], dtype=F64)
    rot = sq.clone()
    rot[0, 6] += math.pi / 2
    torch.testing.assert_close(box_iou_3d(sq, rot), torch.ones(1, 1, dtype=F64))
    # 45 degrees: octagon, area = 8 (sqrt 2 - 1) for a 2x2 square
    rot[0, 6] = 0.4 + math.pi / 4
    inter = 8 * (math.sqrt(2) - 1)
    assert box_iou_bev(sq, rot).item() == pytest.approx(inter / (8 - inter), abs=1e-9)
    # zero-size boxes: IoU 0, never NaN, gradients finite
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    out = box_iou_3d(z, torch.cat([z, sq], 0))
    assert (out == 0).all()
    out.sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("batch", BATCHES)
def test_iou_batch_shapes(batch):
    a = rand_boxes(max(1, math.prod(batch)) * 3, seed=9).reshape(*batch, 3, 7)
    b = rand_boxes(max(1, math.prod(batch)) * 2, seed=10).reshape(*batch, 2, 7)
    assert box_iou_3d(a, b).shape == (*batch, 3, 2)
    assert box_iou_bev(a, b).shape == (*batch, 3, 2)


def test_box_gradcheck():
    b = rand_boxes(2, seed=11).requires_grad_(True)
    assert torch.autograd.gradcheck(box_corners, (b,))
    assert torch.autograd.gradcheck(box_volume, (b,))
    a = torch.tensor([[0.0, 0.0, 0.0, 2.0, 1.5, 1.0, 0.3]], dtype=F64, requires_grad=True)
    c = torch.tensor([[0.4, 0.2, 0.3, 1.8, 1.2, 1.4, -0.5]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(box_iou_3d, (a, c))
    assert torch.autograd.gradcheck(box_iou_bev, (a, c))
    hwl, xyz = torch.rand(2, 3, dtype=F64, requires_grad=True), torch.rand(2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, x: boxes_from_kitti(h, x, torch.zeros(2, dtype=F64)), (hwl, xyz))
    assert torch.autograd.gradcheck(lambda x: boxes_to_kitti(x)[1], (b,))


def test_nms():
    base = torch.tensor([0.0, 0.0, 10.0, 4.0, 1.5, 1.8, 0.0])
    boxes = torch.stack(
        [base, base + torch.tensor([0.2, 0, 0, 0, 0, 0, 0.05]), base + torch.tensor([6.0, 0, 0, 0, 0, 0, 0])]
    )
    scores = torch.tensor([0.5, 0.9, 0.7])
    assert nms_boxes(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms_boxes(boxes, scores, 0.99).tolist() == [1, 2, 0]
    assert nms_boxes(boxes, scores, 0.5, bev=False).tolist() == [1, 2]
    assert nms_boxes(boxes[:0], scores[:0], 0.5).numel() == 0


def test_box_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"boxes: expected shape \(\.\.\., 7\), got \(3, 6\)"):
        box_corners(torch.zeros(3, 6))
    with pytest.raises(ValueError, match=r"scores: expected shape \(\.\.\., N\) with 0\.\.0 leading dims where N=3"):
        nms_boxes(torch.zeros(3, 7), torch.zeros(2), 0.5)
