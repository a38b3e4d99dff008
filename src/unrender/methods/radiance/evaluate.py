"""Held-out views of a fitted radiance grid, scored against the nearest training image reprojected.

The baseline takes, for each held-out camera, the nearest training camera (centre distance and viewing
direction, :func:`unrender.data.capture.nearest_views`) and reprojects its image into the held-out camera
through a proxy surface: ``plane``, the plane through the capture's look-at point facing the held-out
camera (what is known without fitting anything), and ``depth``, the fitted grid's own depth (the fit's
geometry with the training image's colours: what the fitted colours add beyond it). Pixels that fall
outside the training image or behind its camera are black.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...data.capture import nearest_views
from ...geometry import distort_points, pixels_to_normalized, project_points, transform_points
from ...metrics import psnr, ssim
from .config import RadianceConfig
from .data import CaptureViews, load_views, view_rays
from .model import RadianceGrid

__all__ = ["evaluate_radiance", "render_rays", "reproject"]


def render_rays(model: RadianceGrid, origins: torch.Tensor, directions: torch.Tensor, chunk: int) -> dict:
    """:meth:`RadianceGrid.forward` over many rays, ``chunk`` at a time, without gradients; on the CPU."""
    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for i in range(0, len(origins), chunk):
            out = model(origins[i : i + chunk].to(device), directions[i : i + chunk].to(device))
            parts.append({k: out[k].float().cpu() for k in ("rgb", "depth", "opacity")})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def reproject(image: torch.Tensor, K: torch.Tensor, cam_from_world: torch.Tensor, distortion: torch.Tensor | None,
              points: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Colours ``(P, 3)`` that a camera's ``image (3, H, W)`` saw at world points ``(P, 3)``: projected through
    its lens (``distortion``: OpenCV's five coefficients, or None), sampled bilinearly; black where a point is
    behind the camera or outside the image."""
    H, W = image.shape[-2:]
    p = transform_points(cam_from_world.to(points), points)
    z = p[:, 2:]
    xy = p[:, :2] / z.clamp(min=1e-9)
    if distortion is not None:
        xy = distort_points(xy, distortion.to(xy))
    uv = project_points(torch.cat([xy, torch.ones_like(z)], -1), K.to(points))[0]
    grid = pixels_to_normalized(uv, H, W).float().reshape(1, 1, -1, 2)
    colour = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return colour[0, :, 0].T * (z > 1e-6).float()


def _plane_depth(origins: torch.Tensor, directions: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Distance ``(R, 1)`` along each ray to the plane through the origin perpendicular to ``axis``."""
    return (-(origins @ axis) / (directions @ axis).clamp(min=1e-6))[:, None]


def evaluate_views(model: RadianceGrid, views: CaptureViews, chunk: int) -> dict[str, Any]:
    """PSNR/SSIM of the fit and of the reprojection baselines on the held-out views (means), and a picture."""
    H, W = views.images.shape[-2:]
    T_train = views.cam_from_world[views.train]
    scores: dict[str, list[float]] = {}
    picture = None
    for n, i in enumerate(tqdm(views.held_out, desc="eval radiance", unit="view", dynamic_ncols=True)):
        o, d = view_rays(views, i)
        out = render_rays(model, o, d, chunk)
        truth = views.images[i]
        src = views.train[nearest_views(T_train, views.cam_from_world[i], 1)[0]]
        axis = torch.linalg.inv(views.cam_from_world[i])[:3, 2].float()
        plane = _plane_depth(o, d, axis)
        fitted = torch.where(out["opacity"] > 0.5, out["depth"], plane)
        images = {"fit": out["rgb"]}
        for name, depth in (("nearest_plane", plane), ("nearest_depth", fitted)):
            pts = (o + d * depth).double()
            images[name] = reproject(views.images[src], views.K[src], views.cam_from_world[src], views.distortion, pts)
        for name, img in images.items():
            img = img.T.reshape(3, H, W).clamp(0, 1)
            scores.setdefault(f"{name}/psnr", []).append(float(psnr(img[None], truth[None])))
            scores.setdefault(f"{name}/ssim", []).append(float(ssim(img[None], truth[None])))
            images[name] = img
        if n == min(1, len(views.held_out) - 1):
            picture = _picture(truth, images, out["depth"].reshape(H, W), views.images[src])
    out = {k: float(np.mean(v)) for k, v in scores.items()}
    out["held_out_views"] = len(views.held_out)
    out["gain_over_reprojection"] = out["fit/psnr"] - max(out["nearest_plane/psnr"], out["nearest_depth/psnr"])
    out["images"] = {"held-out view: truth | fit | nearest training image | reprojected (plane) | "
                     "reprojected (fitted depth) | fitted depth": picture}  # fmt: skip
    return out


def _picture(truth, images, depth, nearest) -> np.ndarray:
    from ...viz import colorize_depth, image_grid, to_uint8

    H, W = truth.shape[-2:]
    near = F.interpolate(nearest[None], (H, W), mode="bilinear", align_corners=False)[0]
    d = depth.clamp(max=float(depth.quantile(0.95)))
    row = [to_uint8(truth), to_uint8(images["fit"]), to_uint8(near), to_uint8(images["nearest_plane"]),
           to_uint8(images["nearest_depth"]), colorize_depth(d)]  # fmt: skip
    return image_grid([row])


def evaluate_radiance(model: RadianceGrid, cfg: RadianceConfig, device: torch.device) -> dict[str, Any]:
    """The held-out views of the capture (every ``data.holdout``-th image): PSNR and SSIM of the fit and of
    the nearest training image reprojected (``plane`` and fitted ``depth``)."""
    d = cfg.data
    views = load_views(Path(d.capture), d.downscale, d.holdout)
    if not views.held_out:
        return {"held_out_views": 0}
    return evaluate_views(model, views, cfg.eval.chunk)
