"""Pose-lifting data: synthetic-world skeletons seen by random cameras, and the Human3.6M reader's
frames, in one sample schema: ``joints_2d (17, 2)`` pixels, ``K (3, 3)``, ``joints_cam (17, 3)`` metres."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ....geometry import look_at, make_intrinsics, project_points
from ....world.generators import skeleton
from .config import EnergyPoseConfig

__all__ = ["SYNTH_K", "synth_poses", "PoseLifting", "h36m_samples"]

SYNTH_K = make_intrinsics(1145.0, 1145.0, 499.5, 499.5, dtype=torch.float64)
"""H36M-like pinhole of the synthetic cameras: f = 1145 px, a 1000 x 1000 image centred."""
MOTIONS = ("walk", "sit", "reach", "wave")


def synth_poses(num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` random people in random cameras: camera-frame joints ``(num, 17, 3)`` and their exact
    pixel projections ``(num, 17, 2)`` through :data:`SYNTH_K` (float64).

    A person is the synthetic world's skeleton (bone lengths scaled with a height drawn from the
    pedestrian prior, joint angles from the motion library within joint limits); the camera looks at
    the pelvis (+- 10 cm) from any azimuth, elevation -25..5 degrees (negative: from above) and
    3.5-6.5 m away, upright.

    Example:
        >>> J, uv = synth_poses(3, seed=0)
        >>> J.shape, uv.shape, bool((J[..., 2] > 2).all())
        (torch.Size([3, 17, 3]), torch.Size([3, 17, 2]), True)
    """
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    rng = np.random.default_rng(seed)
    motions = rng.integers(0, len(MOTIONS), num)
    world = np.stack([skeleton(rng, MOTIONS[m]) for m in motions])  # (num, 17, 3), body frame
    az = rng.uniform(-math.pi, math.pi, num)
    el = np.deg2rad(rng.uniform(-25, 5, num))
    dist = rng.uniform(3.5, 6.5, num)
    target = world[:, 0] + rng.normal(0, 0.1, (num, 3))
    # elevation < 0 puts the camera above the target (y points down)
    eye = target + dist[:, None] * np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], 1)
    cam_from_world = look_at(torch.from_numpy(eye), torch.from_numpy(target))
    W = torch.from_numpy(world)
    joints = W @ cam_from_world[:, :3, :3].transpose(1, 2) + cam_from_world[:, None, :3, 3]
    uv, _, _ = project_points(joints, SYNTH_K)
    return joints, uv


class PoseLifting(Dataset):
    """Synthetic pose-lifting samples, generated once at construction (a few seconds for 1e5).

    ``split="train"``: ``num_train`` poses (seed ``seed``), each with a 2D noise level drawn from
    ``train_noise_px`` and its noise fixed per index (items are deterministic). ``split="val"``:
    ``num_val`` poses from another seed, all at ``noise_px``.
    """

    def __init__(self, cfg: EnergyPoseConfig, split: str = "train", noise_px: float = 0.0):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        d = cfg.data
        train = split == "train"
        num, seed = (d.num_train, d.seed) if train else (d.num_val, d.seed + 1_000_003)
        self.joints_cam, uv = synth_poses(num, seed)
        g = torch.Generator().manual_seed(seed + 17)
        if train:
            levels = torch.tensor(d.train_noise_px, dtype=torch.float64)
            if len(levels) == 0 or (levels < 0).any():
                raise ValueError(f"data.train_noise_px must be non-empty and >= 0, got {d.train_noise_px}")
            sigma = levels[torch.randint(len(levels), (num,), generator=g)]
        else:
            if noise_px < 0:
                raise ValueError(f"noise_px must be >= 0, got {noise_px}")
            sigma = torch.full((num,), float(noise_px), dtype=torch.float64)
        self.noise_px = sigma.float()
        self.joints_2d = (uv + sigma[:, None, None] * torch.randn(uv.shape, generator=g, dtype=torch.float64)).float()
        self.joints_cam = self.joints_cam.float()
        self.K = SYNTH_K.float()

    def __len__(self) -> int:
        return len(self.joints_cam)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"joints_2d": self.joints_2d[i], "K": self.K, "joints_cam": self.joints_cam[i],
                "noise_px": self.noise_px[i]}  # fmt: skip


def h36m_samples(folder: str | Path) -> dict[str, torch.Tensor]:
    """The Human3.6M frames of ``folder`` (``test_h36m_body3d.npz`` + ``cameras.json``) as one batch
    of the sample schema (2D ``part`` in pixels, camera intrinsics, camera-frame ``S`` as truth)."""
    from ....data.formats.h36m import read_h36m

    folder = Path(folder)
    s = read_h36m(folder / "test_h36m_body3d.npz", folder / "cameras.json")
    return {"joints_2d": s.joints_2d.float(), "K": s.K.float(), "joints_cam": s.joints_cam.float()}
