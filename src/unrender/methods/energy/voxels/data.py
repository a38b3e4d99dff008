"""Single-view voxel samples: one rendered view of a generated object and its exact occupancy on a
grid tied to that camera (frustum or metric, see :class:`~.config.VoxelData`).

Sample schema: ``image (3, H, W)`` in [0, 1], ``K (3, 3)``, ``occupancy (Z, Y, X)`` float 0/1 with
``Z`` the depth axis (away from the camera), ``Y`` down and ``X`` right.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ....data.synth import split_dataset
from ....geometry import check_args, invert_rigid, transform_points, unproject_points
from ....world.scene import Scene
from ....world.truth import semantics_at
from .config import EnergyVoxelsConfig, VoxelData

__all__ = ["grid_points", "VoxelViews"]

OBJECT_HALF_EXTENT = 0.5
"""The ``objects`` world scales its object into the cube [-0.5, 0.5]^3 at the origin."""


def grid_points(d: VoxelData, K: torch.Tensor) -> torch.Tensor:
    """Camera-frame centres ``(Z, Y, X, 3)`` of the voxels of grid ``d.grid`` at ``d.resolution``.

    Frustum: voxel ``(k, i, j)`` sits on the ray through the centre of the pixel block ``(i, j)``
    (``H / R x W / R`` pixels; block centre ``u = j * W / R + (W / R - 1) / 2``), at z-depth
    ``near + (k + 0.5) (far - near) / R``. Metric: an axis-aligned grid in the camera frame over
    ``[-half_width, half_width]^2 x [near, far]``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> d = VoxelData(resolution=2, height=4, width=4, near=1.0, far=3.0)
        >>> p = grid_points(d, make_intrinsics(4.0, 4.0, 1.5, 1.5))
        >>> p.shape, p[0, 0, 0].tolist()
        (torch.Size([2, 2, 2, 3]), [-0.375, -0.375, 1.5])
    """
    check_args(("K", K, (3, 3)))
    R = d.resolution
    if R < 1 or d.height % R or d.width % R or not 0 < d.near < d.far:
        raise ValueError(f"data.resolution {R} must divide the image {d.height}x{d.width}, and 0 < near < far")
    K = K.double()
    z = d.near + (torch.arange(R, dtype=torch.float64) + 0.5) * (d.far - d.near) / R
    if d.grid == "frustum":
        sy, sx = d.height / R, d.width / R
        v = torch.arange(R, dtype=torch.float64) * sy + (sy - 1) / 2
        u = torch.arange(R, dtype=torch.float64) * sx + (sx - 1) / 2
        uv = torch.stack(torch.meshgrid(u, v, indexing="xy"), -1).reshape(-1, 2)  # (Y*X, 2), row-major
        rays = unproject_points(uv, torch.ones(len(uv), dtype=torch.float64), K)  # depth 1
        return (z[:, None, None] * rays[None]).reshape(R, R, R, 3)
    if d.grid == "metric":
        c = -d.half_width + (torch.arange(R, dtype=torch.float64) + 0.5) * 2 * d.half_width / R
        zz, yy, xx = torch.meshgrid(z, c, c, indexing="ij")
        return torch.stack([xx, yy, zz], -1)
    raise ValueError(f"data.grid must be 'frustum' or 'metric', got {d.grid!r}")


def grid_occupancy(scene: Scene, cam_from_world: torch.Tensor, points_cam: torch.Tensor) -> torch.Tensor:
    """Exact occupancy ``(Z, Y, X)`` of the scene's objects at camera-frame points ``(Z, Y, X, 3)``
    (only points inside the object's cube are tested)."""
    pts = transform_points(invert_rigid(cam_from_world.double()), points_cam.reshape(-1, 3))
    occ = torch.zeros(len(pts))
    near = (pts.abs() <= OBJECT_HALF_EXTENT + 1e-3).all(-1)
    if near.any():
        occ[near] = (semantics_at(scene, pts[near]) > 0).float()
    return occ.reshape(points_cam.shape[:3])


class VoxelViews(Dataset):
    """Items ``scene * views_per_scene + view`` of the generated objects (written once under
    ``data.root``, shared with ``nvs``), with occupancy computed exactly on the fly."""

    def __init__(self, cfg: EnergyVoxelsConfig, split: str, *, generate: bool = True, workers: int = 2):
        d = cfg.data
        if not 1 <= d.views_per_scene <= d.views:
            raise ValueError(f"data.views_per_scene must be in 1..{d.views}, got {d.views_per_scene}")
        self.cfg = cfg
        self.synth = split_dataset(d.root, split, kind="objects", num_train=d.num_train, num_val=d.num_val,
                                   views=d.views, height=d.height, width=d.width, seed=d.seed, generate=generate,
                                   workers=workers)  # fmt: skip

    def __len__(self) -> int:
        return len(self.synth) * self.cfg.data.views_per_scene

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"VoxelViews: index {i} out of range for {len(self)} items")
        d = self.cfg.data
        raw = self.synth.raw(i // d.views_per_scene)
        v = i % d.views_per_scene
        K = torch.from_numpy(raw["K"][v])
        T = torch.from_numpy(raw["cam_from_world"][v])
        scene = Scene.from_json(str(raw["scene_json"]))
        occ = grid_occupancy(scene, T, grid_points(d, K))
        image = torch.from_numpy(raw["rgb"][v]).float() / 255
        return {"image": image, "K": K.float(), "occupancy": occ}
