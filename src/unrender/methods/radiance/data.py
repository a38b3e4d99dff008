"""A posed capture as rays: every training pixel's ray and colour, and the held-out views whole.

Images are box-filtered to ``1 / downscale`` of their size (the intrinsics follow the pixel-centre
convention of :func:`unrender.geometry.scale_intrinsics`). A lens with distortion is not resampled out of
the images: each pixel's ray is bent back through the lens model instead
(:func:`unrender.geometry.camera_rays` with ``distortion``), so every pixel keeps its measured colour.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ...data.capture import Capture, capture_frame, normalise, orbit_circle, read_capture
from ...data.formats import FormatError, read_rgb
from ...geometry import camera_rays, scale_intrinsics
from ...resources import check_memory
from .config import RadianceConfig

__all__ = ["CaptureFrame", "CaptureViews", "RayDataset", "load_frame", "load_views", "view_rays"]


@dataclass
class CaptureFrame:
    """What a fitted model keeps of its capture: enough to render an orbit and export in its coordinates."""

    centre: torch.Tensor  # (3,) float64: x_normalised = scale (x - centre)
    scale: float
    how: str
    circle: torch.Tensor  # (10,) float64: the cameras' orbit (:func:`unrender.data.capture.orbit_circle`)
    K: torch.Tensor  # (3, 3) float64: the first image's intrinsics at the fitted size
    size: tuple[int, int]  # (H, W) at the fitted size


@dataclass
class CaptureViews:
    images: torch.Tensor  # (N, 3, H, W) in [0, 1], at the fitted size
    K: torch.Tensor  # (N, 3, 3) float64, at the fitted size
    cam_from_world: torch.Tensor  # (N, 4, 4) float64, normalised capture frame
    distortion: torch.Tensor | None  # (5,) float64, or None for a pinhole
    train: list[int]
    held_out: list[int]
    frame: CaptureFrame
    paths: list[Path]


def _frame(cap: Capture, downscale: int, holdout: int) -> tuple[CaptureFrame, torch.Tensor, list[int], list[int]]:
    """A read capture's frame, its normalised cameras ``(N, 4, 4)`` and its training and held-out indices."""
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    n = len(cap.paths)
    held = [i for i in range(n) if holdout and i % holdout == 0]
    train = [i for i in range(n) if i not in held]
    if len(train) < 2:
        raise ValueError(f"{cap.source}: {len(train)} training images after holding every {holdout}-th out; need 2")
    centre, scale, how = capture_frame(cap.cam_from_world)
    T = normalise(cap.cam_from_world, centre, scale)
    h, w = cap.size
    s = 1.0 / downscale
    frame = CaptureFrame(centre, scale, how, orbit_circle(T[train]), scale_intrinsics(cap.K[0].double(), s, s),
                         (h // downscale, w // downscale))  # fmt: skip
    return frame, T, train, held


def load_frame(capture: Path, downscale: int, holdout: int) -> CaptureFrame:
    """The :class:`CaptureFrame` of a capture, from its cameras alone (no image is read).

    Raises:
        MissingFileError, FormatError: the capture's file is missing or malformed; ValueError: too few images.
    """
    return _frame(read_capture(capture), downscale, holdout)[0]


def _downscale(image: torch.Tensor, k: int) -> torch.Tensor:
    """Box filter by ``k`` (the image is cropped to a multiple of ``k`` at its bottom and right edges)."""
    h, w = image.shape[-2:]
    if h < k or w < k:
        raise ValueError(f"an image of {w} x {h} pixels cannot be downscaled {k} times")
    image = image[..., : h - h % k, : w - w % k]
    return F.avg_pool2d(image[None], k)[0] if k > 1 else image


@functools.lru_cache(maxsize=2)
def load_views(capture: Path, downscale: int, holdout: int) -> CaptureViews:
    """Read, downscale and normalise a capture (cached: training and evaluation read it once).

    Raises:
        MissingFileError, FormatError: the capture's file or an image is missing or malformed.
        ValueError: images of different sizes, or too few images to hold some out.
    """
    cap = read_capture(capture)
    frame, T, train, held = _frame(cap, downscale, holdout)
    n = len(cap.paths)
    h, w = cap.size
    check_memory(n * 3 * (h * w + 2 * h * w // downscale**2) * 4, f"the {n} images of {capture}")
    images = []
    for p in tqdm(cap.paths, desc="read capture", unit="image", dynamic_ncols=True):
        img = read_rgb(p)
        if tuple(img.shape[-2:]) != (h, w):
            raise FormatError(f"{p}: {img.shape[-1]} x {img.shape[-2]} pixels; the capture says {w} x {h}")
        images.append(_downscale(img, downscale))
    s = 1.0 / downscale
    dist = cap.distortion.double() if bool((cap.distortion != 0).any()) else None
    return CaptureViews(torch.stack(images), scale_intrinsics(cap.K.double(), s, s), T, dist, train, held, frame,
                        list(cap.paths))  # fmt: skip


def view_rays(views: CaptureViews, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions ``(H W, 3)`` (float32) of view ``i``'s pixels, row-major."""
    H, W = views.images.shape[-2:]
    o, d = camera_rays(views.K[i], views.cam_from_world[i], H, W, distortion=views.distortion)
    return o.reshape(-1, 3).float(), d.reshape(-1, 3).float()


class RayDataset(Dataset):
    """Every pixel of the training views as one item ``{"origins", "directions", "rgb"}`` (``(3,)`` each).

    Batches are gathered at once (``__getitems__``), not item by item: a batch is thousands of rays.
    """

    def __init__(self, cfg: RadianceConfig):
        d = cfg.data
        self.views = load_views(Path(d.capture), d.downscale, d.holdout)
        o, dirs = zip(*(view_rays(self.views, i) for i in self.views.train), strict=True)
        self.origins, self.directions = torch.cat(o), torch.cat(dirs)
        self.rgb = self.views.images[self.views.train].permute(0, 2, 3, 1).reshape(-1, 3).contiguous()

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        i = torch.as_tensor(idx)
        return {"origins": self.origins[i], "directions": self.directions[i], "rgb": self.rgb[i]}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}
