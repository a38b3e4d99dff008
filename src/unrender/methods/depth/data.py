"""Frame triplets from generated street videos, with the masks the metric-scale losses need.

The *mask provider* here is the generator's ground truth: instance masks of cars and pedestrians
and a road mask (road and lane marks). For real video the same item keys can be filled from
user-supplied masks or from 2D boxes (:func:`box_masks`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...data.synth import split_dataset
from ...geometry import invert_rigid
from ...world import CLASSES
from .config import DepthConfig, DepthData

__all__ = [
    "DepthDataset",
    "FrameVideo",
    "KittiRawVideo",
    "OBJECT_CLASSES",
    "object_masks",
    "box_masks",
    "read_user_masks",
    "road_mask",
]

OBJECT_CLASSES = ("car", "pedestrian")
"""Classes with a height prior, in the order of the item's ``labels``."""
_IDS = torch.tensor([CLASSES.index(c) for c in OBJECT_CLASSES])
_ROAD = torch.tensor([CLASSES.index("road"), CLASSES.index("lane_mark")])


def object_masks(
    instance: torch.Tensor, box_instance: torch.Tensor, box_classes: torch.Tensor, max_objects: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance masks of the cars and pedestrians of one frame, largest first.

    Args:
        instance: ``(1, H, W)`` instance ids; box_instance, box_classes: ``(M,)`` of the boxed objects.

    Returns:
        masks ``(max_objects, H, W)`` bool and labels ``(max_objects,)`` (index into
        :data:`OBJECT_CLASSES`, -1 = padding).

    Example:
        >>> inst = torch.zeros(1, 4, 4, dtype=torch.long); inst[0, 1:3, 1] = 7
        >>> m, l = object_masks(inst, torch.tensor([7]), torch.tensor([CLASSES.index("car")]), 2)
        >>> int(m[0].sum()), l.tolist()
        (2, [0, -1])
    """
    H, W = instance.shape[-2:]
    masks = torch.zeros(max_objects, H, W, dtype=torch.bool)
    labels = torch.full((max_objects,), -1, dtype=torch.long)
    keep = torch.isin(box_classes, _IDS)
    if not keep.any():
        return masks, labels
    ids, cls = box_instance[keep], box_classes[keep]
    m = instance[0][None] == ids[:, None, None]
    area = m.flatten(1).sum(1)
    order = [i for i in area.argsort(descending=True).tolist() if area[i] > 0][:max_objects]
    for k, i in enumerate(order):
        masks[k] = m[i]
        labels[k] = int((_IDS == cls[i]).nonzero()[0, 0])
    return masks, labels


def box_masks(boxes_2d: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Filled rectangles ``(M, H, W)`` bool from 2D boxes ``(M, 4)`` ``(x1, y1, x2, y2)`` in pixels
    (pixel centres at integers; a pixel is in when its centre is inside the box).

    Example:
        >>> box_masks(torch.tensor([[0.5, 0.5, 2.5, 1.5]]), 3, 4)[0].int()
        tensor([[0, 0, 0, 0],
                [0, 1, 1, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
    """
    v = torch.arange(H, dtype=boxes_2d.dtype)[None, :, None]
    u = torch.arange(W, dtype=boxes_2d.dtype)[None, None, :]
    b = boxes_2d[:, :, None, None]
    return (u >= b[:, 0]) & (u <= b[:, 2]) & (v >= b[:, 1]) & (v <= b[:, 3])


def road_mask(semantic: torch.Tensor) -> torch.Tensor:
    """Road pixels (road and lane marks) of a semantic map ``(..., H, W)`` -> bool."""
    return torch.isin(semantic, _ROAD)


class DepthDataset(Dataset):
    """Target frames with their neighbours from generated street videos.

    Item keys: ``rgb (3, 3, H, W)`` (previous, target, next frame), ``K (3, 3)``, ``depth (1, H, W)``
    ground-truth z-depth of the target (evaluation only; 0 = nothing), ``masks (M, H, W)`` bool
    and ``labels (M,)`` of cars and pedestrians, ``road (1, H, W)`` bool, ``semantic (1, H, W)``
    class ids (:data:`unrender.world.CLASSES`; evaluation only), ``moving (1, H, W)`` bool (pixels of
    objects that move in the world; evaluation only), ``camera_height ()``
    (evaluation only), ``src_from_tgt (2, 4, 4)`` ground-truth relative poses of the previous and
    next frame (tests and baselines only), ``sequence``, ``frame``.
    """

    def __init__(self, cfg: DepthConfig, split: str, *, generate: bool = True, workers: int = 2):
        d = cfg.data
        if d.frames < 3:
            raise ValueError(f"data.frames must be at least 3 (a frame and its two neighbours), got {d.frames}")
        self.synth = split_dataset(d.root, split, kind="streets", num_train=d.num_train, num_val=d.num_val,
                                   views=d.frames, height=d.height, width=d.width, seed=d.seed,
                                   antialias=d.antialias, generate=generate, workers=workers)  # fmt: skip
        self.cfg = cfg
        self.per_seq = d.frames - 2
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.synth) * self.per_seq

    def _sequence(self, i: int) -> dict[str, torch.Tensor]:
        if i not in self._cache:
            s = self.synth[i]
            keep = ("rgb", "depth", "instance", "semantic", "K", "cam_from_world", "box_instance", "box_classes",
                    "camera_height")  # fmt: skip
            seq = {k: s[k] for k in keep}
            # instances that move in the world (they break the static-scene assumption; evaluation only)
            motion = lambda o: [*o["velocity"], *o.get("acceleration", []), o.get("yaw_rate", 0)]  # noqa: E731
            moving = {o["track_id"] for o in s["scene_json"]["objects"] if o.get("has_box")
                      and any(v != 0 for v in motion(o))}  # fmt: skip
            ids = [int(i) for i, t in zip(s["box_instance"], s["box_track_ids"], strict=True) if int(t) in moving]
            seq["moving_ids"] = torch.tensor(ids, dtype=s["instance"].dtype)
            self._cache[i] = seq
        return self._cache[i]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"DepthDataset: index {i} out of range for {len(self)} items")
        seq, t = divmod(i, self.per_seq)
        t += 1
        s = self._sequence(seq)
        masks, labels = object_masks(s["instance"][t], s["box_instance"], s["box_classes"], self.cfg.data.max_objects)
        T = s["cam_from_world"]
        src_from_tgt = torch.stack([T[t - 1] @ invert_rigid(T[t]), T[t + 1] @ invert_rigid(T[t])])
        return {
            "rgb": s["rgb"][t - 1 : t + 2],
            "K": s["K"][t].float(),
            "depth": s["depth"][t].float(),
            "masks": masks,
            "labels": labels,
            "road": road_mask(s["semantic"][t]),
            "semantic": s["semantic"][t].long(),
            "moving": torch.isin(s["instance"][t], s["moving_ids"]),
            "camera_height": s["camera_height"][t].float(),
            "src_from_tgt": src_from_tgt.float(),
            "sequence": torch.tensor(seq),
            "frame": torch.tensor(t),
        }


class KittiRawVideo(Dataset):
    """Frame triplets from videos in the KITTI raw layout (see :mod:`unrender.data.formats.kitti_raw`).

    Items: ``rgb (3, 3, H, W)``, ``K (3, 3)`` and ``depth (1, H, W)`` (the drive's ground-truth
    depth where it has one, else zeros). There are no masks, so training on it uses the
    self-supervised losses only (``data.kitti_raw`` in the config).
    """

    def __init__(self, root: str | Path):
        from ...data.formats import read_kitti_raw

        self.drives = [d for d in read_kitti_raw(root) if len(d.frames) >= 3]
        if not self.drives:
            raise ValueError(f"{root}: no drive has 3 or more frames")
        self.index = [(i, t) for i, d in enumerate(self.drives) for t in range(1, len(d.frames) - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from ...data.formats import read_kitti_depth_png, read_kitti_raw_image

        d, t = self.drives[self.index[i][0]], self.index[i][1]
        rgb = torch.stack([read_kitti_raw_image(f) for f in d.frames[t - 1 : t + 2]])
        if rgb.shape[-2:] != (d.height, d.width):
            raise ValueError(f"{d.frames[t]}: image is {tuple(rgb.shape[-2:])}, calibration says {(d.height, d.width)}")
        gt = d.depth[t]
        depth = read_kitti_depth_png(gt) if gt is not None else torch.zeros(1, d.height, d.width)
        return {"rgb": rgb, "K": d.K.float(), "depth": depth}


def read_user_masks(png: Path, classes: Path, H: int, W: int, max_objects: int) -> dict[str, torch.Tensor]:
    """A user's instance masks of one frame, fitted like its image to ``H x W``: ``png`` holds instance ids
    (8 or 16 bit, 0 = none) and ``classes`` is a JSON object ``{"<id>": "<class>"}``; cars and pedestrians
    give ``masks``/``labels`` (:func:`object_masks`), ids of class ``road`` the ``road`` mask.

    Raises:
        MissingFileError, FormatError: a missing or malformed file, naming it.
    """
    import json

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from ...data.formats import FormatError, fit_map
    from ...data.formats.errors import require_file

    require_file(png, "instance mask PNG")
    require_file(classes, "instance classes JSON")
    try:
        with Image.open(png) as im:
            ids = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise FormatError(f"{png}: not a readable PNG ({e})") from None
    if ids.ndim != 2 or ids.dtype not in (np.uint8, np.uint16, np.int32):
        raise FormatError(f"{png}: expected single-channel instance ids (8 or 16 bit), got {ids.dtype} {ids.shape}")
    try:
        table = json.loads(classes.read_text())
        table = {int(k): str(v) for k, v in table.items()}
    except (json.JSONDecodeError, AttributeError, ValueError, UnicodeDecodeError) as e:
        raise FormatError(f'{classes}: expected a JSON object {{"<instance id>": "<class>"}} ({e})') from None
    unknown = sorted({c for c in table.values() if c not in CLASSES})
    if unknown:
        raise FormatError(f"{classes}: unknown classes {unknown} (known: {', '.join(CLASSES)})")
    inst = fit_map(torch.from_numpy(ids.astype(np.int64))[None], H, W)  # (1, H, W)
    box_ids = torch.tensor(list(table), dtype=torch.long)
    box_classes = torch.tensor([CLASSES.index(c) for c in table.values()], dtype=torch.long)
    masks, labels = object_masks(inst, box_ids, box_classes, max_objects)
    road_ids = box_ids[box_classes == CLASSES.index("road")]
    return {"masks": masks, "labels": labels, "road": torch.isin(inst, road_ids)}


STILL_VIDEO = 1e-3
"""A video whose consecutive frames differ by less than this (median over the video of the mean absolute
difference, 0-1 scale, at the model's size) is refused for training: it does not move."""


class FrameVideo(Dataset):
    """Frame triplets from one of your videos (a video file or a folder of frames) with its camera
    (``data.video``, ``data.intrinsics``): undistorted where the intrinsics give a distortion, fitted to
    the model's size like ``predict`` does, and kept in memory (uint8).

    Items: ``rgb (3, 3, H, W)``, ``K (3, 3)``, ``depth (1, H, W)`` (zeros: no ground truth). With
    ``data.masks`` (a folder of ``<frame>.png`` instance ids + ``<frame>.json`` classes per frame, from
    any segmenter) also ``masks``, ``labels`` and ``road`` (:func:`read_user_masks`), so the metric
    scale is learned from object heights and the camera height; without, the losses are the
    self-supervised ones only (depth up to scale).
    """

    def __init__(self, d: DepthData):
        from ...data.formats import camera_for_image, fit_view_undistorted, iter_frames

        if d.intrinsics is None:
            raise ValueError("data.video needs data.intrinsics: the video's camera (JSON with K, or a KITTI calib)")
        frames, self.names, cam = [], [], None
        for name, rgb in iter_frames(d.video, every=d.every):
            if cam is None:
                cam = camera_for_image(d.intrinsics, None, rgb.shape[-1], rgb.shape[-2])
            img, K = fit_view_undistorted(rgb, cam.K, cam.distortion, d.height, d.width)
            frames.append((img * 255).round().to(torch.uint8))
            self.names.append(name)
        if len(frames) < 3:
            raise ValueError(f"{d.video}: {len(frames)} frames; training needs 3 or more (a frame and its neighbours)")
        self.frames, self.K, self.d = torch.stack(frames), K.float(), d
        change = (self.frames[1:].float() - self.frames[:-1].float()).abs().mean((1, 2, 3)) / 255
        if float(change.median()) < STILL_VIDEO:
            raise ValueError(f"{d.video}: consecutive frames barely change (median mean absolute difference "
                             f"{float(change.median()):.1e} on a 0-1 scale, below {STILL_VIDEO:g}): self-supervised "
                             "depth learns from camera motion, and this video has almost none (use a larger "
                             "--data.every, or another video)")  # fmt: skip

    def __len__(self) -> int:
        return len(self.frames) - 2

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"FrameVideo: index {i} out of range for {len(self)} items")
        t = i + 1
        d = self.d
        item = {"rgb": self.frames[t - 1 : t + 2].float() / 255, "K": self.K}
        item["depth"] = torch.zeros(1, d.height, d.width)
        if d.masks is not None:
            name = self.names[t]
            item.update(read_user_masks(Path(d.masks) / f"{name}.png", Path(d.masks) / f"{name}.json", d.height,
                                        d.width, d.max_objects))  # fmt: skip
        return item
