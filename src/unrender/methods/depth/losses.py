"""Losses of metric monocular depth; each term is a mean over the batch's samples.

Self-supervised base (Monodepth2): photometric error ``0.85 (1 - SSIM) / 2 + 0.15 L1`` (3x3 SSIM),
per-pixel minimum over the previous and next frame, auto-masking of pixels that the unwarped
source explains better (static scenes, objects moving with the camera), every scale's disparity
upsampled and judged at full resolution, edge-aware smoothness ``1e-3 / 2^s`` on mean-normalised
disparity at each scale.

Metric scale: a per-pixel object-height loss ``|D_p h / f_y - H_prior|`` in every kept object's
mask, its weight decaying every epoch, and a camera-height loss ``|H_c(pred) - target|`` whose
weight grows as the object weight decays and which moves only the model's one metric scale; the
target is the camera height implied by the object scales, the median over each epoch's frames (see
:func:`update_camera_target`). A road-plane loss (:func:`road_plane_loss`) pulls every road pixel
onto the plane that contains the direction of travel of the refined poses and best fits the road
(:func:`unrender.methods.depth.scale.plane_containing`). The camera-height target comes from the
vehicles' footprints on the road plane the depth implies (``scale.camera_source``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...geometry import depth_to_points
from ...render import inverse_warp
from .config import DepthConfig
from .model import DepthModel
from .scale import (
    abnormal_objects,
    footprint_camera_height,
    horizon_row,
    mask_extents,
    object_scales,
    plane_containing,
    plane_from_point_map,
)

__all__ = [
    "ssim_dissimilarity",
    "photometric_error",
    "edge_aware_smoothness",
    "prior_heights",
    "scale_weights",
    "frame_geometry",
    "update_camera_target",
    "camera_height_loss",
    "road_plane_loss",
    "road_travel_loss",
    "travel_direction",
    "road_tilt_deg",
    "road_diagnostics",
    "road_gradients",
    "ROAD_COLLAPSE_DEG",
    "depth_losses",
]


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(1 - SSIM) / 2`` per pixel with a 3x3 mean window and reflection padding, clamped to [0, 1].

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(ssim_dissimilarity(x, x).max()) < 1e-6
        True
    """
    c1, c2 = 0.01**2, 0.03**2
    C = x.shape[1]
    # the five local means in one depthwise 3x3 box filter (several times faster on CPU than
    # five avg_pool2d calls; same values)
    stats = F.pad(torch.cat([x, y, x * x, y * y, x * y], 1), (1, 1, 1, 1), mode="reflect")
    box = torch.full((5 * C, 1, 3, 3), 1 / 9, dtype=x.dtype, device=x.device)
    mx, my, xx, yy, xy = F.conv2d(stats, box, groups=5 * C).split(C, 1)
    sx, sy, sxy = xx - mx**2, yy - my**2, xy - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sx + sy + c2))
    return ((1 - ssim) / 2).clamp(0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.85) -> torch.Tensor:
    """``alpha (1 - SSIM)/2 + (1 - alpha) L1``, averaged over channels: ``(B, C, H, W)`` -> ``(B, 1, H, W)``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> photometric_error(x, x).shape, float(photometric_error(x, x).max()) < 1e-6
        (torch.Size([2, 1, 8, 8]), True)
    """
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return alpha * ssim_dissimilarity(pred, target).mean(1, keepdim=True) + (1 - alpha) * l1


def edge_aware_smoothness(disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness of mean-normalised disparity, per sample ``(B,)``.

    Example:
        >>> edge_aware_smoothness(torch.ones(2, 1, 4, 4), torch.rand(2, 3, 4, 4))
        tensor([0., 0.])
    """
    d = disp / disp.mean((2, 3), keepdim=True).clamp(min=1e-7)
    dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).flatten(1).mean(1) + (dy * torch.exp(-iy)).flatten(1).mean(1)


def prior_heights(labels: torch.Tensor, cfg: DepthConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Class priors (mean, std) in metres for ``labels (B, M)`` (0 car, 1 pedestrian, -1 padding: NaN)."""
    table = torch.tensor([cfg.scale.car_height, cfg.scale.pedestrian_height], dtype=torch.float32, device=labels.device)
    got = table[labels.clamp(min=0)]
    nan = torch.full_like(got, float("nan"))
    got = torch.where((labels >= 0)[..., None], got, nan)
    return got[..., 0], got[..., 1]


def scale_weights(epoch: int, cfg: DepthConfig) -> tuple[float, float, float]:
    """Object-height, camera-height and road loss weights at ``epoch``: the first decays, the second grows
    as it does, the third drops to ``road_settled_weight`` once the road has been levelled (the epochs the
    camera-height target is frozen for)."""
    s = cfg.scale
    frac = max(s.object_floor, s.object_decay**epoch)
    road = s.road_weight if epoch < s.camera_freeze_epochs else s.road_settled_weight
    return s.object_weight * frac, s.camera_weight * (1 - frac), road


def frame_geometry(depth: torch.Tensor, batch: dict[str, torch.Tensor], cfg: DepthConfig) -> dict[str, torch.Tensor]:
    """Road plane, object extents, the abnormal-object filter and the object scales of each frame.

    Args:
        depth: ``(B, 1, H, W)`` predicted depth; batch: ``K``, ``masks``, ``labels``, ``road``.

    Returns:
        ``points (B, H, W, 3)``, ``road (B, H, W)`` (road pixels with a depth), ``plane`` (the road plane
        the depth implies, :func:`plane_from_point_map`), ``horizon (B,)``, ``extents``, ``prior (B, M)``,
        ``keep (B, M)`` and the :func:`object_scales` outputs.
    """
    s = cfg.scale
    K = batch["K"].to(depth.dtype)
    road = batch["road"][:, 0] & (depth[:, 0] > 0)
    points = depth_to_points(depth, K)
    plane = plane_from_point_map(points, road)
    horizon = horizon_row(plane["normal"].detach(), K)
    ext = mask_extents(batch["masks"])
    prior, _ = prior_heights(batch["labels"], cfg)
    valid = batch["labels"] >= 0
    if s.filter:
        bad = abnormal_objects(ext, prior, horizon, valid, min_height_px=s.min_height_px, min_pixels=s.min_pixels,
                               max_height_error=s.max_height_error)  # fmt: skip
    else:
        bad = ~valid | (ext["height"] <= 0)
    keep = ~bad
    sc = object_scales(depth, batch["masks"], K[:, 1, 1], prior, keep, q=s.quantile, extents=ext)
    return {"points": points, "road": road, "plane": plane, "horizon": horizon, "extents": ext, "prior": prior,
            "keep": keep, **sc}  # fmt: skip


@torch.no_grad()
def update_camera_target(model: DepthModel, implied: torch.Tensor, epoch: int, steps_per_epoch: int,
                         plane_heights: torch.Tensor | None = None, *, road_level: bool = True) -> None:  # fmt: skip
    """Collect this step's implied camera heights (and road-plane heights); at an epoch boundary, update
    the target (and, with ``camera_snap``, the metric scale).

    ``implied``: per object ``(B, M)`` (the footprint rule) or per frame ``(B,)``, NaN where none. The
    epoch's value is the median over all of them (an object with a wrong mask can imply a camera height
    off by 10x; a mean would follow it). Footprints enter one per object: a per-frame median first took
    the lower of a frame's two objects (``torch.median``): on the training frames with the true depth the
    epoch's value read 1.599 m per frame against 1.612 m per object. The target is neither updated
    nor used during the first ``camera_freeze_epochs`` epochs; after that the epoch's value enters
    with momentum, unless it jumps by more than ``camera_max_jump``x.

    ``road_level``: whether the epoch's road lay along the direction of travel (its median angle to it under
    :data:`ROAD_COLLAPSE_DEG`); an epoch whose did not neither updates the target nor snaps the scale: its
    footprints went through a road (or a motion) that is wrong (measured: a `tiny` run, whose pose net had
    seen 6 steps when the target was first set, set it at 6.7 m and the scale 8x).

    ``plane_heights (B,)`` are the frames' road-plane heights at metric scale 1 (the predicted plane's
    height over the metric scale it was predicted with; NaN: no plane). With ``scale.camera_snap`` the
    metric scale is set at each boundary so that their median over the epoch equals the new target.
    """
    s = model.cfg.scale
    n = len(model.camera_values)
    for ring, new in ((model.camera_values, implied), (model.plane_values, plane_heights)):
        if new is None:
            continue
        vals = new[torch.isfinite(new)].to(ring)
        start = int(torch.isfinite(ring).sum())  # each ring fills from 0 in an epoch; past n it wraps
        ring[(start + torch.arange(len(vals), device=vals.device)) % n] = vals
    if int(model.steps) % steps_per_epoch != 0:
        return
    got = model.camera_values[torch.isfinite(model.camera_values)]
    planes = model.plane_values[torch.isfinite(model.plane_values)]
    model.camera_values.fill_(float("nan"))
    model.plane_values.fill_(float("nan"))
    if epoch < s.camera_freeze_epochs or len(got) == 0 or not road_level:
        return
    new = got.quantile(0.5)
    t = model.camera_target
    if t <= 0:
        t.copy_(new)
    elif 1 / s.camera_max_jump <= new / t <= s.camera_max_jump:
        t.copy_(s.camera_momentum * t + (1 - s.camera_momentum) * new)
    if s.camera_snap and len(planes) and model.log_scale is not None:
        model.log_scale.copy_((t / planes.quantile(0.5)).log().to(model.log_scale))


def camera_height_loss(plane_height: torch.Tensor, target: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """``|H_c - target|`` averaged over the frames with a road plane; it moves only the model's
    global metric scale.

    ``H_c`` is the frame's plane height (detached) times ``exp(log_scale - its detached value)``: the
    same value, with the gradient going to the one scale that multiplies every depth and every
    translation. Through the plane fit itself the loss reshapes the depth map: it moves the road
    away from the objects that set the target, and the implied height and the target run away
    together (measured on streets 7: with the per-frame height the near road bent away; per road
    pixel the road tilted and the target drifted from 2.3 to 2.4 m in 1000 steps; the truth is
    1.65 m). Through a scale of the depth map alone the pose does not follow, and the photometric
    loss bends the structure instead (measured: median-scaled abs_rel 0.375 against 0.226).

    Args:
        plane_height: ``(B,)`` (NaN: no road plane); target: scalar metres; log_scale: scalar parameter.

    Example:
        >>> s = torch.zeros((), requires_grad=True)
        >>> camera_height_loss(torch.tensor([1.0, float("nan")]), torch.tensor(1.5), s).backward()
        >>> s.grad  # d|1 * e^s - 1.5| / ds at s = 0
        tensor(-1.)
    """
    ok = torch.isfinite(plane_height)
    # NaN heights are zeroed first: their gradient would be NaN * 0 = NaN
    scaled = torch.nan_to_num(plane_height.detach()) * torch.exp(log_scale - log_scale.detach())
    return (scaled[ok] - target).abs().mean()


def road_travel_loss(normal: torch.Tensor, src_from_tgt: torch.Tensor) -> torch.Tensor:
    """``|n . c|`` averaged over the frames with a road plane: the cosine between the road normal fitted
    to the predicted depth (:func:`plane_from_point_map`, with its gradient) and the direction of travel
    (:func:`travel_direction`). The earlier form of the road constraint (``scale.road_loss = "normal"``,
    kept for the ablation): a bent road whose mean normal is level satisfies it.

    Example:
        >>> T = torch.eye(4).repeat(1, 2, 1, 1)
        >>> T[0, 0, 2, 3], T[0, 1, 2, 3] = 1.0, -1.0  # the camera moves along +z
        >>> road_travel_loss(torch.tensor([[0.0, -1.0, 0.0]]), T)  # a level road
        tensor(0.)
    """
    chord = travel_direction(src_from_tgt)
    ok = torch.isfinite(normal).all(-1)
    cos = (torch.nan_to_num(normal) * chord.to(normal.dtype)).sum(-1).abs()
    return cos[ok].mean() if ok.any() else normal.new_zeros(())


def road_plane_loss(points: torch.Tensor, road: torch.Tensor, plane: dict[str, torch.Tensor]) -> torch.Tensor:
    """``|n . p + h| / h`` over each frame's road pixels, averaged over the frames with a plane: every
    road point is pulled onto the (detached) plane ``n . p = -h`` that contains the direction of travel
    (:func:`plane_containing`), so the road comes out flat and level with the motion.

    Unlike a loss on the fitted normal alone (the mean of pixel normals, which a bent road can satisfy
    and whose gradient is largest where neighbouring depths nearly coincide), each pixel's gradient is
    bounded and points along the plane's normal.

    Args:
        points: ``(B, H, W, 3)``; road: ``(B, H, W)`` bool; plane: ``normal (B, 3)``, ``height (B,)``.

    Example:
        >>> pts = torch.tensor([[[[0.0, 1.5, 5.0], [1.0, 2.0, 5.0]]]])  # two road points, 1.5 and 2 m below
        >>> plane = {"normal": torch.tensor([[0.0, -1.0, 0.0]]), "height": torch.tensor([2.0])}
        >>> road_plane_loss(pts, torch.ones(1, 1, 2, dtype=torch.bool), plane)  # (0.5 / 2 + 0) / 2
        tensor(0.1250)
    """
    n, h = plane["normal"].detach(), plane["height"].detach()
    count = road.flatten(1).sum(1).clamp(min=1)
    below = -(points * torch.nan_to_num(n)[:, None, None, :]).sum(-1)  # each point's height under the camera
    mean = torch.where(road, below, 0.0).flatten(1).sum(1) / count
    ok = torch.isfinite(h) & road.flatten(1).any(1) & (mean.detach().abs() > 1e-6)
    if not ok.any():
        return points.new_zeros(())
    # the plane's height times mean / mean.detach() (1 in value): the loss does not change when the whole
    # scene scales (no gradient along the global scale; the road's shape is this loss's business, the
    # scale is not). Frames without a plane or a road get a constant 1 and drop out through torch.where,
    # so that no 0 * inf reaches the gradient (it did: a run stopped on a NaN gradient).
    mean = torch.where(ok, mean, 1.0)
    hk = (torch.where(ok, h, 1.0).clamp(min=1e-6) * mean / mean.detach())[:, None, None]
    r = torch.where(road & ok[:, None, None], (hk - below).abs() / hk, 0.0)
    per_frame = r.flatten(1).sum(1) / count
    return per_frame[ok].mean()


def travel_direction(src_from_tgt: torch.Tensor) -> torch.Tensor:
    """Unit chord from the previous to the next camera centre in the target frame, ``(B, 3)``
    (``-R^T t`` of each of ``src_from_tgt (B, 2, 4, 4)``; detached).

    Example:
        >>> T = torch.eye(4).repeat(1, 2, 1, 1)
        >>> T[0, 0, 2, 3], T[0, 1, 2, 3] = 1.0, -1.0  # the previous camera is behind, the next ahead
        >>> travel_direction(T)
        tensor([[0., 0., 1.]])
    """
    R, t = src_from_tgt[..., :3, :3].detach(), src_from_tgt[..., :3, 3:].detach()
    centres = -(R.transpose(-1, -2) @ t)[..., 0]  # (B, 2, 3)
    chord = centres[:, 1] - centres[:, 0]
    return chord / chord.norm(dim=-1, keepdim=True).clamp(min=1e-12)


ROAD_COLLAPSE_DEG = 3.0
"""A road plane tilted more than this from the true one (or, without ground truth, from the direction
of travel) marks a run as collapsed (``road_collapse`` in metrics.jsonl and eval.json)."""


def road_tilt_deg(normal: torch.Tensor, gt_depth: torch.Tensor, K: torch.Tensor, road: torch.Tensor) -> torch.Tensor:
    """Angle (degrees) between road normals ``(B, 3)`` and the ones fitted to the ground-truth depth
    ``(B, 1, H, W)`` over ``road (B, H, W)`` (NaN where either has no plane)."""
    road = road & (gt_depth[:, 0] > 0)
    true_n = plane_from_point_map(depth_to_points(gt_depth.float(), K.float()), road)["normal"]
    return (true_n * normal.detach().float()).sum(-1).clamp(-1, 1).acos().rad2deg()


@torch.no_grad()
def road_diagnostics(plane: dict[str, torch.Tensor], depth: torch.Tensor, src_from_tgt: torch.Tensor,
                     batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # fmt: skip
    """How the road fitted to the predicted depth sits (the collapse detector's inputs; medians over
    the batch's frames with a road plane):

    * ``road_travel_deg``: the angle between the road plane and the direction of travel (no ground truth
      needed);
    * ``road_spread_deg``: the median angle of the road's pixel normals from the plane's (a bent road);
    * with ground-truth depth in the batch: ``road_tilt_deg`` (against the true road plane) and
      ``road_abs_rel`` (the unscaled abs_rel over road pixels).
    """
    ok = plane["ok"]
    if not ok.any():
        return {}
    med = lambda x: x[ok & torch.isfinite(x)].median() if (ok & torch.isfinite(x)).any() else None  # noqa: E731
    cos = (torch.nan_to_num(plane["normal"]) * travel_direction(src_from_tgt).to(depth.dtype)).sum(-1).abs()
    out = {"road_travel_deg": med(cos.clamp(max=1).asin().rad2deg()), "road_spread_deg": med(plane["spread_deg"])}
    gt = batch.get("depth")
    if gt is not None and (gt > 0).any():
        road = batch["road"][:, 0]
        out["road_tilt_deg"] = med(road_tilt_deg(plane["normal"], gt, batch["K"], road))
        sel = road & (gt[:, 0] > 1e-3) & (gt[:, 0] < 80)
        if sel.any():
            out["road_abs_rel"] = ((depth[:, 0] - gt[:, 0]).abs() / gt[:, 0].clamp(min=1e-3))[sel].mean()
    return {k: v for k, v in out.items() if v is not None}


def _epoch_summary(core: DepthModel, diag: dict[str, torch.Tensor], boundary: bool) -> dict[str, torch.Tensor]:
    """Collect this step's road diagnostics; at an epoch boundary return their medians over the epoch
    (``epoch_<name>``) and ``epoch_road_collapse`` (1: the road tilts past :data:`ROAD_COLLAPSE_DEG`
    from the true plane, or from the direction of travel where there is no ground truth)."""
    acc = core.__dict__.setdefault("_road_epoch", {})
    for k, v in diag.items():
        acc.setdefault(k, []).append(float(v))
    if not boundary or not acc:
        return {}
    out = {f"epoch_{k}": torch.tensor(v).median() for k, v in acc.items()}
    tilt = out.get("epoch_road_tilt_deg", out.get("epoch_road_travel_deg"))
    if tilt is not None:
        out["epoch_road_collapse"] = (tilt > ROAD_COLLAPSE_DEG).float()
    acc.clear()
    return out


def _epoch_road_level(core: DepthModel, diag: dict[str, torch.Tensor]) -> bool:
    """Whether the epoch's road, this step's included, lay along the motion: the median of the road-travel
    angles :func:`_epoch_summary` has collected is under :data:`ROAD_COLLAPSE_DEG`."""
    travel = core.__dict__.get("_road_epoch", {}).get("road_travel_deg", [])
    if "road_travel_deg" in diag:
        travel = [*travel, float(diag["road_travel_deg"])]
    return bool(travel) and float(torch.tensor(travel).median()) < ROAD_COLLAPSE_DEG


def _steps_per_epoch(cfg: DepthConfig) -> int:
    n = cfg.data.num_train * (cfg.data.frames - 2)
    return max(1, n // cfg.train.batch_size)


def depth_losses(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DepthConfig) -> dict[str, torch.Tensor]:
    """All loss terms; ``model`` is a :class:`DepthModel`, possibly wrapped by DDP (its buffers are
    reached through ``.module``)."""
    out = model(batch)
    core: DepthModel = getattr(model, "module", model)
    lc = cfg.loss
    rgb, K = batch["rgb"], batch["K"]
    tgt = rgb[:, 1]
    H, W = tgt.shape[-2:]
    srcs = (rgb[:, 0], rgb[:, 2])
    poses = out["src_from_tgt"]
    if lc.automask:
        identity = torch.cat([photometric_error(s, tgt, lc.ssim) for s in srcs], 1)
        identity = identity + lc.automask_margin + 1e-5 * torch.randn_like(identity)  # ties: the warped frames
    photo, smooth = 0.0, 0.0
    terms: dict[str, torch.Tensor] = {}
    depths = {}
    for s, disp in out["disp"].items():
        d = core.depth(F.interpolate(disp, (H, W), mode="bilinear", align_corners=False))
        depths[s] = d
        reproj = torch.cat([photometric_error(inverse_warp(src, d, K, poses[:, j])[0], tgt, lc.ssim)
                            for j, src in enumerate(srcs)], 1)  # fmt: skip
        errs = torch.cat([identity, reproj], 1) if lc.automask else reproj
        best, idx = errs.min(1)
        photo = photo + best.flatten(1).mean(1)
        small = F.interpolate(tgt, disp.shape[-2:], mode="bilinear", align_corners=False) if s else tgt
        smooth = smooth + edge_aware_smoothness(disp, small) / 2**s
        if s == 0 and lc.automask:
            terms["automask_fraction"] = (idx >= identity.shape[1]).float().mean().detach()
    n = len(out["disp"])
    terms["photometric"] = (photo / n).mean()
    terms["smoothness"] = (smooth / n).mean()
    weighted = {"photometric": terms["photometric"], "smoothness": lc.smoothness * terms["smoothness"]}
    if cfg.scale.enabled and "masks" in batch:
        steps_per_epoch = _steps_per_epoch(cfg)
        if model.training:
            core.steps += 1
        epoch = int(core.steps - 1) // steps_per_epoch if model.training else 0
        boundary = model.training and int(core.steps) % steps_per_epoch == 0
        w_obj, w_cam, w_road = scale_weights(epoch, cfg)
        geo = frame_geometry(depths[0], batch, cfg)
        keep = geo["keep"]
        # per-pixel object-height loss at every scale: |D_p h / f_y - H_prior| over each kept mask
        ratio = (geo["extents"]["height"] / K[:, 1, 1, None]).to(tgt.dtype)  # h / f_y  (B, M)
        masks = batch["masks"] & keep[:, :, None, None]
        area = masks.flatten(2).sum(-1).clamp(min=1)
        obj = 0.0
        for d in depths.values():
            if cfg.scale.object_reach == "scale":  # the same values; the gradient reaches only the metric scale
                d = d.detach() * core.scale_gain()
            err = (d * ratio[:, :, None, None] - torch.nan_to_num(geo["prior"])[:, :, None, None]).abs()
            per_obj = (err * masks).flatten(2).sum(-1) / area  # (B, M)
            obj = obj + per_obj.sum(1) / keep.sum(1).clamp(min=1)
        terms["object_height"] = (obj / n).mean()
        along = None  # the road plane that contains the direction of travel
        if cfg.scale.road_loss == "plane" or cfg.scale.camera_normal == "travel":
            along = plane_containing(geo["points"], geo["road"], travel_direction(poses))
        if cfg.scale.camera_source == "footprint":
            # vehicles stand on the road; pedestrians on the sidewalk, a kerb above it
            on_road = keep & (batch["labels"] == 0)
            normal = along["normal"] if cfg.scale.camera_normal == "travel" else geo["plane"]["normal"]
            implied = footprint_camera_height(geo["extents"], geo["prior"].to(K.dtype), K, normal.detach().to(K.dtype),
                                              on_road, roof_depth=cfg.scale.car_roof_depth)  # fmt: skip
        else:
            implied = geo["plane"]["height"].detach() * geo["frame_scale"]
        terms["camera_height_implied"] = torch.nan_to_num(implied.nanmean()).detach()
        terms["objects_kept"] = keep.float().sum(1).mean()
        weighted["object_height"] = w_obj * terms["object_height"]
        plane_h = geo["plane"]["height"]
        diag = road_diagnostics(geo["plane"], depths[0], poses, batch)
        if model.training:
            level = boundary and _epoch_road_level(core, diag)  # read at the epoch's end only
            update_camera_target(core, implied, epoch, steps_per_epoch, plane_h.detach() / core.metric_scale().detach(),
                                 road_level=level)  # fmt: skip
        target = core.camera_target.to(tgt.dtype)
        if target > 0 and epoch >= cfg.scale.camera_freeze_epochs and torch.isfinite(plane_h).any():
            terms["camera_height"] = camera_height_loss(plane_h, target, core.log_scale)
            weighted["camera_height"] = w_cam * terms["camera_height"]
        if w_road > 0 and cfg.scale.road_loss == "plane":
            terms["road_plane"] = road_plane_loss(geo["points"], geo["road"], along)
            weighted["road_plane"] = w_road * terms["road_plane"]
        elif w_road > 0:
            terms["road_travel"] = road_travel_loss(geo["plane"]["normal"], poses)
            weighted["road_travel"] = w_road * terms["road_travel"]
        terms["camera_target"] = target.detach()
        terms["metric_scale"] = core.log_scale.detach().exp()
        if boundary and torch.is_grad_enabled():
            diag.update(road_gradients(weighted, out["disp"][0], batch["road"][:, 0], core.log_scale))
        terms.update(diag)
        if model.training:
            terms.update(_epoch_summary(core, diag, boundary))
    total = sum(weighted.values())
    return {"loss": total, **{k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in terms.items()}}


def road_gradients(
    weighted: dict[str, torch.Tensor], disp: torch.Tensor, road: torch.Tensor, log_scale: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Which loss moves the road, and which the metric scale: each weighted term's gradient on the
    full-resolution disparity of the road pixels, as ``grad_road_<term>`` (its L2 norm over the batch's
    road pixels) and ``push_road_<term>`` (the mean of the descent direction ``-grad`` over them: > 0
    pulls the road nearer, < 0 pushes it away); with ``log_scale``, ``push_scale_<term>`` (``-d term /
    d log_scale``: > 0 makes the whole scene larger).
    """
    out: dict[str, torch.Tensor] = {}
    if not disp.requires_grad or not road.any():
        return out
    for name, term in weighted.items():
        if not term.requires_grad:
            continue
        wrt = [disp] + ([log_scale] if log_scale is not None else [])
        g, *gs = torch.autograd.grad(term, wrt, retain_graph=True, allow_unused=True)
        if g is not None:
            g = g[:, 0][road]
            out[f"grad_road_{name}"] = g.norm()
            out[f"push_road_{name}"] = -g.mean()
        if gs and gs[0] is not None:
            out[f"push_scale_{name}"] = -gs[0]
    return out
