"""Exact ground truth sampled from the analytic scene (never from rendered depth)."""

from __future__ import annotations

import torch

from ..geometry import BOX_EDGES, VoxelGrid, box_corners, check_args, invert_rigid, project_points, transform_points
from .primitives import KINDS, inside
from .scene import Scene, class_id

__all__ = [
    "occupancy",
    "semantics_at",
    "labels_at",
    "scene_flow",
    "object_boxes",
    "boxes_in_camera",
    "boxes_2d",
    "mask_boxes",
]


def occupancy(
    scene: Scene,
    grid: VoxelGrid,
    *,
    grid_from_world: torch.Tensor | None = None,
    t: float = 0.0,
    include: tuple[str, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupancy and semantics of voxel centres by point-in-primitive tests.

    Args:
        scene: the scene.
        grid: the voxel grid, in the frame called ``grid``.
        grid_from_world: ``(4, 4)`` (default identity: the grid is in the world frame).
        t: frame.
        include: class names to count (default all); e.g. leave out ``"floor"``.

    Returns:
        occupied ``(1, Z, Y, X)`` float 0/1 and semantic ``(Z, Y, X)`` long (class id of the
        first primitive containing the centre, in scene order; 0 where empty).
    """
    pts = grid.centers(dtype=torch.float64).reshape(-1, 3)
    if grid_from_world is not None:
        check_args(("grid_from_world", grid_from_world.double(), (4, 4)))
        pts = transform_points(invert_rigid(grid_from_world.double()), pts)
    sem = semantics_at(scene, pts, t=t, include=include)
    Z, Y, X = grid.shape
    sem = sem.reshape(Z, Y, X)
    return (sem > 0).float()[None], sem


def semantics_at(
    scene: Scene, points_world: torch.Tensor, *, t: float = 0.0, include: tuple[str, ...] | None = None
) -> torch.Tensor:
    """Class id ``(Q,)`` long at world points ``(Q, 3)``: that of the first primitive (in scene order)
    containing the point, 0 where the point is in free space. ``> 0`` is the exact occupancy.

    Args:
        include: class names to count (default all).
    """
    return labels_at(scene, points_world, t=t, include=include)[0]


def labels_at(
    scene: Scene, points_world: torch.Tensor, *, t: float = 0.0, include: tuple[str, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class id and object ``(Q,)`` long at world points ``(Q, 3)``: those of the first primitive (in scene
    order) containing the point; the object is its 1-based index in ``scene.objects`` (as in instance
    images); both 0 where the point is in free space.

    Args:
        include: class names to count (default all).
    """
    check_args(("points_world", points_world, ("Q", 3)))
    pts = points_world.double()
    flat = scene.flatten(t)
    keep = None if include is None else torch.tensor([class_id(c) for c in include])
    sem = torch.zeros(len(pts), dtype=torch.long)
    obj = torch.zeros(len(pts), dtype=torch.long)
    for k, kind in enumerate(KINDS):
        sel = (flat.kind == k).nonzero()[:, 0]
        if keep is not None:
            sel = sel[torch.isin(flat.semantic[sel], keep)]
        if sel.numel() == 0:
            continue
        T = flat.part_from_world[sel]
        local = torch.einsum("pij,qj->pqi", T[:, :3, :3], pts) + T[:, None, :3, 3]
        ins = inside(kind, local, flat.size[sel])  # (P, Q)
        first = torch.where(ins.any(0), ins.float().argmax(0), -1)
        new = (first >= 0) & (sem == 0)
        sem = torch.where(new, flat.semantic[sel][first.clamp(min=0)], sem)
        obj = torch.where(new, flat.instance[sel][first.clamp(min=0)], obj)
    return sem, obj


def scene_flow(scene: Scene, points_world: torch.Tensor, t0: float, t1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the matter at world points moves between frames ``t0`` and ``t1``: each point inside an object
    at ``t0`` follows that object's rigid motion, ``world_from_object(t1) @ object_from_world(t0)``.

    Args:
        points_world: ``(Q, 3)``.

    Returns:
        ``flow (Q, 3)`` float64 world displacement (0 in free space and on static objects) and
        ``object (Q,)`` long, the 1-based object containing each point at ``t0`` (0: free space).

    Example:
        >>> from unrender.world.scene import Material, Primitive, SceneObject
        >>> car = SceneObject("car", "car", [Primitive("box", (2.0, 1.0, 1.0))], velocity=(0.5, 0.0, 0.0))
        >>> flow, obj = scene_flow(Scene([car]), torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]), 0.0, 2.0)
        >>> flow.tolist(), obj.tolist()
        ([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [1, 0])
    """
    _, obj = labels_at(scene, points_world, t=t0)
    pts = points_world.double()
    flow = torch.zeros_like(pts)
    for i in obj.unique().tolist():
        if i == 0:
            continue
        o = scene.objects[i - 1]
        if not o.moves:
            continue  # exactly 0 (the composed transforms would leave 1e-15)
        motion = o.world_from_object(t1) @ invert_rigid(o.world_from_object(t0))
        sel = obj == i
        flow[sel] = transform_points(motion, pts[sel]) - pts[sel]
    return flow, obj


def object_boxes(scene: Scene, t: float = 0.0) -> dict[str, torch.Tensor]:
    """World-frame 3D boxes of the objects with ``has_box``.

    Returns:
        ``boxes (M, 7)``, ``classes (M,)`` long, ``track_ids (M,)`` long and ``instance (M,)`` long
        (the 1-based object index used in instance images).
    """
    rows, cls, tracks, inst = [], [], [], []
    for i, obj in enumerate(scene.objects, 1):
        if obj.has_box:
            rows.append(obj.box_at(t))
            cls.append(class_id(obj.semantic))
            tracks.append(obj.track_id)
            inst.append(i)
    boxes = torch.stack(rows) if rows else torch.zeros(0, 7, dtype=torch.float64)
    return {
        "boxes": boxes,
        "classes": torch.tensor(cls, dtype=torch.long),
        "track_ids": torch.tensor(tracks, dtype=torch.long),
        "instance": torch.tensor(inst, dtype=torch.long),
    }


def boxes_in_camera(boxes_world: torch.Tensor, cam_from_world: torch.Tensor) -> torch.Tensor:
    """Express world boxes ``(M, 7)`` in a camera frame ``(4, 4)``: centre transformed, yaw turned by
    the camera's rotation about the vertical. Exact when the camera has no pitch or roll (as KITTI's
    rectified frames assume); with small pitch/roll the box stays upright in the camera frame.
    """
    check_args(("boxes_world", boxes_world, (None, 7)), ("cam_from_world", cam_from_world, (4, 4)))
    centre = transform_points(cam_from_world, boxes_world[:, :3])
    # the world x axis seen in the camera, on the camera's x-z plane, gives the yaw offset
    x_cam = cam_from_world[:3, 0]
    offset = torch.atan2(-x_cam[2], x_cam[0])
    return torch.cat([centre, boxes_world[:, 3:6], boxes_world[:, 6:] + offset], -1)


def boxes_2d(
    boxes_world: torch.Tensor, K: torch.Tensor, cam_from_world: torch.Tensor, H: int, W: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Amodal 2D boxes: the image-clipped extent of each 3D box's projected corners.

    Corners behind the camera are handled by clipping the box to ``z >= 0.1 m`` first (the
    8 corners plus the crossings of its 12 edges with that plane).

    Returns:
        ``(M, 4)`` ``x1, y1, x2, y2`` in pixel coordinates (edges: ``[-0.5, W - 0.5]``) and
        ``(M,)`` bool: some part of the box is in front of the camera and inside the image.
    """
    c = transform_points(cam_from_world, box_corners(boxes_world).reshape(-1, 3)).reshape(-1, 8, 3)
    edges = torch.tensor(BOX_EDGES)
    a, b = c[:, edges[:, 0]], c[:, edges[:, 1]]
    near = 0.1
    dz = b[..., 2] - a[..., 2]
    s = (near - a[..., 2]) / torch.where(dz.abs() < 1e-12, torch.ones_like(dz), dz)
    cross = a + s[..., None] * (b - a)
    cross_ok = (s >= 0) & (s <= 1) & (dz.abs() >= 1e-12)
    pts = torch.cat([c, cross], 1)  # (M, 20, 3)
    ok = torch.cat([c[..., 2] >= near, cross_ok], 1)
    uv, _, _ = project_points(torch.where(ok[..., None], pts, torch.ones_like(pts)), K)
    big = torch.finfo(uv.dtype).max
    lo = torch.where(ok[..., None], uv, torch.full_like(uv, big)).amin(1)
    hi = torch.where(ok[..., None], uv, torch.full_like(uv, -big)).amax(1)
    x1, y1 = lo[:, 0].clamp(-0.5, W - 0.5), lo[:, 1].clamp(-0.5, H - 0.5)
    x2, y2 = hi[:, 0].clamp(-0.5, W - 0.5), hi[:, 1].clamp(-0.5, H - 0.5)
    visible = ok.any(1) & (x2 > x1) & (y2 > y1)
    return torch.stack([x1, y1, x2, y2], -1), visible


def mask_boxes(instance: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight 2D boxes of the visible pixels of instances ``ids (M,)`` in an ``(H, W)`` instance image.

    Returns:
        ``(M, 4)`` pixel-edge boxes ``x1, y1, x2, y2`` and ``(M,)`` visible-pixel counts.
    """
    H, W = instance.shape[-2:]
    inst = instance.reshape(H, W)
    m = inst[None] == ids[:, None, None]  # (M, H, W)
    count = m.flatten(1).sum(1)
    rows, cols = m.any(2), m.any(1)
    ar_h = torch.arange(H, dtype=torch.float64)
    ar_w = torch.arange(W, dtype=torch.float64)
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    y1 = torch.where(rows, ar_h, inf).amin(1) - 0.5
    y2 = torch.where(rows, ar_h, -inf).amax(1) + 0.5
    x1 = torch.where(cols, ar_w, inf).amin(1) - 0.5
    x2 = torch.where(cols, ar_w, -inf).amax(1) + 0.5
    box = torch.stack([x1, y1, x2, y2], -1)
    return torch.where(count[:, None] > 0, box, torch.zeros_like(box)), count
