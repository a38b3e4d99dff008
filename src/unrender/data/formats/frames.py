"""A user's frames: one image, a folder of images (in name order) or a video file (decoded with PyAV,
which bundles FFmpeg), as ``(name, (3, H, W) float in [0, 1])`` pairs; and :class:`VideoWriter`, which
writes an H.264 MP4 (atomically: the file appears when it is complete)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import FormatError, MissingFileError
from .images import read_rgb

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "VideoWriter", "iter_frames", "video_frame_rate"]

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


def video_frame_rate(path: str | Path) -> float:
    """Frames per second of a video file (25 where the file does not say).

    Raises:
        FormatError: not a readable video.
    """
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise FormatError(f"{path}: not a readable video ({e})") from None
    return float(rate) if rate else 25.0


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


class VideoWriter:
    """Frames ``(H, W, 3)`` uint8 in, an MP4 file out (H.264, yuv420p; MPEG-4 Part 2 where the FFmpeg
    build has no H.264 encoder). Odd sizes are padded by one pixel (yuv420p needs even ones). The file
    is written under a temporary name and renamed on :meth:`close`; a failed write leaves nothing.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.mp4"
        >>> with VideoWriter(path, fps=5) as video:
        ...     for i in range(3):
        ...         video.add(np.full((32, 48, 3), 80 * i, np.uint8))
        >>> [name for name, _ in iter_frames(path)][:2]
        ['a_000000', 'a_000001']
    """

    def __init__(self, path: str | Path, *, fps: float = 10.0):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        from fractions import Fraction

        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        self._stream.pix_fmt = "yuv420p"
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def add(self, image: np.ndarray) -> None:
        import av

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"VideoWriter.add expects an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        h, w = image.shape[0] + image.shape[0] % 2, image.shape[1] + image.shape[1] % 2
        if self._size is None:
            self._size = (h, w)
            self._stream.height, self._stream.width = h, w
        elif self._size != (h, w):
            raise ValueError(f"VideoWriter: frame {self.frames} is {image.shape[:2]}, the video {self._size}")
        if image.shape[:2] != (h, w):
            image = np.pad(image, ((0, h - image.shape[0]), (0, w - image.shape[1]), (0, 0)), mode="edge")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the partial file is removed either way
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self.frames:
            self.close()
        else:
            self.abort()
