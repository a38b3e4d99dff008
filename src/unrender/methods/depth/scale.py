"""Metric scale without sensors: object heights (D = f_y H / h) and the road plane.

Plain functions on tensors:

* :func:`mask_extents` — top/bottom rows, pixel height, area and border contact of instance masks;
* :func:`object_depth_from_height` — the pinhole constraint ``D = f_y H / h``;
* :func:`representative_depth` — a low quantile of the (detached) predicted depth in a mask;
* :func:`plane_from_point_map` — road plane from an organised point map, normals from the cross
  products of each pixel's 8 neighbours (differentiable, no pseudo-inverse), and the camera
  height as the distance from the camera to the plane;
* :func:`plane_containing` — the road plane constrained to contain a direction (the direction of
  travel), a robust line fit in the cross-section along it;
* :func:`horizon_row` — where the plane's vanishing line crosses the image's centre column;
* :func:`abnormal_objects` — the filter applied before any object is used;
* :func:`object_scales` — per-object and per-frame scale ``D / D_hat``;
* :func:`footprint_camera_height` — the camera height each object implies through the road plane's
  normal alone (no predicted depth).
"""

from __future__ import annotations

import torch

from ...geometry import check_args

__all__ = [
    "mask_extents",
    "object_depth_from_height",
    "representative_depth",
    "plane_from_point_map",
    "plane_containing",
    "horizon_row",
    "abnormal_objects",
    "object_scales",
    "footprint_camera_height",
]

# ring order of the 8 neighbours (dy, dx), so consecutive cross products all point the same way
_RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def mask_extents(masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Row extents of instance masks.

    Args:
        masks: ``(..., M, H, W)`` bool.

    Returns:
        ``top``, ``bottom`` (pixel-edge rows: the top edge of the first row and the bottom edge
        of the last row, pixel centres at integers), ``height = bottom - top`` in pixels,
        ``centre_u`` (the mean of the columns the mask covers), ``pixels`` (area) and ``border`` (bool:
        the mask touches the image border), each ``(..., M)``. Empty masks get height 0.

    Example:
        >>> m = torch.zeros(1, 5, 4, dtype=torch.bool); m[0, 1:4, 1:3] = True
        >>> e = mask_extents(m)
        >>> e["top"].item(), e["bottom"].item(), e["height"].item(), e["centre_u"].item(), bool(e["border"])
        (0.5, 3.5, 3.0, 1.5, False)
    """
    H, W = masks.shape[-2:]
    rows = masks.any(-1)  # (..., M, H)
    cols = masks.any(-2)
    idx = torch.arange(H, device=masks.device, dtype=torch.float32)
    big = torch.tensor(float(H), device=masks.device)
    top = torch.where(rows, idx, big).amin(-1)
    bottom = torch.where(rows, idx, -big).amax(-1)
    nonempty = rows.any(-1)
    border = nonempty & (rows[..., 0] | rows[..., -1] | cols[..., 0] | cols[..., -1])
    top_e, bottom_e = top - 0.5, bottom + 0.5
    height = torch.where(nonempty, bottom_e - top_e, torch.zeros_like(top))
    xs = torch.arange(W, device=masks.device, dtype=torch.float32)
    centre_u = (cols * xs).sum(-1) / cols.sum(-1).clamp(min=1)
    return {"top": top_e, "bottom": bottom_e, "height": height, "centre_u": centre_u,
            "pixels": masks.flatten(-2).sum(-1), "border": border}  # fmt: skip


def object_depth_from_height(fy: torch.Tensor, height_m: torch.Tensor, height_px: torch.Tensor) -> torch.Tensor:
    """Metric depth of an upright object of known height: ``D = f_y H / h`` (NaN where ``h <= 0``).

    Example:
        >>> object_depth_from_height(torch.tensor(700.0), torch.tensor(1.5), torch.tensor(70.0))
        tensor(15.)
    """
    return torch.where(
        height_px > 0, fy * height_m / height_px.clamp(min=1e-6), torch.full_like(height_px, float("nan"))
    )


def representative_depth(depth: torch.Tensor, masks: torch.Tensor, q: float = 0.25) -> torch.Tensor:
    """The ``q``-quantile of ``depth`` inside each mask (detached; NaN for empty masks).

    Args:
        depth: ``(B, 1, H, W)``; masks: ``(B, M, H, W)`` bool.

    Returns:
        ``(B, M)``.

    Example:
        >>> d = torch.arange(4.0).reshape(1, 1, 2, 2) + 1
        >>> representative_depth(d, torch.ones(1, 1, 2, 2, dtype=torch.bool), q=0.5)
        tensor([[2.5000]])
    """
    check_args(("depth", depth, ("B", 1, "H", "W")), ("masks", masks.float(), ("B", "M", "H", "W")))
    vals = torch.where(masks, depth.detach(), torch.full_like(depth, float("nan")))
    return vals.flatten(2).float().nanquantile(q, dim=-1).to(depth.dtype)


def plane_from_point_map(points: torch.Tensor, valid: torch.Tensor, *, min_points: int = 16) -> dict[str, torch.Tensor]:
    """Fit a plane to an organised point map (e.g. a road's back-projected depth).

    Each pixel whose 8 neighbours are all valid gets a normal: the normalised sum of the cross
    products of consecutive neighbour offsets (a ring of 8). The plane normal is the normalised
    mean of those (oriented towards the camera's up, ``-y``); the camera height is the median
    distance ``|n . p|`` of the valid points (robust to stray pixels of a wrong road mask or a
    wrong depth). Every step is differentiable.

    Args:
        points: ``(B, H, W, 3)`` camera-frame points; valid: ``(B, H, W)`` bool.

    Returns:
        ``normal (B, 3)``, ``height (B,)``, ``ok (B,)`` (at least ``min_points`` pixels had
        full neighbourhoods; otherwise normal and height are NaN) and ``spread_deg (B,)``, the
        median angle between the pixel normals and the plane's normal (detached): near 0 for a
        plane, large for a bent or rolled-up surface whose mean normal hides it.

    Example:
        >>> v, u = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
        >>> road = torch.stack([u - 4, torch.full_like(u, 1.65), v + 5], -1)[None]  # y = 1.65 below the camera
        >>> fit = plane_from_point_map(road, torch.ones(1, 8, 8, dtype=torch.bool))
        >>> [round(x, 4) for x in fit["normal"][0].tolist()], round(fit["height"].item(), 4)
        ([0.0, -1.0, 0.0], 1.65)
    """
    check_args(("points", points, ("B", "H", "W", 3)), ("valid", valid.to(points.dtype), ("B", "H", "W")))
    B, H, W, _ = points.shape
    p = points.permute(0, 3, 1, 2)
    pad = torch.nn.functional.pad(p, (1, 1, 1, 1), mode="replicate")
    vpad = torch.nn.functional.pad(valid[:, None].float(), (1, 1, 1, 1))[:, 0] > 0.5
    offsets = [pad[:, :, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W] - p for dy, dx in _RING]  # (B, 3, H, W) each
    full = valid.clone()
    for dy, dx in _RING:
        full &= vpad[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W]
    n = sum(torch.cross(offsets[i], offsets[(i + 1) % 8], dim=1) for i in range(8))
    n = n / n.norm(dim=1, keepdim=True).clamp(min=1e-12)
    n = torch.where(n[:, 1:2] > 0, -n, n)  # orient towards up (-y)
    w = full[:, None].to(n.dtype)
    count = w.flatten(1).sum(1)
    n_sum = (n * w).flatten(2).sum(-1)
    normal = n_sum / n_sum.norm(dim=1, keepdim=True).clamp(min=1e-12)
    dist = (points * normal[:, None, None, :]).sum(-1).abs()
    dist = torch.where(valid, dist, torch.full_like(dist, float("nan")))
    height = dist.flatten(1).nanmedian(1).values
    ok = count >= min_points
    nan = torch.full_like(height, float("nan"))
    with torch.no_grad():
        ang = (n * normal[:, :, None, None]).sum(1).clamp(-1, 1).acos().rad2deg()
        spread = torch.where(full, ang, torch.full_like(ang, float("nan"))).flatten(1).nanmedian(1).values
    return {
        "normal": torch.where(ok[:, None], normal, nan[:, None].expand_as(normal)),
        "height": torch.where(ok, height, nan),
        "ok": ok,
        "spread_deg": torch.where(ok, spread, nan),
    }


@torch.no_grad()
def plane_containing(
    points: torch.Tensor, valid: torch.Tensor, direction: torch.Tensor, *, min_points: int = 16, iters: int = 3
) -> dict[str, torch.Tensor]:
    """Fit a plane that contains ``direction`` (the direction the camera travels on the road) to points.

    A plane containing the unit direction ``c`` is a line in the cross-section seen along ``c``: with
    ``v`` the camera's up (``-y``) made orthogonal to ``c`` and ``u = v x c``, each point has the
    coordinates ``a = p . u``, ``b = p . v`` and the road is ``b = alpha + beta a``. The line is fitted
    by weighted least squares, re-weighted ``iters`` times with Cauchy weights of the residuals (scale:
    1.4826 x their median absolute value), so stray pixels of a wrong mask or a wrong depth barely
    count. Two numbers per frame, in closed form: a well-posed fit whatever shape the points have.
    No gradient flows through it (a plane that follows the points lets a loss bend the road).

    Args:
        points: ``(B, H, W, 3)`` camera-frame points; valid: ``(B, H, W)`` bool; direction: ``(B, 3)``.

    Returns:
        ``normal (B, 3)`` (unit, towards up), ``height (B,)`` (the camera's distance to the plane, the
        plane is ``normal . p = -height``), ``ok (B,)`` (``min_points`` valid points and a direction
        not along the camera's up; otherwise NaN).

    Example:
        >>> v, u = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
        >>> road = torch.stack([u - 4, torch.full_like(u, 1.65), v + 5], -1)[None]
        >>> fit = plane_containing(road, torch.ones(1, 8, 8, dtype=torch.bool), torch.tensor([[0.0, 0.0, 1.0]]))
        >>> [round(x, 4) + 0.0 for x in fit["normal"][0].tolist()], round(fit["height"].item(), 4)
        ([0.0, -1.0, 0.0], 1.65)
    """
    check_args(("points", points, ("B", "H", "W", 3)), ("valid", valid.to(points.dtype), ("B", "H", "W")),
               ("direction", direction, ("B", 3)))  # fmt: skip
    p = points.detach().flatten(1, 2).double()  # (B, N, 3)
    m = valid.flatten(1).double()
    c = direction.detach().double()
    c = c / c.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=p.dtype, device=p.device).expand_as(c)
    v = up - (up * c).sum(-1, keepdim=True) * c
    vn = v.norm(dim=-1, keepdim=True)
    v = v / vn.clamp(min=1e-12)
    u = torch.cross(v, c, dim=-1)
    a, b = (p * u[:, None]).sum(-1), (p * v[:, None]).sum(-1)
    a, b = torch.nan_to_num(a) * m, torch.nan_to_num(b) * m
    w = m.clone()
    for it in range(iters + 1):
        S, Sa, Sb = w.sum(1), (w * a).sum(1), (w * b).sum(1)
        Saa, Sab = (w * a * a).sum(1), (w * a * b).sum(1)
        det = S * Saa - Sa**2
        beta = torch.where(det.abs() > 1e-12, (S * Sab - Sa * Sb) / det.clamp(min=1e-12), torch.zeros_like(det))
        alpha = (Sb - beta * Sa) / S.clamp(min=1e-12)
        if it == iters:
            break
        r = (b - alpha[:, None] - beta[:, None] * a).abs()
        r_masked = torch.where(m > 0, r, torch.full_like(r, float("nan")))
        sigma = 1.4826 * r_masked.nanmedian(1).values.nan_to_num(0.0)[:, None] + 1e-6
        w = m / (1 + (r / sigma) ** 2)
    norm = (1 + beta**2).sqrt()
    normal = (v - beta[:, None] * u) / norm[:, None]
    height = -alpha / norm
    ok = (m.sum(1) >= min_points) & (vn[:, 0] > 0.1) & (height > 0)
    nan = torch.full_like(height, float("nan"))
    return {
        "normal": torch.where(ok[:, None], normal, nan[:, None]).to(points.dtype),
        "height": torch.where(ok, height, nan).to(points.dtype),
        "ok": ok,
    }


def horizon_row(normal: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Row where the vanishing line of planes with ``normal`` crosses the image's centre column ``u = c_x``.

    Directions ``d`` parallel to the plane satisfy ``n . d = 0``; with ``d = K^-1 (c_x, v, 1)`` this
    is linear in ``v``.

    Args:
        normal: ``(B, 3)``; K: ``(B, 3, 3)``.

    Returns:
        ``(B,)``.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> horizon_row(torch.tensor([[0.0, -1.0, 0.0]]), make_intrinsics(100.0, 100.0, 50.0, 30.0)[None])
        tensor([30.])
    """
    fy, cy = K[:, 1, 1], K[:, 1, 2]
    # d = ((u - cx)/fx, (v - cy)/fy, 1) with u = cx  ->  n_y (v - cy)/fy + n_z = 0
    ny, nz = normal[:, 1], normal[:, 2]
    return cy - fy * nz / ny


def abnormal_objects(
    extents: dict[str, torch.Tensor],
    prior_height: torch.Tensor,
    horizon: torch.Tensor,
    valid: torch.Tensor,
    *,
    min_height_px: float,
    min_pixels: int,
    max_height_error: float,
) -> torch.Tensor:
    """Objects not to use for scale: touching the border, tiny, or inconsistent with the horizon rule.

    The horizon rule: an upright object standing on the ground plane, with its bottom ``v_b`` below
    the horizon ``v_h``, has ``(v_b - v_h) / h = H_cam / H_obj``. The frame's camera height is the
    median of ``H_prior (v_b - v_h) / h`` over its otherwise normal objects; an object whose implied
    height ``H_cam h / (v_b - v_h)`` differs from its prior by more than ``max_height_error``
    (relative) is abnormal (occluded bottom or top, not on the ground, mislabelled). With fewer than
    two candidates in a frame the rule is skipped.

    Args:
        extents: :func:`mask_extents` of ``(B, M)`` masks; prior_height: ``(B, M)`` metres;
        horizon: ``(B,)`` rows (NaN: rule skipped); valid: ``(B, M)`` bool (real objects).

    Returns:
        abnormal ``(B, M)`` bool (padding counts as abnormal).
    """
    h, vb = extents["height"], extents["bottom"]
    bad = ~valid | extents["border"] | (h < min_height_px) | (extents["pixels"] < min_pixels)
    below = vb - horizon[:, None]
    cand = ~bad & (below > 0) & torch.isfinite(below)
    implied_cam = torch.where(cand, prior_height * below / h.clamp(min=1e-6), torch.full_like(h, float("nan")))
    cam = implied_cam.nanmedian(dim=1).values  # (B,)
    use_rule = cand.sum(1) >= 2
    implied_obj = cam[:, None] * h / below.clamp(min=1e-6)
    off = (implied_obj / prior_height - 1).abs() > max_height_error
    bad = bad | (use_rule[:, None] & (~cand | off))
    return bad


def object_scales(
    depth: torch.Tensor,
    masks: torch.Tensor,
    fy: torch.Tensor,
    prior_height: torch.Tensor,
    keep: torch.Tensor,
    *,
    q: float = 0.25,
    extents: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-object scale ``s = (f_y H / h) / D_hat`` and the frame scale (mean over kept objects).

    Args:
        depth: ``(B, 1, H, W)`` predicted depth; masks ``(B, M, H, W)``; fy ``(B,)``;
        prior_height ``(B, M)``; keep ``(B, M)`` bool.

    Returns:
        ``metric_depth``, ``pred_depth``, ``scale`` ``(B, M)`` (NaN where not kept) and
        ``frame_scale (B,)`` (NaN where the frame has no kept object).

    Example:
        >>> m = torch.zeros(1, 1, 8, 8, dtype=torch.bool); m[0, 0, 2:6, 3:5] = True
        >>> out = object_scales(torch.full((1, 1, 8, 8), 5.0), m, torch.tensor([10.0]), torch.tensor([[2.0]]),
        ...                     torch.tensor([[True]]))
        >>> out["frame_scale"]  # D = 10 * 2 / 4 = 5: the prediction is already metric
        tensor([1.])
    """
    ext = mask_extents(masks) if extents is None else extents
    metric = object_depth_from_height(fy[:, None], prior_height, ext["height"])
    pred = representative_depth(depth, masks, q)
    nan = torch.full_like(metric, float("nan"))
    scale = torch.where(keep & torch.isfinite(pred) & (pred > 0), metric / pred, nan)
    return {"metric_depth": metric, "pred_depth": pred, "scale": scale, "frame_scale": scale.nanmean(1)}


def footprint_camera_height(
    extents: dict[str, torch.Tensor], prior_height: torch.Tensor, K: torch.Tensor, normal: torch.Tensor,
    keep: torch.Tensor, *, roof_depth: float | torch.Tensor = 0.0,
) -> torch.Tensor:  # fmt: skip
    """The camera height each object implies through the road plane, from its mask's top and bottom
    edges, its prior height ``H`` and the road's unit normal ``n`` (towards up) alone: no predicted depth
    (which moving objects get wrong) and no predicted road height enter.

    With ``b = -n . r_bottom`` and ``t = -n . r_top`` (``r = K^-1 (u, v, 1)`` through the mask's bottom
    and top edge at its centre column: how far below the horizon each edge is, per metre of depth), an
    upright object whose ground contact is at depth ``z`` has ``b = H_c / z``; its top edge, seen from a
    camera above it (``t > 0``), is the far edge of its roof, ``roof_depth`` metres behind the contact:
    ``t = (H_c - H) / (z + roof_depth)``. So ``H_c = b (H + t roof_depth) / (b - t)``. With
    ``roof_depth = 0`` this is the plain ``D (-n . r_bottom)`` with ``D = f_y H / h``, which reads low for
    cars below the camera: measured on every second of the 1056 training frames of the depth ``cpu`` preset
    with the true depth, 1.612 m per object against the true 1.65 m, 1.638 m with ``roof_depth`` 2.5 m
    (issue 29).

    Args:
        extents: :func:`mask_extents` of ``(B, M)`` masks; prior_height: ``(B, M)`` metres; K: ``(B, 3, 3)``;
        normal: ``(B, 3)``; keep: ``(B, M)`` bool; roof_depth: metres, a float or ``(B, M)``.

    Returns:
        ``(B, M)``: each kept object's implied camera height (NaN where not kept or not below the
        horizon). Pool them per object, not per frame: a frame's median of two objects is their lower one.

    Example:
        >>> from unrender.geometry import make_intrinsics
        >>> m = torch.zeros(1, 1, 60, 80, dtype=torch.bool); m[0, 0, 30:45, 38:42] = True  # rows 29.5-44.5
        >>> ext = mask_extents(m)
        >>> K = make_intrinsics(100.0, 100.0, 40.0, 30.0)[None]  # horizon at row 30 for a level road
        >>> keep, n = torch.tensor([[True]]), torch.tensor([[0.0, -1.0, 0.0]])
        >>> cam = footprint_camera_height(ext, torch.tensor([[1.5]]), K, n, keep)
        >>> round(cam.item(), 3)  # f H / h = 10 m away, 14.5 rows below the horizon at f = 100: 1.45 m
        1.45
    """
    u = extents["centre_u"]
    fx, fy, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
    n = normal[:, None, :].to(u.dtype)

    def below(row: torch.Tensor) -> torch.Tensor:  # -n . r: depth below the camera per metre along z
        return -(torch.stack([(u - cx) / fx, (row - cy) / fy, torch.ones_like(u)], -1) * n).sum(-1)

    b, t = below(extents["bottom"]), below(extents["top"])
    cam = b * (prior_height + t.clamp(min=0) * roof_depth) / (b - t)
    ok = keep & torch.isfinite(cam) & (b > t) & (b > 0)
    return torch.where(ok, cam, torch.full_like(cam, float("nan")))
