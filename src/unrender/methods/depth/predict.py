"""``unrender predict depth``: a trained depth model on the user's own image, folder of frames or video.

For every frame it writes, under ``--out``:

* ``<frame>_depth.png``: depth in the KITTI convention (uint16, metres x 256, 0 = no prediction), in
  the pixel grid of the input (undistorted when the intrinsics give a distortion); pixels outside the
  part the model saw (a centred crop with the aspect ratio it was trained on) are 0;
* ``<frame>_preview.png``: the input crop, the colour-mapped depth and a colour bar in metres;
* ``<frame>.ply``: the point cloud (camera frame: x right, y down, z forward, metres) with colours;
* ``depth_preview.mp4`` (a video input, or ``--video``): the previews as a video at the input's rate;

and ``predictions.json``: the camera used and where it came from, where the metric scale comes from,
and per frame the files, the median depth and the camera height above a road plane fitted to the
bottom centre of the depth map.

Depth is corrected for the camera: the model judges distance by apparent size, learned at the
training camera's focal length ``f_train``; at focal length ``f`` (in the model's input pixels) the
same picture means a depth ``f / f_train`` times larger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...data.formats import (
    VIDEO_SUFFIXES,
    CameraIntrinsics,
    VideoWriter,
    camera_for_image,
    fit_view_crop,
    fit_view_undistorted,
    iter_frames,
    video_frame_rate,
    write_kitti_depth_png,
    write_ply,
)
from ...geometry import depth_to_points
from .config import DepthConfig
from .model import DepthModel
from .scale import plane_from_point_map

__all__ = ["DepthPredictArgs", "eval_kitti_depth", "predict_depth_files", "training_camera"]


@dataclass
class DepthPredictArgs:
    """``unrender predict depth`` arguments."""

    input: Path
    """An image, a folder of frames (in name order) or a video file."""
    ckpt: Path | None = None
    """A depth checkpoint folder, or a run folder (its newest checkpoint); default: the shipped weights."""
    intrinsics: Path | None = None
    """The camera: a JSON file with K (and optional distortion k1 k2 p1 p2 k3, width, height), or a KITTI
    calib file."""
    fov: float | None = None
    """Without --intrinsics: guess the camera from this horizontal field of view in degrees (the output
    says it is a guess)."""
    out: Path = Path("predictions/depth")
    """Where the depth PNGs, previews, PLY files and predictions.json go."""
    every: int = 1
    """Use every n-th frame of a video or folder."""
    max_frames: int = 0
    """Stop after this many frames (0: all)."""
    max_depth: float = 80.0
    """Far end of the previews' colour scale, metres."""
    ply: bool = True
    """Write a PLY point cloud per frame."""
    video: bool | None = None
    """Write the previews as depth_preview.mp4 (default: when the input is a video)."""
    gt: Path | None = None
    """Ground-truth depth to score against: a KITTI depth PNG, or a folder of them named like the frames
    (KITTI protocol: Garg/Eigen crop, 1e-3 to 80 m, unscaled and median-scaled; pixels the model did not
    see are left out)."""
    device: str = "auto"


def training_camera(cfg: DepthConfig) -> tuple[int, int, float]:
    """``(H, W, f)``: the image size the model was trained at and the focal length in its pixels."""
    if cfg.data.kitti_raw is not None:
        from ...data.formats import read_kitti_raw

        d = read_kitti_raw(cfg.data.kitti_raw)[0]
        return d.height, d.width, float(d.K[0, 0])
    from ...world.generators import STREET_FX_OVER_W

    return cfg.data.height, cfg.data.width, STREET_FX_OVER_W * cfg.data.width


def _scale_source(cfg: DepthConfig, model: DepthModel, f_ratio: float) -> dict[str, Any]:
    learned = float(torch.as_tensor(model.metric_scale()).detach())
    if cfg.scale.enabled:
        what = ("learned metric scale: object heights (D = f H / h) and a constant camera height during training, "
                f"x {f_ratio:.3f} for this camera's focal length")  # fmt: skip
    else:
        what = "none: self-supervised without metric scale, so depth is relative (its unit is arbitrary)"
    return {"source": what, "learned_scale": learned, "focal_ratio": f_ratio, "metric": bool(cfg.scale.enabled)}


def _road_height(depth: torch.Tensor, K: torch.Tensor) -> float | None:
    """Camera height above a plane fitted to the bottom-centre of a depth map (where a road usually is)."""
    H, W = depth.shape[-2:]
    pts = depth_to_points(depth.double(), K.double())  # (H, W, 3)
    valid = torch.zeros(H, W, dtype=torch.bool)
    valid[int(0.75 * H) :, int(0.25 * W) : int(0.75 * W)] = True
    valid &= depth[0] > 0
    fit = plane_from_point_map(pts[None], valid[None], min_points=8)
    return float(fit["height"][0]) if bool(fit["ok"][0]) else None


def _score(gt_path: Path, name: str, pred: torch.Tensor) -> dict[str, Any]:
    """KITTI-protocol errors of one frame's full-size prediction against its ground-truth PNG."""
    from ...data.formats import read_kitti_depth_png
    from ...data.formats.errors import MissingFileError
    from ...metrics import depth_metrics

    path = gt_path / f"{name}.png" if gt_path.is_dir() else gt_path
    if not path.is_file():
        raise MissingFileError(f"ground truth for frame {name!r} not found: {path}")
    gt = read_kitti_depth_png(path)
    if gt.shape != pred.shape:
        raise ValueError(f"{path}: ground truth is {tuple(gt.shape[-2:])}, the frame {tuple(pred.shape[-2:])}")
    seen = torch.where(pred > 0, pred, torch.full_like(pred, float("nan")))[None]
    out: dict[str, Any] = {"gt": str(path), "gt_pixels_scored": float(((gt > 0) & (pred > 0)).float().mean())}
    for mode, median in (("unscaled", False), ("median", True)):
        m = depth_metrics(seen, gt[None], crop="eigen", max_depth=80.0, median_scaling=median)
        out.update({f"{mode}/{k}": float(v[0]) for k, v in m.items()})
    return out


def predict_depth_files(args: DepthPredictArgs) -> dict[str, Any]:
    """Run a trained depth model on an image, a folder of frames or a video: writes KITTI-style depth
    PNGs, previews with a colour bar, PLY point clouds and predictions.json under --out."""
    from ...io import atomic_write_text
    from ...weights import load_trained

    if not args.max_depth > 0 or args.every < 1 or args.max_frames < 0:
        raise ValueError("--max-depth must be > 0, --every >= 1 and --max-frames >= 0")
    if args.intrinsics is None and args.fov is None:
        camera_for_image(None, None, 1, 1)  # says what to give, before any work
    cfg, model, ck_path, device = load_trained("depth", args.ckpt, args.device)
    Hn, Wn, f_train = training_camera(cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"checkpoint": str(ck_path), "input": str(args.input), "frames": []}
    is_video = args.input.is_file() and args.input.suffix.lower() in VIDEO_SUFFIXES
    video = None
    if args.video or (args.video is None and is_video):
        fps = video_frame_rate(args.input) / args.every if is_video else 10.0
        video = VideoWriter(args.out / "depth_preview.mp4", fps=fps)
    with tqdm(desc="predict depth", unit="frame", dynamic_ncols=True) as bar:  # closed (a new line) on errors too
        try:
            _predict_frames(args, model, cfg, device, (Hn, Wn, f_train), summary, bar, video)
        except BaseException:
            if video is not None:
                video.abort()
            raise
    if video is not None:
        summary["video"] = str(video.close())
    summary["ply_frame"] = "camera frame of the (undistorted) input: x right, y down, z forward, metres"
    atomic_write_text(args.out / "predictions.json", json.dumps(summary, indent=2))
    result = {"frames": len(summary["frames"]), "out": str(args.out), "metric_scale": summary["metric_scale"]["source"],
              "camera": summary["camera"]["source"]}  # fmt: skip
    if "video" in summary:
        result["video"] = summary["video"]
    return result


def _predict_frames(args: DepthPredictArgs, model: DepthModel, cfg: DepthConfig, device: torch.device,
                    camera: tuple[int, int, float], summary: dict[str, Any], bar: tqdm,
                    video: VideoWriter | None) -> None:  # fmt: skip
    from ...viz import colorize_depth, depth_colorbar, image_grid, save_png, to_uint8

    Hn, Wn, f_train = camera
    cam: CameraIntrinsics | None = None
    for name, rgb in iter_frames(args.input, every=args.every, max_frames=args.max_frames):
        H0, W0 = rgb.shape[-2:]
        new_camera = cam is None or cam.size != (W0, H0)
        if new_camera:
            cam = camera_for_image(args.intrinsics, args.fov, W0, H0)
            summary["camera"] = {"K": cam.K.tolist(), "distortion_k1k2p1p2k3": cam.distortion.tolist(),
                                 "image_size_wh": [W0, H0], "source": cam.source, "undistorted": cam.distorted,
                                 "model_input_hw": [Hn, Wn]}  # fmt: skip
        net_img, Kn = fit_view_undistorted(rgb, cam.K, cam.distortion, Hn, Wn)
        f_ratio = float(Kn[0, 0]) / f_train
        with torch.no_grad():
            depth = model.predict_depth(net_img[None].to(device))[0].float().cpu() * f_ratio  # (1, Hn, Wn)
        if new_camera:
            summary["metric_scale"] = _scale_source(cfg, model, f_ratio)
        # the full frame: the model's crop resized back; 0 where the model saw nothing
        top, left, ch, cw = fit_view_crop(H0, W0, Hn, Wn)
        full = torch.zeros(1, H0, W0)
        full[:, top : top + ch, left : left + cw] = F.interpolate(depth[None], (ch, cw), mode="nearest")[0]
        files = {"depth_png": write_kitti_depth_png(args.out / f"{name}_depth.png", full)}
        lo = max(0.5, float(depth[depth > 0].min())) if bool((depth > 0).any()) else 1.0
        hi = max(args.max_depth, lo * 1.5)
        shown = [to_uint8(net_img.permute(1, 2, 0)), colorize_depth(depth[0], min_depth=lo, max_depth=hi)]
        scale = max(1, round(400 / Wn))
        preview = image_grid([shown], scale=scale)
        bar_img = depth_colorbar(preview.shape[0], lo, hi)
        shown_all = np.concatenate([preview, bar_img], 1)
        files["preview"] = save_png(args.out / f"{name}_preview.png", shown_all)
        if video is not None:
            video.add(shown_all)
        if args.ply:
            pts = depth_to_points(depth.double(), Kn.double()).reshape(-1, 3)
            keep = depth.reshape(-1) > 0
            write_ply(args.out / f"{name}.ply", pts[keep], net_img.permute(1, 2, 0).reshape(-1, 3)[keep])
            files["ply"] = args.out / f"{name}.ply"
        summary["frames"].append({
            "name": name, **{k: str(v) for k, v in files.items()},
            "median_depth_m": float(depth[depth > 0].median()) if bool((depth > 0).any()) else None,
            "camera_height_m": _road_height(depth, Kn),
            **(_score(args.gt, name, full) if args.gt is not None else {}),
        })  # fmt: skip
        bar.update(1)
    if args.gt is not None:
        for key in ("unscaled/abs_rel", "median/abs_rel", "median/scale"):
            vals = [f[key] for f in summary["frames"] if f.get(key) is not None]
            summary[f"mean {key}"] = float(np.mean(vals)) if vals else None


def eval_kitti_depth(ckpt: Path, data: Path, out: Path, device: str) -> dict[str, float]:
    """KITTI depth protocol on a folder of frames with ground truth: ``rgb/*.png``, ``depth/*.png``
    (uint16, metres x 256, named like the frames) and the camera (``intrinsics.json`` or Metric3D's
    ``test_annotations.json``): Garg/Eigen crop, 1e-3 to 80 m, unscaled and median-scaled, over the
    pixels the model sees; the mean over frames of each metric."""
    from ...data.formats.errors import MissingFileError

    K = next((p for p in (data / "intrinsics.json", data / "test_annotations.json") if p.is_file()), None)
    if K is None or not (data / "rgb").is_dir() or not (data / "depth").is_dir():
        raise MissingFileError(f"{data}: a kitti-depth folder holds rgb/, depth/ and intrinsics.json "
                               "(or test_annotations.json)")  # fmt: skip
    args = DepthPredictArgs(input=data / "rgb", ckpt=ckpt, intrinsics=K, gt=data / "depth", out=out / "predictions",
                            ply=False, device=device)  # fmt: skip
    predict_depth_files(args)
    frames = json.loads((args.out / "predictions.json").read_text())["frames"]
    keys = [k for k in frames[0] if k.startswith(("unscaled/", "median/"))]
    result: dict[str, float] = {"frames": len(frames)}
    result["gt_pixels_scored"] = float(np.mean([f["gt_pixels_scored"] for f in frames]))
    result.update({k: float(np.mean([f[k] for f in frames])) for k in keys})
    heights = [f["camera_height_m"] for f in frames if f["camera_height_m"] is not None]
    if heights:
        result["camera_height_m"] = float(np.median(heights))
    return result
