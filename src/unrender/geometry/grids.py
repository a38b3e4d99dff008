"""Voxel grids: a metric box cut into voxels, and the maps between images and volumes.

Layout: volumes are ``(..., C, Z, Y, X)``; ``grid_sample``'s last dim
``(x, y, z)`` indexes ``X, Y, Z``; the centre of voxel ``(iz, iy, ix)`` is at
``bounds_min + (i + 0.5) * voxel_size`` and normalised coordinates follow
``align_corners=False`` (``-1`` and ``+1`` are the grid's outer faces). The
grid lives in some frame called ``grid`` here (a reference camera, the world):
cameras are given as ``cam_from_grid``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .camera import pixel_centers, unproject_points, validate_intrinsics
from .checks import check_args, check_shape
from .poses import invert_rigid, transform_points, validate_rigid

__all__ = [
    "VoxelGrid",
    "unproject_to_grid",
    "carve_depth",
    "warp_volume",
    "sample_frustum",
    "connected_components",
    "boxes_from_components",
]


@dataclass(frozen=True)
class VoxelGrid:
    """An axis-aligned box ``[bounds_min, bounds_max]`` (metres, ``(x, y, z)``) cut into
    ``resolution = (X, Y, Z)`` voxels.

    Example:
        >>> g = VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 4.0), (4, 4, 8))
        >>> g.shape, g.voxel_size
        ((8, 4, 4), (0.5, 0.5, 0.5))
        >>> g.world_to_index(torch.tensor([-0.75, -0.75, 0.25]))
        tensor([0., 0., 0.])
    """

    bounds_min: tuple[float, float, float]
    bounds_max: tuple[float, float, float]
    resolution: tuple[int, int, int]

    def __post_init__(self) -> None:
        for name in ("bounds_min", "bounds_max", "resolution"):
            v = getattr(self, name)
            if len(v) != 3:
                raise ValueError(f"VoxelGrid.{name}: expected 3 values (x, y, z), got {v!r}")
        object.__setattr__(self, "bounds_min", tuple(float(v) for v in self.bounds_min))
        object.__setattr__(self, "bounds_max", tuple(float(v) for v in self.bounds_max))
        if any(int(r) != r or r <= 0 for r in self.resolution):
            raise ValueError(f"VoxelGrid.resolution: expected positive integers, got {self.resolution!r}")
        object.__setattr__(self, "resolution", tuple(int(r) for r in self.resolution))
        if any(not (hi > lo) for lo, hi in zip(self.bounds_min, self.bounds_max, strict=True)):
            raise ValueError(f"VoxelGrid: bounds_max {self.bounds_max} must exceed bounds_min {self.bounds_min}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Z, Y, X)``, the trailing dims of a volume."""
        X, Y, Z = self.resolution
        return (Z, Y, X)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Edge lengths ``(x, y, z)`` of one voxel in metres."""
        return tuple((hi - lo) / r for lo, hi, r in zip(self.bounds_min, self.bounds_max, self.resolution, strict=True))

    @property
    def num_voxels(self) -> int:
        X, Y, Z = self.resolution
        return X * Y * Z

    def _t(self, values: tuple, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device)

    def world_to_index(self, points: torch.Tensor) -> torch.Tensor:
        """Continuous voxel index ``(ix, iy, iz)`` of points ``(..., 3)``; voxel centres are integers."""
        check_shape(points, "points", (3,))
        return (points - self._t(self.bounds_min, points)) / self._t(self.voxel_size, points) - 0.5

    def index_to_world(self, index: torch.Tensor) -> torch.Tensor:
        """Points ``(..., 3)`` of continuous voxel indices ``(ix, iy, iz)``."""
        check_shape(index, "index", (3,))
        return self._t(self.bounds_min, index) + (index + 0.5) * self._t(self.voxel_size, index)

    def world_to_normalized(self, points: torch.Tensor) -> torch.Tensor:
        """``grid_sample(align_corners=False)`` coordinates ``(x, y, z)`` of points ``(..., 3)``."""
        check_shape(points, "points", (3,))
        scale, offset = self.normalization(dtype=points.dtype, device=points.device)
        return points * scale + offset

    def normalized_to_world(self, coords: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`world_to_normalized`."""
        check_shape(coords, "coords", (3,))
        lo, hi = self._t(self.bounds_min, coords), self._t(self.bounds_max, coords)
        return lo + (coords + 1) / 2 * (hi - lo)

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        """Bool ``(...)``: the point lies inside the grid's box (faces included)."""
        check_shape(points, "points", (3,))
        lo, hi = self._t(self.bounds_min, points), self._t(self.bounds_max, points)
        return ((points >= lo) & (points <= hi)).all(-1)

    def centers(self, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """World coordinates ``(x, y, z)`` of every voxel centre, ``(Z, Y, X, 3)``."""
        Z, Y, X = self.shape
        iz, iy, ix = torch.meshgrid(*(torch.arange(n, dtype=dtype, device=device) for n in (Z, Y, X)), indexing="ij")
        return self.index_to_world(torch.stack([ix, iy, iz], dim=-1))

    def axis_centers(
        self, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Voxel-centre coordinates along each axis: ``x (X,)``, ``y (Y,)``, ``z (Z,)``."""
        return tuple(
            lo + (torch.arange(n, dtype=dtype, device=device) + 0.5) * s
            for lo, n, s in zip(self.bounds_min, self.resolution, self.voxel_size, strict=True)
        )

    def normalization(
        self, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, offset)``, each ``(3,)``: ``world_to_normalized(p) = p * scale + offset``."""
        lo = torch.tensor(self.bounds_min, dtype=dtype, device=device)
        hi = torch.tensor(self.bounds_max, dtype=dtype, device=device)
        scale = 2 / (hi - lo)
        return scale, -1 - lo * scale

    def to_json(self) -> str:
        """The grid as a JSON object ``{bounds_min, bounds_max, resolution}``."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VoxelGrid:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on a malformed description."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"VoxelGrid.from_json: not JSON: {e}") from None
        if not isinstance(d, dict) or not {"bounds_min", "bounds_max", "resolution"} <= set(d):
            raise ValueError(f"VoxelGrid.from_json: expected bounds_min, bounds_max and resolution, got {text[:80]!r}")
        return cls(tuple(d["bounds_min"]), tuple(d["bounds_max"]), tuple(d["resolution"]))


def _views_in(images: torch.Tensor, K: torch.Tensor, cam_from_grid: torch.Tensor, names: tuple[str, str, str]):
    """Validate ``(..., N, C, H, W)`` images with ``(..., N, 3, 3)`` and ``(..., N, 4, 4)`` cameras
    and return them flattened to ``(B, N, ...)`` plus the leading shape."""
    batch = check_args(
        (names[0], images, ("N", None, None, None)), (names[1], K, ("N", 3, 3)), (names[2], cam_from_grid, ("N", 4, 4))
    )
    validate_intrinsics(K, names[1])
    validate_rigid(cam_from_grid, names[2])
    N = images.shape[-4]
    images = images.expand(*batch, *images.shape[-4:]).reshape(-1, *images.shape[-4:])
    K = K.expand(*batch, N, 3, 3).reshape(-1, N, 3, 3)
    cam_from_grid = cam_from_grid.expand(*batch, N, 4, 4).reshape(-1, N, 4, 4)
    return images, K, cam_from_grid, batch


def _project_centers(grid: VoxelGrid, K: torch.Tensor, cam_from_grid: torch.Tensor, H: int, W: int):
    """Project every voxel centre into ``(B, N)`` cameras.

    Returns ``grid_sample`` coordinates ``(B, N, V, 2)``, depth ``(B, N, V)`` and
    a visibility mask (in front and inside the image). The projection is affine
    in the voxel index, so it is computed separably per axis and summed, with
    the pixel normalisation folded into the projection matrix.
    """
    B, N = K.shape[:2]
    norm = torch.tensor(
        [[2 / W, 0.0, 1 / W - 1], [0.0, 2 / H, 1 / H - 1], [0.0, 0.0, 1.0]], dtype=K.dtype, device=K.device
    )
    A = norm @ K @ cam_from_grid[..., :3, :]  # (B, N, 3, 4): grid point -> (x_n z, y_n z, z)
    xs, ys, zs = grid.axis_centers(dtype=K.dtype, device=K.device)
    tx = xs[:, None] * A[:, :, None, :, 0]  # (B, N, X, 3)
    ty = ys[:, None] * A[:, :, None, :, 1]  # (B, N, Y, 3)
    tz = zs[:, None] * A[:, :, None, :, 2] + A[:, :, None, :, 3]  # (B, N, Z, 3)
    uvw = (tz[:, :, :, None, None] + ty[:, :, None, :, None]) + tx[:, :, None, None, :]  # (B, N, Z, Y, X, 3)
    uvw = uvw.reshape(B, N, -1, 3)
    z = uvw[..., 2]
    in_front = z > 1e-6
    xy = uvw[..., :2] / torch.where(in_front, z, torch.full_like(z, 1e-6))[..., None]
    seen = in_front & (xy.abs() <= 1).all(-1)
    return xy, z, seen


def unproject_to_grid(
    grid: VoxelGrid,
    images: torch.Tensor,
    K: torch.Tensor,
    cam_from_grid: torch.Tensor,
    *,
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject per-view images or feature maps into a voxel grid and average over views.

    Every voxel centre is projected into every view; a view *sees* a voxel when
    the centre is in front of it and inside its image. The result is the mean of
    the sampled values over the views that see the voxel (0 where none does),
    and the number of those views.

    Args:
        grid: the voxel grid, in the frame called ``grid``.
        images: ``(..., N, C, H, W)``.
        K: ``(..., N, 3, 3)``.
        cam_from_grid: ``(..., N, 4, 4)``.
        mode: ``grid_sample`` mode, ``"bilinear"`` or ``"nearest"``.

    Returns:
        features ``(..., C, Z, Y, X)`` and count ``(..., 1, Z, Y, X)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> g = VoxelGrid((-1.0, -1.0, 1.0), (1.0, 1.0, 3.0), (2, 2, 2))
        >>> K = make_intrinsics(2.0, 2.0, 1.5, 1.5)[None]
        >>> feat, count = unproject_to_grid(g, torch.ones(1, 3, 4, 4), K, torch.eye(4)[None])
        >>> feat.shape, count.shape
        (torch.Size([3, 2, 2, 2]), torch.Size([1, 2, 2, 2]))
    """
    imgs, K, T, batch = _views_in(images, K, cam_from_grid, ("images", "K", "cam_from_grid"))
    B, N, C, H, W = imgs.shape
    xy, _, seen = _project_centers(grid, K, T, H, W)
    xy = torch.where(seen[..., None], xy, torch.full_like(xy, 3.0))  # unseen: sample far outside (zeros)
    sampled = F.grid_sample(
        imgs.reshape(B * N, C, H, W), xy.reshape(B * N, 1, -1, 2), mode=mode, padding_mode="zeros", align_corners=False
    ).reshape(B, N, C, -1)
    count = seen.sum(1, keepdim=True).to(imgs.dtype)  # (B, 1, V)
    feats = sampled.sum(1) / count.clamp(min=1)
    Z, Y, X = grid.shape
    return feats.reshape(*batch, C, Z, Y, X), count.reshape(*batch, 1, Z, Y, X)


def carve_depth(
    grid: VoxelGrid,
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_from_grid: torch.Tensor,
    *,
    margin: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupied and free voxels from depth maps (vectorised over pixels, voxels, views and batch).

    * occupied: every valid depth pixel (``> 0``) is lifted to 3D and marks the
      voxel it falls into;
    * free: a voxel is free when some view sees its centre with
      ``z < depth(pixel) - margin``, i.e. the ray to the surface passes through
      it; the pixel is the one the centre projects into (nearest). Occupied wins
      over free.

    Pixels with depth 0 (unknown) mark nothing. Not differentiable (masks).

    Args:
        grid: the voxel grid.
        depth: ``(..., N, 1, H, W)`` z-depth in metres, 0 = unknown.
        K: ``(..., N, 3, 3)``.
        cam_from_grid: ``(..., N, 4, 4)``.
        margin: metres a voxel centre must lie in front of the surface to be
            free; default half the voxel diagonal.

    Returns:
        occupied ``(..., 1, Z, Y, X)`` and free ``(..., 1, Z, Y, X)``, float 0/1.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> g = VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 4.0), (2, 2, 4))
        >>> K = make_intrinsics(4.0, 4.0, 3.5, 3.5)[None]
        >>> occ, free = carve_depth(g, torch.full((1, 1, 8, 8), 2.5), K, torch.eye(4)[None])
        >>> occ[0, :, 0, 0], free[0, :, 0, 0]
        (tensor([0., 0., 1., 0.]), tensor([1., 1., 0., 0.]))
    """
    dep, K, T, batch = _views_in(depth, K, cam_from_grid, ("depth", "K", "cam_from_grid"))
    B, N, C, H, W = dep.shape
    if C != 1:
        raise ValueError(f"depth: expected shape (..., N, 1, H, W), got {tuple(depth.shape)}")
    if margin is None:
        margin = 0.5 * sum(s * s for s in grid.voxel_size) ** 0.5
    Z, Y, X = grid.shape
    V = grid.num_voxels
    with torch.no_grad():
        # occupied: scatter the lifted depth pixels
        uv = pixel_centers(H, W, dtype=dep.dtype, device=dep.device).reshape(-1, 2)
        d = dep.reshape(B, N, H * W)
        pts = transform_points(invert_rigid(T), unproject_points(uv, d, K))  # (B, N, HW, 3)
        idx = torch.floor(grid.world_to_index(pts) + 0.5).long()
        ok = (d > 0) & grid.contains(pts)
        ok &= ((idx >= 0) & (idx < torch.tensor(grid.resolution, device=idx.device))).all(-1)
        flat = (idx[..., 2] * Y + idx[..., 1]) * X + idx[..., 0]
        flat = torch.where(ok, flat + V * torch.arange(B, device=flat.device)[:, None, None], B * V)
        occ = torch.zeros(B * V + 1, dtype=dep.dtype, device=dep.device)
        occ.index_fill_(0, flat.reshape(-1), 1.0)
        occ = occ[:-1].reshape(B, V)
        # free: voxel centres in front of the observed surface
        xy, z, seen = _project_centers(grid, K, T, H, W)
        # nearest pixel: floor(u + 0.5) with u = ((x + 1) W - 1) / 2
        u = torch.floor((xy[..., 0] + 1) * (W / 2)).long().clamp(0, W - 1)
        v = torch.floor((xy[..., 1] + 1) * (H / 2)).long().clamp(0, H - 1)
        d_at = d.gather(-1, v * W + u)  # (B, N, V)
        free = (seen & (d_at > 0) & (z < d_at - margin)).any(1).to(dep.dtype)
        free = free * (1 - occ)
    return occ.reshape(*batch, 1, Z, Y, X), free.reshape(*batch, 1, Z, Y, X)


def warp_volume(
    volume: torch.Tensor,
    grid: VoxelGrid,
    dst_from_src: torch.Tensor,
    *,
    dst_grid: VoxelGrid | None = None,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    affine: bool = False,
) -> torch.Tensor:
    """Resample a volume into another frame (differentiable in the volume and the transform: a 3D spatial
    transformer, e.g. to paste an object or a prototype into a scene).

    The output voxel at ``p`` (in the ``dst`` frame, on ``dst_grid``) takes the
    input's value at ``src_from_dst @ p``; outside the input it is 0 (or per
    ``padding_mode``).

    Args:
        volume: ``(..., C, Z, Y, X)`` on ``grid`` in the ``src`` frame.
        grid: the input volume's grid.
        dst_from_src: ``(..., 4, 4)`` rigid transform, or with ``affine`` any invertible affine one (a scaled
            rotation: a prototype placed at a size).
        dst_grid: the output grid (default: ``grid``).

    Returns:
        ``(..., C, Z', Y', X')``.

    Example:
        >>> g = VoxelGrid((0.0, 0.0, 0.0), (4.0, 1.0, 1.0), (4, 1, 1))
        >>> vol = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4)
        >>> shift = torch.eye(4); shift[0, 3] = 1.0
        >>> warp_volume(vol, g, shift).flatten()
        tensor([0., 1., 2., 3.])
    """
    dst_grid = grid if dst_grid is None else dst_grid
    batch = check_args(("volume", volume, (None,) + grid.shape), ("dst_from_src", dst_from_src, (4, 4)))
    C = volume.shape[-4]
    vol = volume.expand(*batch, *volume.shape[-4:]).reshape(-1, C, *grid.shape)
    T = dst_from_src.expand(*batch, 4, 4).reshape(-1, 4, 4)
    pts = dst_grid.centers(dtype=volume.dtype, device=volume.device).reshape(-1, 3)
    src = transform_points(torch.linalg.inv(T) if affine else invert_rigid(T), pts)  # affine too: no rigidity check
    xyz = grid.world_to_normalized(src).reshape(-1, *dst_grid.shape, 3)
    out = F.grid_sample(vol, xyz, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.reshape(*batch, C, *dst_grid.shape)


def sample_frustum(
    volume: torch.Tensor,
    grid: VoxelGrid,
    K: torch.Tensor,
    cam_from_grid: torch.Tensor,
    H: int,
    W: int,
    depths: torch.Tensor,
    *,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Sample a volume on a camera frustum: at every pixel centre and every depth plane.

    The point for pixel ``(u, v)`` and plane ``d`` is the camera-frame point
    with z-depth ``d`` on that pixel's ray. Outside the grid the value is 0.

    Args:
        volume: ``(..., C, Z, Y, X)``.
        grid: the volume's grid, in the frame called ``grid``.
        K: ``(..., 3, 3)`` intrinsics of the ``H x W`` output image.
        cam_from_grid: ``(..., 4, 4)``.
        H, W: output image size.
        depths: ``(D,)`` z-depths of the planes, metres.

    Returns:
        ``(..., C, D, H, W)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> g = VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0), (2, 2, 2))
        >>> K = make_intrinsics(2.0, 2.0, 1.5, 1.5)
        >>> vol = torch.ones(1, 2, 2, 2)
        >>> sample_frustum(vol, g, K, torch.eye(4), 4, 4, torch.tensor([0.5, 1.5])).shape
        torch.Size([1, 2, 4, 4])
    """
    batch = check_args(
        ("volume", volume, (None,) + grid.shape), ("K", K, (3, 3)), ("cam_from_grid", cam_from_grid, (4, 4))
    )
    check_shape(depths, "depths", (None,), max_batch=0)
    validate_intrinsics(K)
    validate_rigid(cam_from_grid, "cam_from_grid")
    C, D = volume.shape[-4], depths.shape[0]
    vol = volume.expand(*batch, *volume.shape[-4:]).reshape(-1, C, *grid.shape)
    K = K.expand(*batch, 3, 3).reshape(-1, 3, 3)
    T = cam_from_grid.expand(*batch, 4, 4).reshape(-1, 4, 4)
    # the point at depth d on pixel ray r is R^T (d r - t): affine in d, so its normalised grid
    # coordinates are d * a + b with a, b per pixel / per camera.
    uv = pixel_centers(H, W, dtype=volume.dtype, device=volume.device).reshape(H * W, 2)
    rays = unproject_points(uv, torch.ones(H * W, dtype=volume.dtype, device=volume.device), K)  # (B, HW, 3)
    scale, offset = grid.normalization(dtype=volume.dtype, device=volume.device)
    Rt = T[:, :3, :3].transpose(-1, -2)
    a = (rays @ T[:, :3, :3]) * scale  # (R^T r)^T = r^T R
    b = -(Rt @ T[:, :3, 3:])[..., 0] * scale + offset  # (B, 3)
    xyz = torch.addcmul(b[:, None, None, :], depths.to(volume.dtype)[None, :, None, None], a[:, None])
    xyz = xyz.reshape(-1, D, H, W, 3)
    out = F.grid_sample(vol, xyz, mode=mode, padding_mode="zeros", align_corners=False)
    return out.reshape(*batch, C, D, H, W)


def connected_components(mask: torch.Tensor, *, max_iters: int | None = None) -> torch.Tensor:
    """Label the 26-connected components of a boolean volume.

    Args:
        mask: ``(..., Z, Y, X)`` bool.
        max_iters: label-propagation rounds (default: enough for any component, ``Z Y X``; it stops as
            soon as no label changes, after about the longest path inside a component).

    Returns:
        ``(..., Z, Y, X)`` long: 0 outside the mask, ``1..n`` per component (per batch element, in the
        order of each component's first voxel in memory).

    Example:
        >>> m = torch.zeros(1, 1, 6, dtype=torch.bool); m[..., [0, 1, 4]] = True
        >>> connected_components(m).flatten().tolist()
        [1, 1, 0, 0, 2, 0]
    """
    check_shape(mask, "mask", (None, None, None), floating=False)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor, got {mask.dtype}")
    shape = mask.shape
    m = mask.reshape(-1, 1, *shape[-3:])
    n = m[0, 0].numel()
    # every voxel starts with its own label (larger first, so the component's first voxel wins)
    lab = torch.where(m, torch.arange(n, 0, -1, device=mask.device).reshape(1, 1, *shape[-3:]), 0).float()
    for _ in range(max_iters or n):
        new = torch.where(m, F.max_pool3d(lab, 3, stride=1, padding=1), 0)
        if torch.equal(new, lab):
            break
        lab = new
    out = torch.zeros(m.shape, dtype=torch.long, device=mask.device)
    for b in range(m.shape[0]):  # consecutive ids per element, in order of first voxel
        ids = lab[b].unique(sorted=True).flip(0)
        ids = ids[ids > 0]
        table = torch.zeros(n + 1, dtype=torch.long, device=mask.device)
        table[ids.long()] = torch.arange(1, len(ids) + 1, device=mask.device)
        out[b] = table[lab[b].long()]
    return out.reshape(shape)


def boxes_from_components(labels: torch.Tensor, grid: VoxelGrid) -> torch.Tensor:
    """An upright oriented box ``(cx, cy, cz, sx, sy, sz, yaw)`` around each labelled component of a volume:
    yaw from the principal axis of its footprint (the x-z plane; length ``sx`` along it), the extents of its
    voxels (centres plus half a voxel) along the box's own axes.

    Args:
        labels: ``(Z, Y, X)`` long, 0 = background, ``1..n`` the components (e.g.
            :func:`connected_components`).
        grid: the volume's grid; boxes come out in its frame.

    Returns:
        ``(n, 7)`` boxes, row ``i`` for label ``i + 1`` (zeros for a label with no voxel).

    Example:
        >>> g = VoxelGrid((0.0, 0.0, 0.0), (4.0, 1.0, 4.0), (4, 1, 4))
        >>> lab = torch.zeros(4, 1, 4, dtype=torch.long); lab[1, 0, :3] = 1  # voxels x = 0..2 at z = 1
        >>> boxes_from_components(lab, g)[0].tolist()
        [1.5, 0.5, 1.5, 3.0, 1.0, 1.0, 0.0]
    """
    check_shape(labels, "labels", grid.shape, floating=False, max_batch=0)
    n = int(labels.max()) if labels.numel() else 0
    pts = grid.centers(dtype=torch.float64, device=labels.device).reshape(-1, 3)
    lab = labels.reshape(-1)
    vs = torch.tensor(grid.voxel_size, dtype=torch.float64, device=labels.device)
    boxes = torch.zeros(n, 7, dtype=torch.float64, device=labels.device)
    for i in range(1, n + 1):
        p = pts[lab == i]
        if len(p) == 0:
            continue
        xz = p[:, [0, 2]] - p[:, [0, 2]].mean(0)
        if len(p) > 1:
            _, vec = torch.linalg.eigh(xz.T @ xz)
            dx, dz = vec[:, -1].tolist()  # the footprint's longest direction
        else:
            dx, dz = 1.0, 0.0
        yaw = math.atan2(-dz, dx) + 0.0  # (no -0.0) yaw_matrix(yaw) @ (1, 0, 0) = (cos yaw, 0, -sin yaw)
        if yaw > math.pi / 2:
            yaw -= math.pi  # a box and its half-turn are one box: keep yaw in (-pi/2, pi/2]
        elif yaw <= -math.pi / 2:
            yaw += math.pi
        c, s_ = math.cos(yaw), math.sin(yaw)
        u = p[:, 0] * c - p[:, 2] * s_  # along the box's x
        w = p[:, 0] * s_ + p[:, 2] * c  # along the box's z
        # a voxel's reach along a turned axis: its half-diagonal projected on that axis
        reach_u = (abs(c) * vs[0] + abs(s_) * vs[2]) / 2
        reach_w = (abs(s_) * vs[0] + abs(c) * vs[2]) / 2
        lo = torch.stack([u.min() - reach_u, p[:, 1].min() - vs[1] / 2, w.min() - reach_w])
        hi = torch.stack([u.max() + reach_u, p[:, 1].max() + vs[1] / 2, w.max() + reach_w])
        mid, size = (lo + hi) / 2, hi - lo
        cx = c * mid[0] + s_ * mid[2]  # back from box axes to the grid frame
        cz = -s_ * mid[0] + c * mid[2]
        boxes[i - 1] = torch.stack([cx, mid[1], cz, size[0], size[1], size[2], torch.tensor(yaw, dtype=torch.float64)])
    return boxes
