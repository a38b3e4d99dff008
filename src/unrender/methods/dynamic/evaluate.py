"""Scores of dynamic-scene mapping on held-out traffic sequences (issue 30): moving-object detection by
background subtraction against the proposal baselines; 3D flow between consecutive frames against zero
flow; render-and-compare tracking against constant velocity."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from ...geometry import VoxelGrid, box_iou_3d, connected_components
from ...nn.flow import Radius, piece_flow, soft_argmax_flow
from ...world.scene import class_id
from .background import temporal_background
from .config import DynamicConfig, SubtractionConfig, TrackConfig
from .data import DynamicDataset
from .detect import (
    centre_surround_proposals,
    frame_memories,
    moving_ap,
    moving_boxes_in_grid,
    moving_mask,
    random_proposals,
    subtract_background,
)
from .model import memory_input
from .segment import evaluate_segmentation, fit_segmenter
from .track import crop_object, occupancy_score, render_error, render_planes, track, track_occupancy

__all__ = [
    "evaluate_dynamic",
    "evaluate_subtraction",
    "evaluate_flow",
    "evaluate_tracking",
    "tracked_objects",
    "raw_features",
    "results_table",
    "GROUPS",
]

GROUPS = {"vehicles": ("car", "van"), "people": ("pedestrian", "cyclist")}
"""Object groups scored on their own besides all moving objects together."""


def evaluate_subtraction(
    items: Iterable[dict[str, torch.Tensor]], grid: VoxelGrid, cfg: SubtractionConfig, *, proposals: int = 50,
    seed: int = 0, min_pixels: int = 1,
    features: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None, baselines: bool = True,
) -> dict[str, float]:  # fmt: skip
    """AP@0.25 / 0.5 (3D and bird's-eye view) of moving-object boxes over every frame of the sequences:

    * ``subtraction/size``: background subtraction's boxes scored by their number of moving voxels;
    * ``subtraction/contrast``: the same boxes rescored by centre-surround contrast on the frame's occupancy;
    * ``centre_surround``: car-sized boxes slid over the frame's occupancy, scored by contrast alone;
    * ``random``: ``proposals`` car-sized boxes per frame at random places and yaws, random scores.

    The ground truth: the moving objects whose centre is in the grid and that ``min_pixels`` pixels show
    (:func:`moving_boxes_in_grid`). Each group of :data:`GROUPS` is also scored against its own objects
    (``<row>/<group>/AP...``) with every box the method gave: a box on another group's object counts as a
    false positive there, so a group's AP is a lower bound.

    Args:
        items: :class:`~unrender.methods.dynamic.data.DynamicDataset` items.
        features: maps :func:`frame_memories` to feature volumes ``(T, F, Z, Y, X)`` (``frames["features"]``:
            what ``cfg.signal`` ``features`` subtracts).
        baselines: also score the centre-surround and random proposals.
    """
    gen = torch.Generator().manual_seed(seed)
    rows: dict[str, tuple[list, list]] = {}
    gts: dict[str, list[torch.Tensor]] = {"all": [], **{g: [] for g in GROUPS}}
    for item in items:
        frames = frame_memories(item, grid)
        if features is not None:
            frames["features"] = features(frames)
        out = subtract_background(frames, grid, cfg)
        T = item["rgb"].shape[0]
        gts["all"] += moving_boxes_in_grid(item, grid, min_pixels)
        for g, names in GROUPS.items():
            gts[g] += moving_boxes_in_grid(item, grid, min_pixels, classes=names)
        for t in range(T):
            found = {
                "subtraction/size": (out["boxes"][t], out["size"][t]),
                "subtraction/contrast": (out["boxes"][t], out["contrast"][t]),
            }
            if baselines:
                found["centre_surround"] = centre_surround_proposals(frames["carved"][t, 0], grid, shell=cfg.shell)
                found["random"] = random_proposals(grid, proposals, gen)
            for name, (b, s) in found.items():
                rows.setdefault(name, ([], []))
                rows[name][0].append(b)
                rows[name][1].append(s)
    res: dict[str, float] = {"frames": float(len(gts["all"])), "objects": float(sum(len(b) for b in gts["all"]))}
    for g, gt in gts.items():
        if g != "all":
            res[f"objects/{g}"] = float(sum(len(b) for b in gt))
    for name, (boxes, scores) in rows.items():
        for g, gt in gts.items():
            key = name if g == "all" else f"{name}/{g}"
            for kind in ("3d", "bev"):
                for k, v in moving_ap(boxes, scores, gt, iou_type=kind).items():
                    res[f"{key}/{k}"] = v
    return res


def raw_features(frames: dict[str, torch.Tensor]) -> torch.Tensor:
    """The input memory (occupancy, occupancy x colour) of :func:`frame_memories` as features ``(T, 4, Z, Y,
    X)``: the no-learning baseline of correlation flow (colour centred on the voxel's own occupancy so that
    two empty voxels do not match better than two surfaces)."""
    return memory_input(frames["input"])[:, :4]


def evaluate_flow(
    items: Iterable[dict[str, torch.Tensor]],
    grid: VoxelGrid,
    features: dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]],
    *,
    radius: Radius = 3,
    temperature: float = 1.0,
    components: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
    piece_temperature: float = 0.01,
) -> dict[str, float]:
    """3D end-point error (metres) of the flow from each frame to the next, on the voxels where frame ``t``
    saw a surface (a depth point fell in them), split into those inside a moving object and the rest.

    Each entry of ``features`` maps the frames' memories (:func:`frame_memories`: all in the anchor grid, so
    the ego-motion is already removed and static matter stays put) to feature volumes ``(T, C, Z, Y, X)``;
    its flow is :func:`~unrender.nn.flow.soft_argmax_flow` between consecutive frames (``radius`` voxels
    reach) at ``temperature``. ``zero`` is the flow that says nothing moves.

    With ``components`` (frames -> ``(T, Z, Y, X)`` long labels of the moving pieces, e.g. background
    subtraction's connected components), each entry's features also give one motion per piece and none
    elsewhere, scored as ``<name>+rigid/...``: :func:`~unrender.nn.flow.piece_flow` over the piece's surface
    voxels at ``piece_temperature``, with the frame before as well as the frame after (the piece's motion
    taken as constant over the two steps; the first frame has only the one after).

    Returns:
        ``<name>/epe_moving``, ``<name>/epe_static`` per entry and ``zero/...``, and ``voxels/moving``,
        ``voxels/static`` (how many voxels each mean is over).
    """
    vs = torch.tensor(grid.voxel_size)[:, None]
    err: dict[str, dict[str, list[torch.Tensor]]] = {}
    counts = {"moving": 0, "static": 0}
    for item in items:
        frames = frame_memories(item, grid)
        surface = frames["carved"][:-1, 0] > 0  # (T - 1, Z, Y, X)
        moving = item["moving"][:-1, 0] & surface
        static = ~item["moving"][:-1, 0] & surface
        true = item["flow"]  # (T - 1, 3, Z, Y, X) metres
        counts["moving"] += int(moving.sum())
        counts["static"] += int(static.sum())
        preds = {"zero": torch.zeros_like(true)}
        labels = components(frames) if components is not None else None
        for name, fn in features.items():
            f = fn(frames)
            preds[name] = torch.stack([
                (soft_argmax_flow(f[t], f[t + 1], radius, temperature=temperature).reshape(3, -1) * vs).reshape(
                    true.shape[1:]) for t in range(len(true))])  # fmt: skip
            if labels is not None:
                preds[f"{name}+rigid"] = torch.stack([
                    (piece_flow(f[t], f[t + 1], labels[t], radius, mask=surface[t], temperature=piece_temperature,
                                before=f[t - 1] if t > 0 else None).reshape(3, -1) * vs).reshape(true.shape[1:])
                    for t in range(len(true))])  # fmt: skip
        for name, pred in preds.items():
            e = (pred - true).norm(dim=1)  # (T - 1, Z, Y, X)
            err.setdefault(name, {"moving": [], "static": []})
            err[name]["moving"].append(e[moving])
            err[name]["static"].append(e[static])
    res: dict[str, float] = {f"voxels/{k}": float(v) for k, v in counts.items()}
    for name, parts in err.items():
        for k, v in parts.items():
            cat = torch.cat(v)
            res[f"{name}/epe_{k}"] = float(cat.mean()) if len(cat) else float("nan")
    return res


def tracked_objects(
    item: dict[str, torch.Tensor], grid: VoxelGrid, *, min_pixels: int = 40,
    classes: Sequence[str] = GROUPS["vehicles"], min_frames: int = 3,
) -> list[tuple[int, int, int]]:  # fmt: skip
    """The moving objects to track: ``(box index, first frame, end frame)`` of each moving object of
    ``classes`` from the first frame its centre is in the grid and ``min_pixels`` pixels show it, up to (not
    including) the first frame after that whose centre is out of the grid (the background and the renders
    cover the grid only), when that span has ``min_frames`` frames or more. Frames inside the span in which
    it is hidden still count: a tracker has to carry it through them."""
    boxes = item["boxes"]
    T = boxes.shape[0]
    ids = torch.tensor([class_id(n) for n in classes])
    wanted = item["box_valid"] & item["box_moving"] & torch.isin(item["box_classes"], ids)
    out = []
    for j in wanted.nonzero()[:, 0].tolist():
        inside = grid.contains(boxes[:, j, :3])
        shown = (inside & (item["box_pixels"][:, j] >= min_pixels)).nonzero()
        if len(shown) == 0:
            continue
        start = int(shown[0])
        gone = (~inside[start:]).nonzero()
        end = start + int(gone[0]) if len(gone) else T
        if end - start >= min_frames:
            out.append((j, start, end))
    return out


@torch.no_grad()
def evaluate_tracking(
    items: Iterable[dict[str, torch.Tensor]], grid: VoxelGrid, cfg: TrackConfig, *, min_pixels: int = 40,
    classes: Sequence[str] = GROUPS["vehicles"], max_objects: int | None = None,
) -> dict[str, float]:  # fmt: skip
    """Tracking of every :func:`tracked_objects` object from the frame it appears in, by ``cfg.score``:
    ``render`` (:func:`~unrender.methods.dynamic.track.track`: the background is the sequence's temporal median
    of the memory, the object tensor is cut from that frame's memory by its true box) or ``occupancy``
    (:func:`~unrender.methods.dynamic.track.track_occupancy`: the object's carved occupancy cut by its true box,
    each frame's foreground against the temporal median of the carved occupancy). The tracker and the
    constant-velocity baseline both start from the object's true motion over its first two frames.

    Returns:
        ``track/mean_iou``, ``track/success`` (share of frames with 3D IoU > 0.5) and the same for
        ``constant_velocity/``, over every frame after each object's first; ``truth/preferred``: the share of
        those frames in which the evidence alone (no motion prior) scores the true box no worse than the box
        the tracker kept (whether the score selects the truth: where it does not, better search cannot help);
        ``tracks``, ``frames`` (how many).
    """
    ious: dict[str, list[torch.Tensor]] = {"track": [], "constant_velocity": []}
    preferred = []
    n = 0
    for item in items:
        objects = tracked_objects(item, grid, min_pixels=min_pixels, classes=classes)
        if not objects:
            continue
        frames = frame_memories(item, grid)
        if cfg.score == "render":
            background = temporal_background(frames["memory"], frames["seen"])["background"]
            depths = render_planes(cfg)
        else:
            carved_bg = temporal_background(frames["carved"], frames["known"])["background"][0]
            occupied = frames["carved"][:, 0] > 0
            foreground, free = occupied & (carved_bg < 0.5), frames["known"][:, 0] & ~occupied
        for j, start, end in objects:
            if max_objects is not None and n >= max_objects:
                break
            n += 1
            truth = item["boxes"][start:end, j]
            v0 = truth[1, :3] - truth[0, :3]
            sl = slice(start, end)
            if cfg.score == "render":
                obj, og = crop_object(frames["memory"][start], grid, truth[0])
                out = track(background, grid, obj, og, truth[0], item["rgb"][sl], item["K"][sl],
                            item["cam_from_grid"][sl], cfg, velocity=v0)  # fmt: skip
            else:
                obj, og = crop_object(frames["carved"][start], grid, truth[0], softness=0.0)
                out = track_occupancy(foreground[sl], free[sl], grid, obj, og, truth[0], cfg, velocity=v0)
            cv = truth[:1].repeat(len(truth), 1)
            cv[:, :3] += torch.arange(len(truth), dtype=cv.dtype)[:, None] * v0
            for name, boxes in (("track", out["boxes"].to(truth)), ("constant_velocity", cv)):
                ious[name].append(torch.stack([box_iou_3d(boxes[k : k + 1], truth[k : k + 1])[0, 0]
                                               for k in range(1, len(truth))]))  # fmt: skip
            for k in range(1, len(truth)):
                t, pair = start + k, torch.stack([out["boxes"][k].to(truth), truth[k]])  # kept, true
                if cfg.score == "render":
                    err = [render_error(background, grid, obj, og, b, item["rgb"][t], item["K"][t],
                                        item["cam_from_grid"][t], depths) for b in pair]  # fmt: skip
                else:
                    err = occupancy_score(obj, og, foreground[t], free[t], grid, pair, free_weight=cfg.free_weight)
                preferred.append(bool(err[1] <= err[0] + 1e-6))
    res: dict[str, float] = {"tracks": float(n), "frames": float(len(preferred))}
    for name, v in ious.items():
        cat = torch.cat(v) if v else torch.zeros(0)
        res[f"{name}/mean_iou"] = float(cat.mean()) if len(cat) else float("nan")
        res[f"{name}/success"] = float((cat > 0.5).float().mean()) if len(cat) else float("nan")
    res["truth/preferred"] = sum(preferred) / len(preferred) if preferred else float("nan")
    return res


@torch.no_grad()
def evaluate_dynamic(model: torch.nn.Module, cfg: DynamicConfig, device: torch.device) -> dict[str, float]:
    """The trained features' flow (``features/...``) next to zero flow and raw-input correlation,
    moving-object AP (``detect/...``: background subtraction and the proposal baselines), the tracking of
    moving vehicles (``tracking/...``: :func:`evaluate_tracking`) and the moving-voxel IoU of the weak labels
    and of a segmenter trained on the training sequences' weak labels (``segment/...``), on the held-out
    sequences."""
    model.eval()
    seqs = DynamicDataset(cfg.data, "val")
    core = getattr(model, "module", model)
    shown = cfg.train.progress

    def progress(seq: Sequence, desc: str):  # a bar per score: each goes over every held-out sequence
        return tqdm(seq, desc=desc, disable=not shown, dynamic_ncols=True, leave=False)

    items = []
    for i in progress(range(len(seqs)), "fuse and encode held-out sequences"):  # once for every score below
        item = seqs[i]
        frames = frame_memories(item, core.grid)
        frames["features"] = torch.cat([core.encode(x[None].to(device))["features"].cpu() for x in frames["input"]])
        items.append({**item, "frames": frames})

    def learned(frames: dict[str, torch.Tensor]) -> torch.Tensor:
        return frames["features"]

    fc = cfg.flow
    on_features = replace(cfg.subtraction, signal="features", threshold=cfg.subtraction.feature_threshold)

    def moving_pieces(frames: dict[str, torch.Tensor]) -> torch.Tensor:  # the same pieces for every features
        return connected_components(moving_mask(frames, core.grid, cfg.subtraction)[:, 0])

    res = evaluate_flow(progress(items, "score flow"), core.grid, {"features": learned, "raw": raw_features},
                        radius=fc.radius, temperature=fc.temperature,
                        components=moving_pieces, piece_temperature=fc.piece_temperature)  # fmt: skip
    found = evaluate_subtraction(progress(items, "score background subtraction"), core.grid, cfg.subtraction)
    res.update({f"detect/{k}": v for k, v in found.items()})
    found = evaluate_subtraction(
        progress(items, "score subtraction on features"), core.grid, on_features, features=learned, baselines=False
    )
    res.update({f"detect_features/{k}": v for k, v in found.items() if k.startswith("subtraction/")})
    tracked = evaluate_tracking(progress(items, "score tracking"), core.grid, cfg.track)
    res.update({f"tracking/{k}": v for k, v in tracked.items()})
    train = DynamicDataset(cfg.data, "train")
    segmenter = fit_segmenter([train[i] for i in range(len(train))], core.grid, cfg.segment,
                              progress=cfg.train.progress)  # fmt: skip
    seg = evaluate_segmentation(items, core.grid, segmenter, cfg.segment, features=learned)
    res.update({f"segment/{k}": v for k, v in seg.items()})
    return res


PIECES = "one motion per moving piece (its correlation summed, frames before and after)"
"""The flow table's name of the ``+rigid`` rows (:func:`evaluate_flow`'s ``components``)."""


def _cell(m: dict[str, float], key: str, digits: int = 3) -> str:
    v = m.get(key)
    return f"{v:.{digits}f}" if isinstance(v, float) and v == v else ("" if v is None else str(v))


def results_table(columns: dict[str, dict[str, float]], command: str) -> str:
    """``unrender eval dynamic --markdown``: the issue-30 tables from the runs given (the first is the full
    method; detection, tracking and the weak labels do not depend on the features, and are read from it):
    moving-object AP, flow end-point error, moving-voxel IoU, tracking, and how far each run trained."""
    runs = list(columns)
    first = columns[runs[0]]
    out = [f"Produced by `{command}`.", ""]
    det = [("background subtraction, scored by size", "detect/subtraction/size"),
           ("background subtraction, rescored by centre-surround contrast", "detect/subtraction/contrast"),
           ("background subtraction on the learned features, scored by size", "detect_features/subtraction/size"),
           ("background subtraction on the learned features, rescored by contrast",
            "detect_features/subtraction/contrast"),
           ("centre-surround proposals only", "detect/centre_surround"),
           ("random proposals", "detect/random")]  # fmt: skip
    cols = [(g, k) for g in ("vehicles", None) for k in ("AP3d@0.25", "AP3d@0.5", "APbev@0.25", "APbev@0.5")]
    head = " | ".join(f"{'vehicles' if g else 'all movers'} {k}" for g, k in cols)
    out += [f"Moving objects ({_cell(first, 'detect/objects/vehicles', 0)} vehicle and "
            f"{_cell(first, 'detect/objects', 0)} moving-object boxes over {_cell(first, 'detect/frames', 0)} frames):",
            "", f"| proposals | {head} |", "|---|" + "---|" * len(cols)]  # fmt: skip
    for name, key in det:
        if f"{key}/AP3d@0.25" not in first:
            continue  # a run evaluated before the row existed
        cells = [_cell(first, f"{key}/{g}/{k}" if g else f"{key}/{k}") for g, k in cols]
        out.append(f"| {name} | {' | '.join(cells)} |")
    out += ["", f"Flow end-point error, metres ({_cell(first, 'voxels/moving', 0)} moving and "
            f"{_cell(first, 'voxels/static', 0)} static surface voxels):", "",
            "| flow | moving voxels | static voxels |", "|---|---|---|"]  # fmt: skip
    for r in runs:
        m = columns[r]
        for key, how in (("features", ""), ("features+rigid", f", {PIECES}")):
            if f"{key}/epe_moving" in m:
                out.append(f"| learned features, `{r}`{how} | {_cell(m, f'{key}/epe_moving')} | "
                           f"{_cell(m, f'{key}/epe_static')} |")  # fmt: skip
    for key, how in (("raw", ""), ("raw+rigid", f", {PIECES}")):
        out.append(f"| raw input correlation{how} | {_cell(first, f'{key}/epe_moving')} | "
                   f"{_cell(first, f'{key}/epe_static')} |")  # fmt: skip
    out.append(f"| zero flow | {_cell(first, 'zero/epe_moving')} | {_cell(first, 'zero/epe_static')} |")
    out += ["", f"Moving voxels ({_cell(first, 'segment/moving', 0)} of {_cell(first, 'segment/voxels', 0)} counted "
            "surface voxels move):", "", "| moving voxels | IoU |", "|---|---|",
            f"| weak labels (occupancy changes) | {_cell(first, 'segment/weak/iou')} |",
            f"| segmenter trained on the weak labels | {_cell(first, 'segment/net/iou')} |"]  # fmt: skip
    out += [f"| weak labels (feature changes), `{r}` | {_cell(columns[r], 'segment/weak_features/iou')} |"
            for r in runs if "segment/weak_features/iou" in columns[r]]  # fmt: skip
    out += ["", f"Tracking ({_cell(first, 'tracking/tracks', 0)} moving vehicles, {_cell(first, 'tracking/frames', 0)} "
            "frames after their first):", "", "| tracker | mean 3D IoU | frames with IoU > 0.5 |", "|---|---|---|",
            f"| tracker | {_cell(first, 'tracking/track/mean_iou')} | {_cell(first, 'tracking/track/success')} |",
            f"| constant velocity | {_cell(first, 'tracking/constant_velocity/mean_iou')} | "
            f"{_cell(first, 'tracking/constant_velocity/success')} |", "",
            f"The true box scored no worse than the kept one in {_cell(first, 'tracking/truth/preferred')} of the "
            "frames.", "", "| run | steps trained (skipped) |", "|---|---|"]  # fmt: skip
    for r in runs:
        m = columns[r]
        out.append(f"| `{r}` | {_cell(m, 'trained_steps', 0)} of {_cell(m, 'schedule_steps', 0)} "
                   f"({_cell(m, 'skipped_steps', 0)}) |")  # fmt: skip
    return "\n".join(out) + "\n"
