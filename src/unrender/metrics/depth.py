"""Depth-map metrics as reported by Monodepth2 and the KITTI depth benchmarks."""

from __future__ import annotations

import math

import torch

from ..geometry.checks import check_shape

__all__ = ["DEPTH_METRICS", "eigen_crop_mask", "depth_metrics", "DepthMetrics"]

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "a1", "a2", "a3")

# Garg/Eigen crop as used by Monodepth2's KITTI evaluation, as fractions of (H, W).
_EIGEN_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def eigen_crop_mask(H: int, W: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``(H, W)`` mask of the Garg/Eigen crop used for KITTI depth evaluation.

    Example:
        >>> eigen_crop_mask(375, 1242).sum().item()
        251354
    """
    t, b, l, r = _EIGEN_CROP
    mask = torch.zeros(H, W, dtype=torch.bool, device=device)
    mask[int(t * H) : int(b * H), int(l * W) : int(r * W)] = True
    return mask


def depth_metrics(
    pred: torch.Tensor,
    gt: torch.Tensor,
    *,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    crop: str | None = None,
    median_scaling: bool = False,
    groups: torch.Tensor | None = None,
    num_groups: int = 0,
) -> dict[str, torch.Tensor]:
    """Per-image depth errors over pixels with ``min_depth < gt < max_depth``.

    As in Monodepth2: with ``median_scaling`` the prediction is multiplied by
    ``median(gt) / median(pred)`` over the valid pixels; predictions are then
    clamped to ``[min_depth, max_depth]``. ``abs_rel = mean(|gt - pred| / gt)``,
    ``sq_rel = mean((gt - pred)^2 / gt)``, ``rmse``, ``rmse_log``,
    ``log10 = mean(|log10 gt - log10 pred|)``, ``a_k = mean(max(gt/pred,
    pred/gt) < 1.25^k)``. An image without a valid pixel gets NaN (and is
    skipped by :class:`DepthMetrics`).

    Args:
        pred: ``(B, 1, H, W)`` predicted depth in metres.
        gt: ``(B, 1, H, W)`` ground truth, 0 = unknown.
        crop: ``None`` or ``"eigen"`` (the Garg/Eigen crop).
        groups: optional ``(B, 1, H, W)`` integer labels in ``[0, num_groups)`` (e.g. semantic
            classes or depth bins): adds ``abs_rel_share (B, num_groups)``, the part of each image's
            ``abs_rel`` that each group's pixels contribute (the shares sum to ``abs_rel``).

    Returns:
        dict of ``(B,)`` float64 tensors, the names in ``DEPTH_METRICS``, plus ``scale``
        (the median ratio) when ``median_scaling`` and ``abs_rel_share`` with ``groups``.

    Example:
        >>> gt = torch.tensor([2.0, 4.0, 8.0]).reshape(1, 1, 1, 3)
        >>> m = depth_metrics(gt * 2, gt, median_scaling=True)
        >>> m["abs_rel"].item(), m["scale"].item()
        (0.0, 0.5)
    """
    sizes: dict[str, int] = {}
    check_shape(pred, "pred", ("B", 1, "H", "W"), sizes=sizes, max_batch=0)
    check_shape(gt, "gt", ("B", 1, "H", "W"), sizes=sizes, max_batch=0)
    if groups is not None:
        if groups.shape != gt.shape:
            raise ValueError(f"groups: expected the shape of gt {tuple(gt.shape)}, got {tuple(groups.shape)}")
        if groups.is_floating_point() or (groups < 0).any() or (groups >= num_groups).any():
            raise ValueError(f"groups: expected integer labels in [0, {num_groups}), got {groups.dtype} labels")
    if crop not in (None, "eigen"):
        raise ValueError(f"crop: expected None or 'eigen', got {crop!r}")
    B, _, H, W = gt.shape
    pred, gt = pred.reshape(B, -1).to(torch.float64), gt.reshape(B, -1).to(torch.float64)
    valid = (gt > min_depth) & (gt < max_depth) & torch.isfinite(pred)
    if crop == "eigen":
        valid &= eigen_crop_mask(H, W, device=gt.device).reshape(1, -1)
    nan = torch.full_like(gt, float("nan"))
    out: dict[str, torch.Tensor] = {}
    if median_scaling:
        ratio = torch.nanquantile(torch.where(valid, gt, nan), 0.5, dim=1) / torch.nanquantile(
            torch.where(valid, pred, nan), 0.5, dim=1
        )
        pred = pred * ratio[:, None]
        out["scale"] = ratio
    pred = pred.clamp(min_depth, max_depth)
    g, p = torch.where(valid, gt, torch.ones_like(gt)), torch.where(valid, pred, torch.ones_like(pred))
    n = valid.sum(1).to(gt.dtype)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return torch.where(valid, x, torch.zeros_like(x)).sum(1) / n

    thresh = torch.maximum(g / p, p / g)
    out.update(
        abs_rel=mean((g - p).abs() / g),
        sq_rel=mean((g - p) ** 2 / g),
        rmse=mean((g - p) ** 2).sqrt(),
        rmse_log=mean((g.log() - p.log()) ** 2).sqrt(),
        log10=mean((g.log10() - p.log10()).abs()),
        a1=mean((thresh < 1.25).to(g.dtype)),
        a2=mean((thresh < 1.25**2).to(g.dtype)),
        a3=mean((thresh < 1.25**3).to(g.dtype)),
    )
    if groups is not None:
        err = torch.where(valid, (g - p).abs() / g, torch.zeros_like(g))
        share = torch.zeros(B, num_groups, dtype=g.dtype, device=g.device)
        out["abs_rel_share"] = share.scatter_add_(1, groups.reshape(B, -1).long(), err) / n[:, None]
    return out


class DepthMetrics:
    """Accumulates :func:`depth_metrics` over a dataset; ``compute()`` averages over images.

    With ``median_scaling`` it also reports ``scale_median`` (the median of the
    per-image ratios) and ``scale_std`` (the standard deviation of
    ``ratio / scale_median``), as Monodepth2 prints them. With ``groups`` passed to
    :meth:`update`, ``abs_rel_share_<g>`` is group ``g``'s part of ``abs_rel``.

    Example:
        >>> acc = DepthMetrics(median_scaling=True)
        >>> gt = torch.full((2, 1, 4, 4), 5.0)
        >>> acc.update(gt * 0.5, gt)
        >>> acc.compute()["scale_median"]
        2.0
    """

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.values: dict[str, list[torch.Tensor]] = {}

    def update(self, pred: torch.Tensor, gt: torch.Tensor, groups: torch.Tensor | None = None) -> None:
        for k, v in depth_metrics(pred, gt, groups=groups, **self.kwargs).items():
            self.values.setdefault(k, []).append(v.detach().cpu())

    def compute(self) -> dict[str, float]:
        if not self.values:
            raise ValueError("DepthMetrics.compute: no images were added")
        cat = {k: torch.cat(v) for k, v in self.values.items()}
        ok = torch.isfinite(cat["abs_rel"])
        out = {k: (cat[k][ok].mean().item() if ok.any() else math.nan) for k in DEPTH_METRICS}
        out["num_images"] = int(ok.sum())
        if "abs_rel_share" in cat:  # mean over the images, like abs_rel: the shares sum to it
            for g, v in enumerate(cat["abs_rel_share"][ok].mean(0).tolist() if ok.any() else []):
                out[f"abs_rel_share_{g}"] = v
        if "scale" in cat and ok.any():
            s = cat["scale"][ok]
            med = s.median().item() if len(s) % 2 else s.quantile(0.5).item()
            out["scale_median"] = med
            out["scale_std"] = (s / med).std(unbiased=False).item()
        return out
