"""Evaluation of metric monocular depth on held-out generated street videos.

Depth errors (abs_rel, sq_rel, rmse, rmse_log, delta < 1.25^k) over ground-truth depths in
``[min_depth, max_depth]``, for the raw prediction and after four per-frame scalings:

* ``unscaled`` — the prediction as is (metric if training learned the scale);
* ``median`` — the oracle median scaling ``median(gt) / median(pred)`` (with the median ratio and
  its spread, as Monodepth2 prints them);
* ``camera_height`` — scale from the true camera height over the camera height of the road plane
  fitted to the prediction;
* ``objects`` — scale from the frame's object heights (``D = f_y H / h``, after the abnormal-object
  filter); frames without a usable object take their sequence's median frame scale.

For the ``median`` and ``unscaled`` predictions, where the abs_rel comes from:
``<mode>/share/<group>`` is the part of ``<mode>/abs_rel`` that the pixels of each semantic class,
of each ground-truth depth range (``<lo>-<hi>m``) and of the static scene and the moving objects
contribute (each of the three sets sums to the abs_rel), next to ``pixels/<group>``, the group's
share of the scored pixels.

Also the camera height estimated from the unscaled prediction next to the true one, the road tilt
(``road_tilt_deg``: the median angle between the road normal fitted to the prediction and the one
fitted to the ground-truth depth; the camera height follows it, as a tilt of ``a`` moves a road
point ``z`` metres ahead by ``z sin a``), and the pose
net against the generated ground-truth motion: the angle of its rotation error, the angle between
its translation and the true one (both in degrees, with the mean true rotation for reference) and
the median ratio of translation lengths.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...geometry import matrix_to_axis_angle
from ...metrics import DepthMetrics
from ...world import CLASSES
from .config import DepthConfig
from .data import DepthDataset
from .losses import ROAD_COLLAPSE_DEG, frame_geometry, road_tilt_deg

__all__ = ["evaluate_depth", "MODES", "ablation_table"]

MODES = ("unscaled", "median", "camera_height", "objects")
BREAKDOWN = ("median", "unscaled")
DEPTH_BINS = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0)
_SHOWN = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


@torch.no_grad()
def evaluate_depth(
    model: torch.nn.Module, cfg: DepthConfig, device: torch.device, *, dataset: DepthDataset | None = None,
    max_items: int | None = None, min_depth: float = 1e-3, max_depth: float = 80.0, batch_size: int = 8,
    images: int = 4,
) -> dict[str, Any]:  # fmt: skip
    from ...viz import colorize_depth, image_grid

    data = dataset if dataset is not None else DepthDataset(cfg, "val")
    n = len(data) if max_items is None else min(max_items, len(data))
    preds, gts, frame_scale, plane_h, true_h, seqs, poses, true_poses, sems, moving, tilts = ([] for _ in range(11))
    rows = []
    for start in range(0, n, batch_size):
        items = [data[i] for i in range(start, min(n, start + batch_size))]
        b = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
        out = model(b)
        depth = model.depth(out["disp"][0]).float()
        poses.append(out["src_from_tgt"].float().cpu())
        true_poses.append(b["src_from_tgt"].float().cpu())
        geo = frame_geometry(depth, b, cfg)
        preds.append(depth.cpu())
        gts.append(b["depth"].cpu())
        sems.append(b["semantic"].cpu())
        moving.append(b["moving"].cpu())
        frame_scale.append(geo["frame_scale"].cpu())
        plane_h.append(geo["plane"]["height"].detach().cpu())
        tilts.append(road_tilt_deg(geo["plane"]["normal"], b["depth"], b["K"], b["road"][:, 0]).cpu())
        true_h.append(b["camera_height"].cpu())
        seqs.append(b["sequence"].cpu())
        for j in range(len(items)):
            if len(rows) < images:
                lim = float(b["depth"][j][b["depth"][j] > 0].quantile(0.95)) if (b["depth"][j] > 0).any() else max_depth
                rows.append([b["rgb"][j, 1].cpu(), colorize_depth(depth[j, 0].cpu(), max_depth=lim),
                             colorize_depth(b["depth"][j, 0].cpu(), max_depth=lim)])  # fmt: skip
    pred, gt = torch.cat(preds), torch.cat(gts)
    fs, ph, th, seq = torch.cat(frame_scale), torch.cat(plane_h), torch.cat(true_h), torch.cat(seqs)
    # frames without a usable object: their sequence's median frame scale
    filled = fs.clone()
    for s in seq.unique():
        sel = seq == s
        ok = sel & torch.isfinite(fs)
        med = fs[ok].median() if ok.any() else torch.tensor(float("nan"))
        filled[sel & ~torch.isfinite(fs)] = med
    scales = {"unscaled": torch.ones_like(fs), "camera_height": th / ph, "objects": filled}
    res: dict[str, Any] = {}
    for mode in MODES:
        acc = DepthMetrics(min_depth=min_depth, max_depth=max_depth, median_scaling=mode == "median")
        if mode == "median":
            acc.update(pred, gt)
        else:
            s = scales[mode]
            ok = torch.isfinite(s)
            res[f"{mode}/frames"] = int(ok.sum())
            if not ok.any():
                continue
            acc.update(pred[ok] * s[ok, None, None, None], gt[ok])
        m = acc.compute()
        res.update({f"{mode}/{k}": v for k, v in m.items() if k in _SHOWN or k.startswith("scale_")})
    res.update(_breakdown(pred, gt, torch.cat(sems), torch.cat(moving), min_depth, max_depth))
    okh = torch.isfinite(ph)
    res["camera_height_est"] = float(ph[okh].mean()) if okh.any() else math.nan
    res["camera_height_true"] = float(th.mean())
    res["camera_height_rel_err"] = abs(res["camera_height_est"] / res["camera_height_true"] - 1)
    tilt = torch.cat(tilts)
    tilt = tilt[torch.isfinite(tilt)]
    res["road_tilt_deg"] = float(tilt.median()) if len(tilt) else math.nan
    res["road_collapse"] = float(res["road_tilt_deg"] > ROAD_COLLAPSE_DEG)
    res.update(_pose_errors(torch.cat(poses).flatten(0, 1), torch.cat(true_poses).flatten(0, 1)))
    res["scale_enabled"] = float(cfg.scale.enabled)
    res["scale_filter"] = float(cfg.scale.filter)
    res["frames"] = n
    res["images"] = {"target frame | predicted depth | ground truth": image_grid(rows, scale=2)}
    return res


def _breakdown(pred: torch.Tensor, gt: torch.Tensor, semantic: torch.Tensor, moving: torch.Tensor,
               min_depth: float, max_depth: float) -> dict[str, float]:  # fmt: skip
    """Shares of the abs_rel by semantic class, by ground-truth depth range and by motion (see the
    module doc)."""
    edges = torch.tensor(DEPTH_BINS[1:-1], dtype=gt.dtype)
    kinds = {
        "class": (semantic, list(CLASSES)),
        "depth": (
            torch.bucketize(gt, edges),
            [f"{a:g}-{b:g}m" for a, b in zip(DEPTH_BINS[:-1], DEPTH_BINS[1:], strict=True)],
        ),
        "motion": (moving.long(), ["static", "moving objects"]),
    }
    valid = (gt > min_depth) & (gt < max_depth)
    res: dict[str, float] = {}
    for groups, names in kinds.values():
        counts = torch.bincount(groups[valid].flatten(), minlength=len(names)).double()
        present = [g for g in range(len(names)) if counts[g] > 0]
        for g in present:
            res[f"pixels/{names[g]}"] = float(counts[g] / counts.sum())
        for mode in BREAKDOWN:
            acc = DepthMetrics(min_depth=min_depth, max_depth=max_depth, median_scaling=mode == "median",
                               num_groups=len(names))  # fmt: skip
            acc.update(pred, gt, groups)
            m = acc.compute()
            res.update({f"{mode}/share/{names[g]}": m[f"abs_rel_share_{g}"] for g in present})
    return res


def _pose_errors(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Rotation and translation-direction errors (degrees) of ``(N, 4, 4)`` relative poses."""
    deg = lambda R: matrix_to_axis_angle(R).norm(dim=-1).rad2deg()  # noqa: E731
    rot_err = deg(pred[:, :3, :3].transpose(1, 2) @ true[:, :3, :3])
    tp, tt = pred[:, :3, 3], true[:, :3, 3]
    cos = (tp * tt).sum(-1) / (tp.norm(dim=-1) * tt.norm(dim=-1)).clamp(min=1e-12)
    return {
        "pose/rotation_error_deg": float(rot_err.mean()),
        "pose/true_rotation_deg": float(deg(true[:, :3, :3]).mean()),
        "pose/translation_angle_deg": float(cos.clamp(-1, 1).acos().rad2deg().mean()),
        "pose/translation_ratio": float((tp.norm(dim=-1) / tt.norm(dim=-1).clamp(min=1e-12)).median()),
    }


def ablation_table(columns: dict[str, dict[str, float]], command: str) -> str:
    """The issue's ablation (a)-(f) as Markdown, from the evaluations of the checkpoints of three kinds of
    run: self-supervised only (``scale_enabled = 0``), the full method and the full method without the
    filter (``scale_filter = 0``). Several runs of one kind (seeds) give ``mean ± std`` over them, and a
    second table lists every run; a run whose road collapsed (``road_collapse``) is marked in both."""
    by_kind: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for name, m in columns.items():
        kind = "base" if not m.get("scale_enabled") else ("full" if m.get("scale_filter") else "nofilter")
        by_kind.setdefault(kind, []).append((name, m))
    rows = [
        ("(a) self-supervised, unscaled", "base", "unscaled"),
        ("(b) self-supervised, median scaling (oracle)", "base", "median"),
        ("(c) self-supervised, scale from the true camera height", "base", "camera_height"),
        ("(d) self-supervised, object-height scale per frame", "base", "objects"),
        ("(e) full method, unscaled", "full", "unscaled"),
        ("(f) full method without the abnormal-object filter, unscaled", "nofilter", "unscaled"),
    ]
    extra = ("median GT/pred scale", "camera height (m)", "road tilt (deg)")

    def values(m: dict[str, float], mode: str) -> list[float]:
        got = [m.get(f"{mode}/{k}", math.nan) for k in _SHOWN]
        ratio = math.nan if mode in ("camera_height", "objects") else m.get("median/scale_median", math.nan)
        cam = m.get("camera_height_est", math.nan) if mode == "unscaled" else math.nan
        tilt = m.get("road_tilt_deg", math.nan) if mode == "unscaled" else math.nan
        return [*got, ratio, cam, tilt]

    digits = [4] * len(_SHOWN) + [3, 3, 2]

    def cell(xs: list[float], d: int) -> str:
        xs = [x for x in xs if not math.isnan(x)]
        if not xs:
            return ""
        mean = sum(xs) / len(xs)
        if len(xs) == 1:
            return f"{mean:.{d}f}"
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        return f"{mean:.{d}f} ± {std:.{d}f}"

    def cut(m: dict[str, float]) -> bool:  # stopped before its schedule's end (the time limit)
        done, planned = m.get("trained_steps", math.nan), m.get("schedule_steps", math.nan)
        return not math.isnan(done) and not math.isnan(planned) and done < planned

    def marks(runs: list[tuple[str, dict[str, float]]], mode: str) -> str:
        bad = [n for n, m in runs if m.get("road_collapse")] if mode == "unscaled" else []
        short = [f"{n} ({m['trained_steps']:.0f} of {m['schedule_steps']:.0f} steps)" for n, m in runs if cut(m)]
        return (f" **road collapsed: {', '.join(bad)}**" if bad else "") + (
            f" **cut short: {', '.join(short)}**" if short else "")  # fmt: skip

    head = "| variant | runs | " + " | ".join(_SHOWN + extra) + " |"
    lines = [head, "|---|---|" + "---|" * (len(_SHOWN) + 3)]
    for label, kind, mode in rows:
        runs = by_kind.get(kind, [])
        if not runs:
            continue
        vals = [values(m, mode) for _, m in runs]
        cells = [cell([v[i] for v in vals], d) for i, d in enumerate(digits)]
        names = ", ".join(n for n, _ in runs)
        mark = marks(runs, mode) if mode in ("unscaled", "median") else ""
        lines.append(f"| {label}{mark} | {names} | " + " | ".join(cells) + " |")
    if any(len(r) > 1 for r in by_kind.values()):
        lines += ["", "Every run: (b) and (e) as above, the road's part of the abs_rel and whether its road collapsed "
                  "(road tilt over 3 degrees).", "",
                  "| run | variant | abs_rel | median GT/pred scale | camera height (m) | road tilt (deg) | "
                  "road's part of abs_rel | road collapsed | steps trained (skipped) |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for label, kind, mode in (("(b)", "base", "median"), ("(e)", "full", "unscaled")):
            for name, m in by_kind.get(kind, []):
                v = values(m, mode)
                road = m.get(f"{mode}/share/road", math.nan)
                fmt = lambda x, d: "" if math.isnan(x) else f"{x:.{d}f}"  # noqa: E731
                flag = ("yes" if m.get("road_collapse") else "no") if mode == "unscaled" else ""
                steps = "" if math.isnan(m.get("trained_steps", math.nan)) else (
                    f"{m['trained_steps']:.0f} of {m['schedule_steps']:.0f} ({m.get('skipped_steps', 0):.0f})"
                    + (" **cut short**" if cut(m) else ""))  # fmt: skip
                lines.append(f"| {name} | {label} | {fmt(v[0], 4)} | {fmt(v[-3], 3)} | {fmt(v[-2], 3)} | "
                             f"{fmt(v[-1], 2)} | {fmt(road, 4)} | {flag} | {steps} |")  # fmt: skip
    # where the abs_rel of (b) and (e) comes from (mean over runs)
    picked = (("(b)", "base", "median"), ("(e)", "full", "unscaled"))
    cols = [(lab, by_kind[kind], mode) for lab, kind, mode in picked if kind in by_kind]
    first = cols[0][1][0][1] if cols else {}
    groups = [k.split("/", 1)[1] for k in first if k.startswith("pixels/")]
    if groups:
        lines += ["", "Where the abs_rel comes from: each group's part of it (the parts sum to the abs_rel) and its "
                  "share of the scored pixels.", "",
                  "| pixels | share of pixels | " + " | ".join(f"{lab} part of abs_rel" for lab, _, _ in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]  # fmt: skip
        for gname in groups:
            parts = " | ".join(cell([m.get(f"{mode}/share/{gname}", math.nan) for _, m in runs], 4)
                               for _, runs, mode in cols)  # fmt: skip
            lines.append(f"| {gname} | {first[f'pixels/{gname}']:.3f} | {parts} |")
    return f"Produced by `{command}`.\n\n" + "\n".join(lines) + "\n"
