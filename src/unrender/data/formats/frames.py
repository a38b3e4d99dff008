"""A user's frames: one image, a folder of images (in name order) or a video file (decoded with PyAV,
which bundles FFmpeg), as ``(name, (3, H, W) float in [0, 1])`` pairs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import FormatError, MissingFileError
from .images import read_rgb

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "iter_frames"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _video(path: Path, every: int, max_frames: int) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise FormatError(f"{path}: reading videos needs PyAV (pip install av)") from None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable video ({e})") from None
    with container:
        if not container.streams.video:
            raise FormatError(f"{path}: holds no video stream")
        n = 0
        try:
            for i, frame in enumerate(container.decode(video=0)):
                if i % every:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                yield f"{path.stem}_{i:06d}", torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255
                n += 1
                if max_frames and n >= max_frames:
                    return
        except (av.error.FFmpegError, ValueError) as e:
            raise FormatError(f"{path}: video decoding failed after {n} frames ({e})") from None
        if n == 0:
            raise FormatError(f"{path}: no frame could be decoded")


def iter_frames(path: str | Path, *, every: int = 1, max_frames: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """Frames of an image file, a folder of images or a video, every ``every``-th, at most ``max_frames``
    (0: all).

    Raises:
        MissingFileError: no such file or folder.
        FormatError: an unreadable image or video, an unknown file type, a folder without images.
    """
    path = Path(path)
    if every < 1 or max_frames < 0:
        raise ValueError(f"every must be >= 1 and max_frames >= 0, got {every}, {max_frames}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FormatError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        files = files[::every][: max_frames or None]
        for f in files:
            yield f.stem, read_rgb(f)
        return
    if not path.is_file():
        raise MissingFileError(f"input not found: {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from _video(path, every, max_frames)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield path.stem, read_rgb(path)
    else:
        raise FormatError(f"{path}: expected an image ({', '.join(IMAGE_SUFFIXES)}) or a video "
                          f"({', '.join(VIDEO_SUFFIXES)}), or a folder of images")  # fmt: skip
