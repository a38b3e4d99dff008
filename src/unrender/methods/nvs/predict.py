"""``unrender predict nvs``: a posed capture and target cameras -> rendered views.

Target cameras come from another ``transforms.json`` (``--targets``; where its images exist they are
scored, next to copying the nearest input view), from the capture itself (``--holdout N``: every N-th
view is held out of the inputs and scored, the LLFF protocol with N = 8), or from an orbit around the
capture (``--orbit N``: N cameras on a circle around the point the capture's cameras look at, at their
mean distance and height). Images are undistorted when the file gives lens distortion (k1, k2, p1, p2).
For each target the model sees the ``num_input`` capture views nearest to it (camera centre
distance plus viewing-direction difference), fitted to its input size like the training views.

The capture (a transforms.json, or a RealEstate10K camera file with its frames) is moved and scaled
before the model sees it, and the orbit is built there (:mod:`unrender.data.capture`).

Writes, under ``--out``: ``view_<i>.png`` per target (the model's output), ``views.mp4``, and
``predictions.json`` (the normalisation, per target the input views used and, with ground truth, PSNR
and SSIM of the model and of the nearest input view).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...data.capture import capture_frame, nearest_views, normalise, orbit_cameras, read_capture
from ...data.formats import VideoWriter, fit_intrinsics, fit_view_undistorted, read_rgb

__all__ = ["NVSPredictArgs", "eval_capture", "predict_nvs_files"]


@dataclass
class NVSPredictArgs:
    """``unrender predict nvs`` arguments."""

    input: Path
    """The capture: a transforms.json (instant-ngp / NeRF layout) with its images."""
    targets: Path | None = None
    """Target cameras: another transforms.json (its images, where present, are scored)."""
    holdout: int = 0
    """Instead: hold every N-th view of the capture out of the inputs and render and score it (8: LLFF)."""
    orbit: int = 0
    """Instead: this many target cameras on an orbit around the capture."""
    ckpt: Path | None = None
    """An nvs checkpoint or run folder; default: the shipped weights."""
    out: Path = Path("predictions/nvs")
    """Where the PNGs, views.mp4 and predictions.json go."""
    fps: float = 8.0
    """Frame rate of views.mp4."""
    device: str = "auto"


def predict_nvs_files(args: NVSPredictArgs) -> dict[str, Any]:
    """Render target cameras (another transforms.json, or an orbit) from a transforms.json capture: one PNG
    per target, views.mp4 and predictions.json under --out."""
    from ...io import atomic_write_text
    from ...metrics import psnr, ssim
    from ...viz import save_png, to_uint8
    from ...weights import load_trained

    if (args.targets is not None) + (args.holdout > 0) + (args.orbit > 0) != 1 or min(args.holdout, args.orbit) < 0:
        raise ValueError("give the target cameras: --targets TRANSFORMS_JSON, --holdout N or --orbit N (one of them)")
    if not args.fps > 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    capture = read_capture(args.input)
    cfg, model, ck_path, device = load_trained("nvs", args.ckpt, args.device)
    d = cfg.data
    centre, scale, how = capture_frame(capture.cam_from_world)
    T_all = normalise(capture.cam_from_world, centre, scale)
    n = len(capture.paths)
    keep = [i for i in range(n) if not (args.holdout and i % args.holdout == 0)]
    if len(keep) < d.num_input:
        raise ValueError(f"{args.input}: {len(keep)} input views with images; the model needs {d.num_input}")
    T_in = T_all[keep]
    dist = capture.distortion
    views = [fit_view_undistorted(read_rgb(capture.paths[i]), capture.K[i], dist, d.height, d.width) for i in keep]
    inputs = [capture.paths[i] for i in keep]
    if args.targets is not None:
        tg = read_capture(args.targets)
        T_tg, K_tg, paths, size = normalise(tg.cam_from_world, centre, scale), tg.K, tg.paths, tg.size
        dist_tg = tg.distortion
    elif args.holdout:
        held = [i for i in range(n) if i % args.holdout == 0]
        T_tg, K_tg, paths = T_all[held], capture.K[held], [capture.paths[i] for i in held]
        size, dist_tg = capture.size, dist
    else:
        T_tg = orbit_cameras(T_in, args.orbit)
        K_tg, paths, size, dist_tg = capture.K[:1].expand(args.orbit, 3, 3), [], capture.size, dist
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "checkpoint": str(ck_path), "input": str(args.input), "views": [],
        "normalisation": {"centre": centre.tolist(), "scale": scale, "how": how},
        "targets": str(args.targets) if args.targets is not None else (
            f"every {args.holdout}-th view of the capture, held out" if args.holdout
            else f"orbit of {args.orbit} cameras"),
        "undistorted": bool((dist != 0).any()),
    }  # fmt: skip
    video = VideoWriter(args.out / "views.mp4", fps=args.fps)
    try:
        for i in tqdm(range(len(T_tg)), desc="predict nvs", unit="view", dynamic_ncols=True):
            chosen = nearest_views(T_in, T_tg[i], d.num_input)
            if i < len(paths):  # a target with its image: scored
                gt_img, Kt = fit_view_undistorted(read_rgb(paths[i]), K_tg[i], dist_tg, d.height, d.width)
            else:
                gt_img, Kt = None, fit_intrinsics(K_tg[i], *size, d.height, d.width)
            batch = {
                "images": torch.stack([views[j][0] for j in chosen])[None],
                "K": torch.stack([views[j][1] for j in chosen])[None].float(),
                "cam_from_world": T_in[chosen][None].float(),
                "target_K": Kt[None, None].float(),
                "target_cam_from_world": T_tg[i][None, None].float(),
            }
            with torch.no_grad():
                pred = model({k: v.to(device) for k, v in batch.items()})[0, 0].float().clamp(0, 1).cpu()
            image = to_uint8(pred)
            path = save_png(args.out / f"view_{i:04d}.png", image)
            video.add(image)
            entry: dict[str, Any] = {"png": str(path), "inputs": [str(inputs[j]) for j in chosen]}
            if i < len(paths):
                entry["target"] = str(paths[i])
            if gt_img is not None:
                near = views[chosen[0]][0]
                for name, img in (("", pred), ("nearest_view_", near)):
                    entry[f"{name}psnr"] = float(psnr(img[None], gt_img[None]))
                    entry[f"{name}ssim"] = float(ssim(img[None], gt_img[None]))
            summary["views"].append(entry)
    except BaseException:
        video.abort()
        raise
    summary["video"] = str(video.close())
    scored = [v for v in summary["views"] if "psnr" in v]
    for key in ("psnr", "ssim", "nearest_view_psnr", "nearest_view_ssim"):
        if scored:
            summary[f"mean {key}"] = sum(v[key] for v in scored) / len(scored)
    atomic_write_text(args.out / "predictions.json", json.dumps(summary, indent=2))
    result = {
        "views": len(summary["views"]),
        "out": str(args.out),
        "video": summary["video"],
        "checkpoint": str(ck_path),
    }
    result.update({k: v for k, v in summary.items() if k.startswith("mean ")})
    return result


def eval_capture(ckpt: Path, data: Path, out: Path, device: str) -> dict[str, float]:
    """A capture (transforms.json, or a RealEstate10K camera file with its frames), LLFF protocol: every
    8th view held out and rendered from the nearest others; PSNR and SSIM of the model and of copying the
    nearest input view, averaged over the held-out views."""
    r = predict_nvs_files(NVSPredictArgs(input=data, holdout=8, ckpt=ckpt, out=out / "predictions", device=device))
    keys = {"mean psnr": "model/psnr", "mean ssim": "model/ssim", "mean nearest_view_psnr": "nearest/psnr",
            "mean nearest_view_ssim": "nearest/ssim"}  # fmt: skip
    result = {"targets": r["views"], **{name: float(r[k]) for k, name in keys.items()}}
    result["psnr_gain_over_nearest"] = result["model/psnr"] - result["nearest/psnr"]
    return result
