"""Oriented 3D boxes ``(cx, cy, cz, sx, sy, sz, yaw)`` in a y-down (KITTI camera) frame.

``(cx, cy, cz)`` is the box centre, ``sx`` its length along its own x axis,
``sy`` its height (along y, which is gravity) and ``sz`` its width along its own
z axis; ``yaw`` rotates the box about y with KITTI's ``rotation_y`` sign (see
:func:`~unrender.geometry.rotations.yaw_matrix`). World point of a box-frame
point ``p``: ``yaw_matrix(yaw) @ p + centre``.

Corner order (box frame, y points down so the bottom face has ``y = +sy/2``)::

          4 -------- 5          top face    (y = -sy/2)
         /|         /|
        7 -------- 6 |          x: 0->3 is -x (front face 0,1,5,4 is at +x)
        | 0 -------|-1          z: 1->0 is +z
        |/         |/
        3 -------- 2            bottom face (y = +sy/2)

    0 = (+x, +y, +z)   1 = (+x, +y, -z)   2 = (-x, +y, -z)   3 = (-x, +y, +z)
    4..7 = 0..3 with y = -sy/2   (all coordinates are half-sizes)

So corners 0-3 are the bottom face (the one on the ground) and ``k + 4`` is
straight above ``k``.
"""

from __future__ import annotations

import torch

from .checks import check_args, check_shape
from .poses import make_rigid
from .rotations import yaw_matrix

__all__ = [
    "BOX_EDGES",
    "box_corners",
    "box_volume",
    "bev_polygons",
    "box_iou_bev",
    "box_iou_3d",
    "nms_boxes",
    "boxes_from_kitti",
    "boxes_to_kitti",
    "points_in_boxes",
    "box_pose",
    "boxes_at_poses",
]

_CORNER_SIGNS = (
    (1, 1, 1), (1, 1, -1), (-1, 1, -1), (-1, 1, 1),
    (1, -1, 1), (1, -1, -1), (-1, -1, -1), (-1, -1, 1),
)  # fmt: skip


# The 12 edges as pairs of corner indices: bottom face, top face, then the verticals.
BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """The 8 corners of oriented boxes, in the order drawn in the module docstring.

    Args:
        boxes: ``(..., 7)``.

    Returns:
        ``(..., 8, 3)``.

    Example:
        >>> box_corners(torch.tensor([0.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.0]))[[0, 6]]
        tensor([[ 2.,  1.,  1.],
                [-2., -1., -1.]])
    """
    check_shape(boxes, "boxes", (7,))
    signs = torch.tensor(_CORNER_SIGNS, dtype=boxes.dtype, device=boxes.device)  # (8, 3)
    local = 0.5 * signs * boxes[..., None, 3:6]  # (..., 8, 3)
    R = yaw_matrix(boxes[..., 6])
    return local @ R.transpose(-1, -2) + boxes[..., None, :3]


def box_volume(boxes: torch.Tensor) -> torch.Tensor:
    """Volume ``sx * sy * sz`` of boxes ``(..., 7)`` -> ``(...)`` (negative sizes count as 0).

    Example:
        >>> box_volume(torch.tensor([0.0, 0.0, 0.0, 4.0, 2.0, 2.0, 0.3]))
        tensor(16.)
    """
    check_shape(boxes, "boxes", (7,))
    return boxes[..., 3:6].clamp(min=0).prod(-1)


def bev_polygons(boxes: torch.Tensor) -> torch.Tensor:
    """Bird's-eye-view footprints: the ``(x, z)`` of the bottom-face corners 0-3, in that order.

    Args:
        boxes: ``(..., 7)``.

    Returns:
        ``(..., 4, 2)``.

    Example:
        >>> bev_polygons(torch.tensor([0.0, 0.0, 0.0, 2.0, 1.0, 2.0, 0.0]))
        tensor([[ 1.,  1.],
                [ 1., -1.],
                [-1., -1.],
                [-1.,  1.]])
    """
    return box_corners(boxes)[..., :4, :][..., [0, 2]]


def _cross2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _inside_convex(points: torch.Tensor, poly: torch.Tensor, eps: float) -> torch.Tensor:
    """points ``(..., P, 2)`` inside convex polygons ``(..., 4, 2)`` (either orientation)."""
    edges = poly.roll(-1, dims=-2) - poly  # (..., 4, 2)
    rel = points[..., :, None, :] - poly[..., None, :, :]  # (..., P, 4, 2)
    c = _cross2(edges[..., None, :, :].expand_as(rel), rel)  # (..., P, 4)
    return (c >= -eps).all(-1) | (c <= eps).all(-1)


def _polygon_intersection_area(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact area of the intersection of convex quadrilaterals ``p, q`` ``(..., 4, 2)``.

    The intersection of two convex polygons is the convex hull of the vertices
    of each inside the other and of their edges' crossing points; those points
    are ordered by angle around their mean and summed with the shoelace formula.
    """
    scale = torch.maximum(p.abs().amax((-1, -2)), q.abs().amax((-1, -2))).clamp(min=1.0)
    eps = 1e-6 * scale[..., None, None] ** 2  # tolerance for the inside tests
    p_in_q = _inside_convex(p, q, eps)
    q_in_p = _inside_convex(q, p, eps)
    # edge crossings: p_i + t r_i = q_j + s e_j
    r = p.roll(-1, dims=-2) - p
    e = q.roll(-1, dims=-2) - q
    r_, e_ = r[..., :, None, :], e[..., None, :, :]
    pq = q[..., None, :, :] - p[..., :, None, :]  # (..., 4, 4, 2)
    den = _cross2(r_.expand_as(pq), e_.expand_as(pq))
    ok_den = den.abs() > 1e-12 * scale[..., None, None] ** 2
    den_s = torch.where(ok_den, den, torch.ones_like(den))
    t = _cross2(pq, e_.expand_as(pq)) / den_s
    s = _cross2(pq, r_.expand_as(pq)) / den_s
    hit = ok_den & (t >= 0) & (t <= 1) & (s >= 0) & (s <= 1)
    xpts = p[..., :, None, :] + t[..., None] * r_  # (..., 4, 4, 2)
    pts = torch.cat([p, q, xpts.flatten(-3, -2)], dim=-2)  # (..., 24, 2)
    valid = torch.cat([p_in_q, q_in_p, hit.flatten(-2)], dim=-1)  # (..., 24)
    n = valid.sum(-1, keepdim=True)
    w = valid.to(pts.dtype)
    center = (pts * w[..., None]).sum(-2) / n.clamp(min=1).to(pts.dtype)
    rel = pts - center[..., None, :]
    ang = torch.atan2(rel[..., 1], rel[..., 0]).detach()
    ang = torch.where(valid, ang, torch.full_like(ang, 10.0))  # invalid points sort last
    order = ang.argsort(dim=-1)
    rel = rel.gather(-2, order[..., None].expand_as(rel))
    valid = valid.gather(-1, order)
    rel = torch.where(valid[..., None], rel, rel[..., :1, :].expand_as(rel))  # pad with the first point
    area = 0.5 * _cross2(rel, rel.roll(-1, dims=-2)).sum(-1)
    return torch.where(n[..., 0] >= 3, area.abs(), torch.zeros_like(area))


def _pairwise(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_args(("boxes1", boxes1, (None, 7)), ("boxes2", boxes2, (None, 7)))
    return boxes1[..., :, None, :], boxes2[..., None, :, :]


def _bev_intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _polygon_intersection_area(*torch.broadcast_tensors(bev_polygons(a), bev_polygons(b)))


def _iou(inter: torch.Tensor, size1: torch.Tensor, size2: torch.Tensor) -> torch.Tensor:
    union = size1 + size2 - inter
    ok = union > 0
    return torch.where(ok, inter / torch.where(ok, union, torch.ones_like(union)), torch.zeros_like(union))


def box_iou_bev(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Exact pairwise bird's-eye-view IoU (footprints in the ``(x, z)`` plane) of oriented boxes.

    Boxes of zero footprint have IoU 0 with everything (also with themselves).

    Args:
        boxes1: ``(..., N, 7)``.
        boxes2: ``(..., M, 7)``.

    Returns:
        ``(..., N, M)``.

    Example:
        >>> a = torch.tensor([[0.0, 0.0, 0.0, 2.0, 1.0, 2.0, 0.0]])
        >>> b = torch.tensor([[1.0, 5.0, 0.0, 2.0, 1.0, 2.0, 0.0]])
        >>> box_iou_bev(a, b)
        tensor([[0.3333]])
    """
    a, b = _pairwise(boxes1, boxes2)
    inter = _bev_intersection(a, b)
    area_a = a[..., 3].clamp(min=0) * a[..., 5].clamp(min=0)
    area_b = b[..., 3].clamp(min=0) * b[..., 5].clamp(min=0)
    return _iou(inter, area_a, area_b)


def box_iou_3d(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Exact pairwise 3D IoU of yaw-rotated boxes: BEV intersection area x overlap along y.

    Boxes of zero volume have IoU 0 with everything.

    Args:
        boxes1: ``(..., N, 7)``.
        boxes2: ``(..., M, 7)``.

    Returns:
        ``(..., N, M)``.

    Example:
        >>> a = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
        >>> b = torch.tensor([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
        >>> box_iou_3d(a, b)
        tensor([[0.1429]])
    """
    a, b = _pairwise(boxes1, boxes2)
    inter_bev = _bev_intersection(a, b)
    top = torch.maximum(a[..., 1] - a[..., 4] / 2, b[..., 1] - b[..., 4] / 2)
    bottom = torch.minimum(a[..., 1] + a[..., 4] / 2, b[..., 1] + b[..., 4] / 2)
    inter = inter_bev * (bottom - top).clamp(min=0)
    return _iou(inter, box_volume(a), box_volume(b))


def nms_boxes(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, *, bev: bool = True) -> torch.Tensor:
    """Greedy non-maximum suppression of oriented boxes.

    Boxes are visited by decreasing score; a box is kept unless its IoU with an
    already kept box exceeds ``iou_threshold``.

    Args:
        boxes: ``(N, 7)``.
        scores: ``(N,)``.
        iou_threshold: suppression threshold.
        bev: use bird's-eye-view IoU (default) or 3D IoU.

    Returns:
        ``(K,)`` long indices of the kept boxes, by decreasing score.

    Example:
        >>> b = torch.tensor([[0.0, 0, 0, 2, 1, 2, 0], [0.1, 0, 0, 2, 1, 2, 0], [5.0, 0, 0, 2, 1, 2, 0]])
        >>> nms_boxes(b, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        tensor([0, 2])
    """
    check_shape(boxes, "boxes", ("N", 7), max_batch=0)
    check_shape(scores, "scores", ("N",), sizes={"N": boxes.shape[0]}, max_batch=0)
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    with torch.no_grad():
        iou = (box_iou_bev if bev else box_iou_3d)(boxes[order], boxes[order]).cpu()
    keep: list[int] = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, device=order.device)]


def boxes_from_kitti(hwl: torch.Tensor, xyz: torch.Tensor, rotation_y: torch.Tensor) -> torch.Tensor:
    """Boxes from KITTI ``label_2`` fields (bottom-centre location in the rectified camera frame).

    Args:
        hwl: ``(..., 3)`` height, width, length in metres.
        xyz: ``(..., 3)`` bottom centre.
        rotation_y: ``(...)``.

    Returns:
        ``(..., 7)``: ``(x, y - h/2, z, l, h, w, rotation_y)``.

    Example:
        >>> boxes_from_kitti(torch.tensor([1.5, 1.6, 3.9]), torch.tensor([1.0, 1.7, 10.0]), torch.tensor(0.1))
        tensor([ 1.0000,  0.9500, 10.0000,  3.9000,  1.5000,  1.6000,  0.1000])
    """
    check_shape(hwl, "hwl", (3,))
    check_shape(xyz, "xyz", (3,))
    h, w, l = hwl.unbind(-1)
    x, y, z = xyz.unbind(-1)
    return torch.stack([x, y - h / 2, z, l, h, w, rotation_y.to(hwl.dtype).expand_as(h)], dim=-1)


def boxes_to_kitti(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`boxes_from_kitti`: ``(hwl (..., 3), xyz (..., 3), rotation_y (...))``.

    Example:
        >>> hwl, xyz, ry = boxes_to_kitti(torch.tensor([1.0, 0.95, 10.0, 3.9, 1.5, 1.6, 0.1]))
        >>> xyz
        tensor([ 1.0000,  1.7000, 10.0000])
    """
    check_shape(boxes, "boxes", (7,))
    x, y, z, l, h, w, ry = boxes.unbind(-1)
    return torch.stack([h, w, l], -1), torch.stack([x, y + h / 2, z], -1), ry


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor, *, grow: float = 0.0) -> torch.Tensor:
    """Bool ``(M, Q)``: point ``q`` lies in box ``m`` (each box's sizes grown by ``grow`` metres on every side).

    Args:
        points: ``(Q, 3)``; boxes: ``(M, 7)`` in the same frame.

    Example:
        >>> b = torch.tensor([[0.0, 0.0, 0.0, 2.0, 1.0, 1.0, 0.0]])
        >>> points_in_boxes(torch.tensor([[0.9, 0.0, 0.0], [1.2, 0.0, 0.0]]), b).tolist()
        [[True, False]]
    """
    check_args(("points", points, ("Q", 3)), ("boxes", boxes, ("M", 7)))
    R = yaw_matrix(boxes[:, 6].to(points.dtype))  # (M, 3, 3) world_from_box
    local = torch.einsum("mji,mqj->mqi", R, points[None] - boxes[:, None, :3].to(points.dtype))
    half = boxes[:, None, 3:6].to(points.dtype) / 2 + grow
    return (local.abs() <= half).all(-1)


def box_pose(box: torch.Tensor) -> torch.Tensor:
    """``frame_from_box (..., 4, 4)`` of boxes ``(..., 7)``: the box's own frame (origin at its centre, turned by
    its yaw about y) in the frame the boxes are given in.

    Example:
        >>> box_pose(torch.tensor([1.0, 2.0, 3.0, 4.0, 1.5, 2.0, 0.0]))[:3, 3].tolist()
        [1.0, 2.0, 3.0]
    """
    return make_rigid(yaw_matrix(box[..., 6]), box[..., :3])


def boxes_at_poses(box: torch.Tensor, grid_from_obj: torch.Tensor) -> torch.Tensor:
    """The box ``(7,)`` (sizes kept) at poses ``(n, 4, 4)`` that turn only about y: ``(n, 7)``; the inverse of
    :func:`box_pose` for such poses.

    Example:
        >>> box = torch.tensor([1.0, -0.75, 5.0, 4.0, 1.5, 2.0, 0.3])
        >>> torch.allclose(boxes_at_poses(box, box_pose(box)[None])[0], box)
        True
    """
    yaw = torch.atan2(grid_from_obj[:, 0, 2], grid_from_obj[:, 0, 0])
    return torch.cat([grid_from_obj[:, :3, 3], box[3:6].expand(len(yaw), 3), yaw[:, None]], 1)
