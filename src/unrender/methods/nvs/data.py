"""Samples for novel-view synthesis: input views with cameras, target cameras with their images.

One schema for every source -- generated objects, NeRF/instant-ngp ``transforms.json`` scenes and
RealEstate10K clips:

``images (V, 3, H, W)`` in [0, 1], ``K (V, 3, 3)``, ``cam_from_world (V, 4, 4)``,
``target_images (T, 3, H, W)``, ``target_K (T, 3, 3)``, ``target_cam_from_world (T, 4, 4)``, and,
where the source has it, ``depth (V, 1, H, W)`` of the inputs (the reprojection baseline uses it;
zeros otherwise) and ``scene ()``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.formats import fit_view_undistorted, read_rgb
from ...data.synth import split_dataset
from .config import NVSConfig

__all__ = ["NVSDataset", "ViewSetDataset", "capture_views", "pick_views"]


def pick_views(n: int, num_input: int, num_target: int, seed: int) -> tuple[list[int], list[int]]:
    """A deterministic random choice of ``num_input`` input and ``num_target`` other target views out of ``n``.

    Example:
        >>> pick_views(8, 2, 2, seed=0) == pick_views(8, 2, 2, seed=0)
        True
    """
    if num_input + num_target > n:
        raise ValueError(f"a scene with {n} views cannot give {num_input} inputs and {num_target} other targets")
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[:num_input], order[num_input : num_input + num_target]


def _sample(images, K, T, depth, inputs, targets, scene: int) -> dict[str, torch.Tensor]:
    i, t = torch.tensor(inputs), torch.tensor(targets)
    return {
        "images": images[i],
        "K": K[i].float(),
        "cam_from_world": T[i].float(),
        "depth": depth[i] if depth is not None else torch.zeros(len(inputs), 1, *images.shape[-2:]),
        "target_images": images[t],
        "target_K": K[t].float(),
        "target_cam_from_world": T[t].float(),
        "scene": torch.tensor(scene),
    }


class NVSDataset(Dataset):
    """Generated objects (the ``objects`` world: cameras at random over a sphere around one object).

    Every scene gives ``views`` items, each a different deterministic choice of input and target views.
    """

    def __init__(self, cfg: NVSConfig, split: str, *, generate: bool = True, workers: int = 2):
        d = cfg.data
        if d.num_input < 1 or d.num_target < 1:
            raise ValueError(f"data.num_input and data.num_target must be >= 1, got {d.num_input}, {d.num_target}")
        if d.num_input + d.num_target > d.views:
            raise ValueError(f"data.views={d.views} cannot give {d.num_input} inputs and {d.num_target} other targets")
        self.cfg, self.split = cfg, split
        self.synth = split_dataset(d.root, split, kind="objects", num_train=d.num_train, num_val=d.num_val,
                                   views=d.views, height=d.height, width=d.width, seed=d.seed, generate=generate,
                                   workers=workers)  # fmt: skip

    def __len__(self) -> int:
        return len(self.synth) * self.cfg.data.views

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"NVSDataset: index {i} out of range for {len(self)} items")
        d = self.cfg.data
        scene = i // d.views
        s = self.synth[scene]
        held_out = 0 if self.split == "train" else 1 << 20
        inputs, targets = pick_views(d.views, d.num_input, d.num_target, seed=i + held_out)
        return _sample(s["rgb"], s["K"], s["cam_from_world"], s["depth"].float(), inputs, targets, scene)


class ViewSetDataset(Dataset):
    """Items from one posed capture (:func:`unrender.data.capture.read_capture`: a transforms.json or a
    RealEstate10K clip), normalised to the training scale, undistorted and fitted to ``H x W``.

    Images are read lazily; item ``i`` is a deterministic choice of inputs and targets.
    """

    def __init__(self, capture, *, height: int, width: int, num_input: int, num_target: int, num_items: int = 100):
        from ...data.capture import capture_frame, normalise

        n = len(capture.paths)
        if num_input + num_target > n:
            raise ValueError(
                f"{capture.source}: {n} views cannot give {num_input} inputs and {num_target} other targets"
            )
        centre, scale, self.normalisation = capture_frame(capture.cam_from_world)
        self.capture, self.T = capture, normalise(capture.cam_from_world, centre, scale)
        self.H, self.W, self.num_items = height, width, num_items
        self.num_input, self.num_target = num_input, num_target

    def __len__(self) -> int:
        return self.num_items

    def view(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """View ``j`` fitted to the dataset's size: image ``(3, H, W)`` and ``K (3, 3)``."""
        c = self.capture
        return fit_view_undistorted(read_rgb(c.paths[j]), c.K[j], c.distortion, self.H, self.W)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        inputs, targets = pick_views(len(self.capture.paths), self.num_input, self.num_target, seed=i)
        used = inputs + targets
        views = [self.view(j) for j in used]
        images = torch.stack([v[0] for v in views])
        K = torch.stack([v[1] for v in views])
        n = len(inputs)
        return _sample(images, K, self.T[used], None, list(range(n)), list(range(n, len(used))), 0)


def capture_views(path: str | Path, cfg: NVSConfig, num_items: int = 100) -> ViewSetDataset:
    """A transforms.json scene or a RealEstate10K clip (camera file + frames) as NVS samples."""
    from ...data.capture import read_capture

    d = cfg.data
    return ViewSetDataset(read_capture(path), height=d.height, width=d.width, num_input=d.num_input,
                          num_target=d.num_target, num_items=num_items)  # fmt: skip
