"""A camera's intrinsics for a user's own images: a JSON file, a KITTI calib file, or a guess from a
field of view (stated as such wherever it is used).

JSON forms read (keys at the top level)::

    {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "width": W, "height": H,
     "distortion": [k1, k2, p1, p2, k3]}              # or "dist_opencv_k1k2p1p2k3", or k1 ... k3 keys
    {"fx": ..., "fy": ..., "cx": ..., "cy": ...}       # or "fl_x", "fl_y" (instant-ngp)
    {"cam_in": [fx, fy, cx, cy]}                        # Metric3D / KITTI demo annotations
    {"files": [{"cam_in": [...], ...}, ...]}            # Metric3D's test_annotations.json (one camera)

``width``/``height`` (or ``w``/``h``) give the image size the calibration is for; images of another
size with the same aspect ratio get a scaled ``K``. Pixel centres are at integer coordinates (the
OpenCV and KITTI convention, unrender's).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ...geometry.camera import make_intrinsics, scale_intrinsics
from .errors import FormatError, require_file

__all__ = ["CameraIntrinsics", "camera_for_image", "read_intrinsics", "intrinsics_from_fov"]


@dataclass
class CameraIntrinsics:
    K: torch.Tensor  # (3, 3) float64, pixels of an image of `size`
    distortion: torch.Tensor  # (5,) float64: OpenCV k1, k2, p1, p2, k3 (zeros: none)
    size: tuple[int, int] | None  # (W, H) the calibration is for; None: any
    source: str  # where K came from, in words

    @property
    def distorted(self) -> bool:
        return bool((self.distortion != 0).any())

    def for_image(self, W: int, H: int) -> CameraIntrinsics:
        """The intrinsics for an image of ``W x H`` (``K`` scaled when the calibration was for another size
        of the same aspect ratio).

        Raises:
            FormatError: the image has another aspect ratio than the calibration.
        """
        if self.size is None or self.size == (W, H):
            return self
        w0, h0 = self.size
        if abs(W / w0 - H / h0) > 0.01 * max(W / w0, H / h0):
            raise FormatError(f"{self.source}: calibrated for {w0} x {h0} images, got {W} x {H} (another aspect ratio)")
        K = scale_intrinsics(self.K, W / w0, H / h0)
        return CameraIntrinsics(K, self.distortion, (W, H), f"{self.source}, scaled to {W} x {H}")


def intrinsics_from_fov(W: int, H: int, fov_deg: float) -> CameraIntrinsics:
    """A guess: square pixels, the principal point at the image centre and a horizontal field of view.

    Example:
        >>> round(intrinsics_from_fov(640, 480, 90.0).K[0, 0].item(), 3)
        320.0
    """
    if not 0 < fov_deg < 180 or not math.isfinite(fov_deg):
        raise ValueError(f"--fov must be a horizontal field of view in (0, 180) degrees, got {fov_deg}")
    f = 0.5 * W / math.tan(math.radians(fov_deg) / 2)
    K = make_intrinsics(f, f, (W - 1) / 2, (H - 1) / 2, dtype=torch.float64)
    guess = f"a guess: {fov_deg:g} degree horizontal field of view, centred principal point"
    return CameraIntrinsics(K, torch.zeros(5, dtype=torch.float64), (W, H), guess)


def _numbers(path: Path, what: str, value, n: int) -> list[float]:
    flat = torch.as_tensor(value, dtype=torch.float64).reshape(-1) if value is not None else None
    if flat is None or flat.numel() != n or not bool(torch.isfinite(flat).all()):
        raise FormatError(f"{path}: {what} must be {n} finite numbers, got {value!r}")
    return flat.tolist()


def _from_json(path: Path, meta) -> CameraIntrinsics:
    if isinstance(meta, dict) and isinstance(meta.get("files"), list) and "K" not in meta and "cam_in" not in meta:
        cams = [f.get("cam_in") for f in meta["files"] if isinstance(f, dict)]
        if not cams or any(c is None or c != cams[0] for c in cams):
            raise FormatError(f"{path}: an annotation file needs one cam_in shared by all its files")
        meta = {"cam_in": cams[0]}
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: expected a JSON object with K (or fx, fy, cx, cy)")
    try:
        if "K" in meta:
            k = _numbers(path, "K", meta["K"], 9)
            if k[3] != 0 or k[6] != 0 or k[7] != 0 or k[8] != 1:
                raise FormatError(f"{path}: K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got {meta['K']!r}")
            fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        elif "cam_in" in meta:
            fx, fy, cx, cy = _numbers(path, "cam_in", meta["cam_in"], 4)
        else:
            fx = meta.get("fx", meta.get("fl_x"))
            fy = meta.get("fy", meta.get("fl_y", fx))
            fx, fy, cx, cy = _numbers(path, "fx, fy, cx, cy", [fx, fy, meta.get("cx"), meta.get("cy")], 4)
        dist = next((meta[k] for k in ("distortion", "dist_opencv_k1k2p1p2k3", "dist") if k in meta), None)
        if dist is None:
            dist = [meta.get(k, 0.0) for k in ("k1", "k2", "p1", "p2", "k3")]
        n = 4 if isinstance(dist, (list, tuple)) and len(dist) == 4 else 5  # k3 may be left out
        dist = _numbers(path, "distortion (k1, k2, p1, p2[, k3])", dist, n) + [0.0] * (5 - n)
        W, H = meta.get("width", meta.get("w")), meta.get("height", meta.get("h"))
    except (TypeError, ValueError, RuntimeError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{path}: malformed intrinsics ({e})") from None
    size = None
    if W is not None or H is not None:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1 and v == int(v) for v in (W, H)):
            raise FormatError(f"{path}: width and height must be positive integers, got {W!r} x {H!r}")
        size = (int(W), int(H))
    if fx <= 0 or fy <= 0:
        raise FormatError(f"{path}: focal lengths must be positive, got fx={fx:g}, fy={fy:g}")
    K = make_intrinsics(fx, fy, cx, cy, dtype=torch.float64)
    return CameraIntrinsics(K, torch.tensor(dist, dtype=torch.float64), size, f"intrinsics file {path}")


def read_intrinsics(path: str | Path) -> CameraIntrinsics:
    """Read a JSON intrinsics file (see the module's docstring), a KITTI object ``calib`` file (``P2``) or a
    KITTI raw ``calib_cam_to_cam.txt`` (``P_rect_02`` and ``S_rect_02``).

    Raises:
        MissingFileError: no such file.
        FormatError: a file of none of these forms, or impossible values (NaN, focal length <= 0).
    """
    path = require_file(path, "intrinsics file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text file (expected JSON or a KITTI calib file)") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: not valid JSON ({e})") from None
        return _from_json(path, meta)
    from .kitti import read_kitti_calib
    from .kitti_raw import read_kitti_cam_to_cam

    if "P_rect_02" in text:
        cal = read_kitti_cam_to_cam(path)
        W, H = (int(v) for v in cal["size"].tolist())
        return CameraIntrinsics(cal["K"], torch.zeros(5, dtype=torch.float64), (W, H),
                                f"KITTI calib_cam_to_cam file {path} (camera 2, rectified)")  # fmt: skip
    if "P2" in text:
        return CameraIntrinsics(read_kitti_calib(path)["K"], torch.zeros(5, dtype=torch.float64), None,
                                f"KITTI calib file {path} (P2)")  # fmt: skip
    raise FormatError(f"{path}: neither JSON intrinsics nor a KITTI calib file (no P2 or P_rect_02 entry)")


def camera_for_image(intrinsics: str | Path | None, fov: float | None, W: int, H: int) -> CameraIntrinsics:
    """The camera of a user's ``W x H`` image: from an intrinsics file (``--intrinsics``), else a guess from
    a horizontal field of view (``--fov``).

    Raises:
        ValueError: neither is given (the message says what to pass); FormatError, MissingFileError: a
            bad or missing intrinsics file, or one calibrated for another aspect ratio.
    """
    if intrinsics is not None:
        return read_intrinsics(intrinsics).for_image(W, H)
    if fov is not None:
        return intrinsics_from_fov(W, H, fov)
    raise ValueError("this needs the camera: give --intrinsics FILE (JSON with K, or a KITTI calib file) "
                     "or --fov DEGREES for a guess from the horizontal field of view")  # fmt: skip
