"""``unrender demo``: the synthetic world and the four systems, with the shipped weights, in one page.

1. renders a street video and a room (RGB, depth, semantics, 3D boxes, exact occupancy) and carves
   the room's depth into voxels with the geometry core;
2. runs each system's shipped weights (``unrender.weights``; nothing is trained here) on held-out
   generated scenes and, where ``--real-data`` holds them, on real frames: neural 3D mapping, metric
   depth (a generated street and the KITTI frames with their LiDAR ground truth), novel-view synthesis,
   and the learned-energy models (pose lifting, also on the Human3.6M frames; single-view voxels).

Every metric shows a readable name, its unit, which direction is better, its baseline and the target
from ``docs/results.md``. A model section whose weights are missing or did not finish their schedule
says so in a warning. Numbers come from a few held-out scenes so the page builds in minutes; the
full evaluations are in ``docs/results.md``.

Writes ``<out>/index.html`` (no external files or CDN) and ``<out>/summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DemoConfig", "run_demo"]

INTRO = (
    "unrender recovers the 3D world behind images with cameras: one image, a video, or many posed views. "
    "Four systems share one geometry core, one synthetic world and one training engine: neural 3D mapping "
    "(posed RGB-D views -> a voxel memory -> occupancy, semantics, oriented 3D boxes and new views), metric "
    "monocular depth from video (self-supervised, made metric by object heights and a constant camera height), "
    "transformer novel-view synthesis on Plücker-ray tokens, and learned-energy inverse graphics (a learned "
    "energy minimised by a few unrolled gradient steps: 2D->3D human pose, one image -> voxels). Every model "
    "below runs the weights shipped in the package, trained with unrender's own code (the card beside each "
    "checkpoint says how); nothing is trained while this page is built. Each metric gives its unit, which "
    "direction is better, the baseline it is compared with and the target from docs/results.md; the numbers "
    "here come from a few held-out scenes, the full evaluations are in docs/results.md."
)


ABOUT = {
    "mapping": (
        "Posed RGB-D views are unprojected into a voxel memory stabilised to the first camera; a 3D CNN "
        "predicts occupancy (also where no camera looked), semantics, oriented 3D boxes (CenterNet-style) "
        "and a rendered held-out view."
    ),
    "depth": (
        "One image in, metric depth out. Trained self-supervised on generated street videos (each frame "
        "predicted from its neighbours), made metric by the known heights of cars and people (depth = f H / h) "
        "and a camera height that stays constant over a video. The previews show the part of the frame the "
        "model sees (a 3:1 crop), its depth and a colour bar in metres."
    ),
    "nvs": (
        "Two posed images of an object in, a new view out: a transformer on Plücker-ray tokens (LVSM-style, "
        "decoder-only) with no 3D structure built in. These weights finished their schedule but the model is "
        "weak: it does not beat copying the nearest input view yet, and its renders are mostly a blurred blob on "
        "the plain background (docs/results.md)."
    ),
    "energy-pose": (
        "2D joints of a person (17, Human3.6M order) and the camera in, 3D joints out: an initial network's "
        "guess refined by K unrolled gradient steps on a learned energy (reprojection error + a learned "
        "pose prior). Trained on generated skeletons only."
    ),
    "energy-voxels": (
        "One image of an object in, its occupancy on a voxel grid tied to the camera out: an initial "
        "decoder's guess refined by K unrolled gradient steps on a learned energy."
    ),
    "radiance": (
        "A real capture (the fox: 50 hand-held photos with their cameras) fitted by optimisation, not predicted: "
        "a 128^3 voxel grid of density and colour over a contracted space (the background out to infinity "
        "included) renders the training photos by volume rendering. Every 8th photo was held out of the fit; "
        "it is compared with the nearest training photo reprojected into its camera."
    ),
    "code-prior": (
        "The mapping net with a vector-quantised bottleneck carries a whole room in an 8 x 4 x 8 grid of codes "
        "(512 entries); a gated 3D PixelCNN learned the distribution of those grids. Here a block of a held-out "
        "room's codes is deleted and drawn again by the prior, given the rest, and decoded back to a room."
    ),
}
"""What each system does, shown at the top of its section."""


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    """Where the page, the summary and the generated scenes go."""
    seed: int = 0
    """Which street and room to draw."""
    real_data: Path = Path("../shared/data")
    """Folder with the real samples (kitti_depth/, h36m/); sections that need them say so when absent."""
    device: str = "auto"


def _metric(name: str, value: float | None, unit: str, better: str, baseline: str = "", target: str = "") -> dict:
    return {"name": name, "value": value, "unit": unit, "better": better, "baseline": baseline, "target": target}


def _class_colors(ids: np.ndarray) -> list[tuple[int, int, int]]:
    from .viz import colorize_labels

    return [tuple(int(v) for v in colorize_labels(np.array([[i]]), 64)[0, 0]) for i in ids]


def _legend(ids: Any) -> dict[str, tuple[int, int, int]]:
    from .world import CLASSES

    ids = sorted({int(i) for i in np.asarray(ids).reshape(-1)})
    return dict(zip([CLASSES[i] for i in ids], _class_colors(np.array(ids)), strict=True))


def _box_lines(boxes: torch.Tensor) -> np.ndarray:
    """World/memory-frame end points ``(24 M, 3)`` of the 12 edges of each box."""
    from .geometry import BOX_EDGES, box_corners

    if len(boxes) == 0:
        return np.zeros((0, 3))
    c = box_corners(boxes.double())
    e = torch.tensor(BOX_EDGES)
    return torch.stack([c[:, e[:, 0]], c[:, e[:, 1]]], 2).reshape(-1, 3).numpy()


# ----------------------------------------------------------------------------------------- synthetic world


def _street_section(seed: int) -> tuple[dict, dict]:
    """The street section and the rendered sample (reused by the depth section)."""
    from .viz import box_edges_2d, colorize_depth, colorize_labels, draw_segments, image_grid
    from .world import CLASSES
    from .world.sample import SynthConfig, make_sample

    s = make_sample(SynthConfig(kind="streets", views=6, height=120, width=400, seed=seed, occupancy=False), 0)
    rows = []
    for v in range(0, 6, 2):
        visible = s["mask_pixels"][v] > 0
        segs, owner = box_edges_2d(torch.from_numpy(s["boxes_world"][v][visible]), torch.from_numpy(s["K"][v]),
                                   torch.from_numpy(s["cam_from_world"][v]))  # fmt: skip
        colors = _class_colors(s["box_classes"][visible][owner])
        rgb = s["rgb"][v].transpose(1, 2, 0)
        rows.append([draw_segments(rgb, segs, colors), colorize_depth(s["depth"][v, 0], max_depth=60)])
        rows.append([colorize_labels(s["semantic"][v, 0], 64), rgb])
    counts: dict[str, int] = {}
    for c in s["box_classes"]:
        counts[CLASSES[c]] = counts.get(CLASSES[c], 0) + 1
    section = {
        "about": "A procedural street rendered by unrender's ray-caster, with exact depth, semantics and 3D boxes.",
        "frames": "6 (1 m apart), every second one shown",
        "boxed objects": ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
        "camera height (m)": float(s["camera_height"][0]),
        "legend": {"semantic classes": _legend(s["semantic"])},
        "images": {
            "frames 0, 2, 4: 3D boxes on RGB | depth (0-60 m, near = bright); semantics | RGB": image_grid(rows)
        },
    }
    return section, s


def _dynamic_section(seed: int, out: Path) -> dict:
    """A generated traffic sequence fused into its anchor grid: the background/moving split of the carved
    occupancy and one moving vehicle followed by the occupancy tracker from its first two boxes. No learned
    weights enter (the background, the weak labels and the tracker work on the fused memory alone)."""
    from .geometry import bev_polygons, box_iou_3d
    from .methods.dynamic.background import temporal_background
    from .methods.dynamic.config import DynamicData, SubtractionConfig, TrackConfig
    from .methods.dynamic.data import DynamicDataset
    from .methods.dynamic.detect import frame_memories, subtract_background
    from .methods.dynamic.evaluate import tracked_objects
    from .methods.dynamic.track import crop_object, track_occupancy
    from .viz import box_edges_2d, draw_segments, image_grid

    ds = DynamicDataset(DynamicData(num_train=1, num_val=3, seed=seed, root=out / "data"), "val", workers=0)
    grid = ds.grid
    for i in range(len(ds)):
        item = ds[i]
        objects = tracked_objects(item, grid)
        if objects:
            break
    else:
        return {"about": "None of the generated sequences had a moving vehicle to follow."}
    j, start, end = max(objects, key=lambda o: o[2] - o[1])
    frames = frame_memories(item, grid)
    split = subtract_background(frames, grid, SubtractionConfig())
    carved_bg = temporal_background(frames["carved"], frames["known"])["background"][0]
    occupied = frames["carved"][:, 0] > 0
    foreground, free = occupied & (carved_bg < 0.5), frames["known"][:, 0] & ~occupied
    truth = item["boxes"][start:end, j]
    v0 = truth[1, :3] - truth[0, :3]
    obj, og = crop_object(frames["carved"][start], grid, truth[0], softness=0.0)
    tracked = track_occupancy(foreground[start:end], free[start:end], grid, obj, og, truth[0], TrackConfig(),
                              velocity=v0)["boxes"].float()  # fmt: skip
    cv = truth[:1].repeat(len(truth), 1)
    cv[:, :3] += torch.arange(len(truth), dtype=cv.dtype)[:, None] * v0
    steps = range(1, len(truth))
    iou = {n: float(torch.stack([box_iou_3d(b[k : k + 1], truth[k : k + 1])[0, 0] for k in steps]).mean())
           for n, b in (("tracked", tracked), ("constant velocity", cv))}  # fmt: skip
    # bird's-eye view of the grid: x across, far (z) up; 4 pixels a voxel
    X0, Z1 = grid.bounds_min[0], grid.bounds_max[2]
    vx, _, vz = grid.voxel_size
    sc = 4
    _, ys, _ = grid.axis_centers()
    above = (ys <= -0.2)[None, :, None]  # (1, Y, 1) against (Z, Y, X): the road is not shown

    def bev(t: int) -> np.ndarray:
        bg = ((carved_bg >= 0.5) & above).any(1).numpy()  # (Z, X)
        mov = (split["moving"][t, 0] & above).any(1).numpy()
        im = np.full(bg.shape + (3,), 30, np.uint8)
        im[bg] = (150, 150, 150)
        im[mov] = (230, 40, 40)
        im = np.repeat(np.repeat(im[::-1], sc, 0), sc, 1)  # far (high z) at the top
        k = t - start
        segs, cols = [], []
        for b, col in ((truth[k], (255, 220, 0)), (tracked[k], (60, 220, 60))):
            p = bev_polygons(b[None].double())[0].numpy()  # (4, 2): x, z
            px = np.stack([(p[:, 0] - X0) / vx * sc, (Z1 - p[:, 1]) / vz * sc], -1)
            segs += [[px[a], px[(a + 1) % 4]] for a in range(4)]
            cols += [col] * 4
        return draw_segments(im, np.array(segs), cols, width=2)

    shown = sorted({start, (start + end - 1) // 2, end - 1})
    rows = [[bev(t) for t in shown]]
    rgb_row = []
    for t in shown:
        k = t - start
        segs, owner = box_edges_2d(torch.stack([truth[k], tracked[k]]).double(), item["K"][t, 0].double(),
                                   item["cam_from_grid"][t, 0].double())  # fmt: skip
        colors = [((255, 220, 0), (60, 220, 60))[int(o)] for o in owner]
        rgb_row.append(np.repeat(np.repeat(draw_segments(item["rgb"][t, 0].permute(1, 2, 0).numpy(), segs, colors),
                                           3, 0), 3, 1))  # fmt: skip
    rows.append(rgb_row)
    return {
        "about": "A street seen over 20 frames by a rig of three RGB-D cameras on a moving car, every frame fused "
        "into one voxel grid fixed to the street (the ego-motion removed). The per-voxel median over time is the "
        "background; what differs from it moves. One moving vehicle is followed from its first two boxes by "
        "matching its carved occupancy to each frame's foreground and free space (no learned weights).",
        "tracked vehicle": f"frames {start}-{end - 1}",
        "metrics": [
            _metric(
                "tracked box, mean 3D IoU",
                iou["tracked"],
                "0-1",
                "higher",
                f"constant velocity {iou['constant velocity']:.3f}",
                "docs/results.md (dynamic scenes)",
            ),  # fmt: skip
        ],
        "legend": {
            "boxes and voxels": {
                "true box": (255, 220, 0),
                "tracked box": (60, 220, 60),
                "background": (150, 150, 150),
                "moving voxels": (230, 40, 40),
            }
        },  # fmt: skip
        "images": {
            f"frames {', '.join(map(str, shown))}: bird's-eye view of the grid (32 x 32 m, far at the top; the "
            "road left out) | the forward camera with the boxes": image_grid(rows)
        },
    }


def _room_section(seed: int) -> tuple[dict, dict]:
    from .geometry import VoxelGrid, carve_depth
    from .metrics import voxel_iou
    from .viz import colorize_depth, colorize_labels, frustum_lines, image_grid
    from .world import CLASSES, Scene
    from .world.sample import SynthConfig, make_sample
    from .world.truth import occupancy

    s = make_sample(SynthConfig(kind="rooms", views=4, height=128, width=128, seed=seed), 0)
    grid = VoxelGrid.from_json(json.dumps(json.loads(str(s["meta"]))["grid"]))
    sem = torch.from_numpy(s["semantic_voxels"]).long()
    occ = sem > 0
    # a finer grid for the 3D view: surface voxels of everything but floor and walls
    scene = Scene.from_json(str(s["scene_json"]))
    fine = VoxelGrid(grid.bounds_min, grid.bounds_max, tuple(2 * r for r in grid.resolution))
    fine_occ, fine_sem = occupancy(scene, fine, include=tuple(c for c in CLASSES[1:] if c not in ("floor", "wall")))
    solid = fine_occ[0].bool()
    # surface voxels: solid ones with an empty voxel in their 3x3x3 neighbourhood (erosion by min-pooling)
    interior = -torch.nn.functional.max_pool3d(-solid[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0.5
    surface = solid & ~interior
    pts = fine.centers(dtype=torch.float64)[surface].numpy()
    cols = colorize_labels(fine_sem[surface].numpy()[None], 64)[0]
    K, T = torch.from_numpy(s["K"]), torch.from_numpy(s["cam_from_world"])
    cams = [{"lines": frustum_lines(K[i], T[i], 128, 128, 0.6), "color": "#d62728"} for i in range(len(K))]
    rows = [[s["rgb"][i].transpose(1, 2, 0) for i in range(4)], [colorize_depth(s["depth"][i, 0]) for i in range(4)],
            [colorize_labels(s["semantic"][i, 0], 64) for i in range(4)]]  # fmt: skip
    # geometry core: carve the rendered depth into the same grid and compare with the exact occupancy
    t0 = time.perf_counter()
    carved, free = carve_depth(grid, torch.from_numpy(s["depth"]).double(), K, T)
    ms = 1000 * (time.perf_counter() - t0)
    known = (carved + free) > 0
    iou = voxel_iou(carved[None], occ.double()[None, None], mask=known[None]).item()
    room = {
        "about": "A generated room seen from 4 cameras, and its exact occupancy from the analytic scene.",
        "views": 4,
        "voxel grid": f"{grid.resolution} over {tuple(round(v, 2) for v in grid.bounds_min)}.."
        f"{tuple(round(v, 2) for v in grid.bounds_max)} m",
        "occupied voxels (exact)": int(occ.sum()),
        "legend": {"semantic classes": _legend(s["semantic"])},
        "images": {"RGB, depth and semantics of the 4 views": image_grid(rows, scale=2)},
        "scene3d": {"exact occupancy (floor hidden), coloured by class, and the 4 cameras": {
            "points": pts, "colors": cols, "point_size": float(min(fine.voxel_size)), "cameras": cams}},
    }  # fmt: skip
    geo = {
        "about": "The geometry core carves the rendered depth maps into the room's voxel grid (no learning).",
        "carve depth -> voxels (ms)": ms,
        "IoU carved vs exact (voxels the views observe)": iou,
    }
    return room, geo


# ----------------------------------------------------------------------------------------- shipped models


def _model_section(name: str, about: str, out: Path, device: str, build: Callable[..., dict]) -> dict:
    """A system's section: ``about``, the state of ``name``'s shipped weights (``"model"``: ``"trained"`` when
    they finished their schedule, else a warning), and ``build(cfg, model)``'s metrics, pictures and rows."""
    from .weights import load_trained

    section: dict[str, Any] = {"about": about}
    try:
        cfg, model, folder, _ = load_trained(name, None, device, data_root=out / "data")
    except FileNotFoundError as e:
        return {**section, "model": f"NOT TRAINED: {e}. This section shows no model."}
    step, planned = int(json.loads((folder / "state.json").read_text())["step"]), int(cfg.train.max_steps)
    unfinished = f"PARTLY TRAINED: the shipped weights stopped at step {step} of the {planned} their schedule planned."
    section["model"] = "trained" if step >= planned else unfinished
    section.update(build(cfg, model))
    section["weights"] = f"shipped (src/unrender/weights/{name}/card.md: the command, commit, data and results)"
    section["training steps"] = f"{step} of {planned}"
    return section


def _mapping_section(cfg: Any, model: torch.nn.Module, device: torch.device) -> dict:
    """Shipped mapping weights on held-out generated rooms: metrics, a held-out view, 3D occupancy and boxes."""
    from .methods.mapping.data import MappingDataset, memory_grid
    from .methods.mapping.evaluate import evaluate_mapping
    from .viz import box_edges_2d, colorize_labels, draw_segments, frustum_lines, image_grid

    scenes = 4
    cfg.data.num_val = scenes
    with torch.no_grad():  # as `unrender eval` runs it (the energy models turn gradients on inside)
        m = evaluate_mapping(model, cfg, device, max_scenes=scenes)
    item = MappingDataset(cfg, "val")[0]
    with torch.no_grad():
        o = model({k: v[None].to(device) for k, v in item.items()})
    o = {k: v.cpu() for k, v in o.items()}
    grid = memory_grid(cfg)
    centers = grid.centers(dtype=torch.float64)
    pred_occ = torch.sigmoid(o["occ_logits"][0, 0]) > 0.5
    pred_sem = o["sem_logits"][0].argmax(0)
    dets = model.detect(o)[0]
    strong = dets["scores"] > 0.3
    gt_boxes = item["boxes"][item["box_labels"] >= 0]
    H, W = item["rgb_in"].shape[-2:]
    cams = [{"lines": frustum_lines(item["K_in"][i].double(), item["cam_from_mem_in"][i].double(), H, W, 0.5),
             "color": "#888888"} for i in range(len(item["K_in"]))]  # fmt: skip

    def view(mask: torch.Tensor, sem: torch.Tensor, boxes: torch.Tensor, color: str) -> dict:
        return {
            "points": centers[mask].numpy(),
            "colors": colorize_labels(sem[mask].numpy()[None], 64)[0],
            "point_size": min(grid.voxel_size),
            "cameras": [*cams, {"lines": _box_lines(boxes), "color": color}],
        }

    K, T = item["K_out"].double(), item["cam_from_mem_out"].double()
    img = (item["rgb_out"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    g_seg, _ = box_edges_2d(gt_boxes.double(), K, T)
    p_seg, _ = box_edges_2d(dets["boxes"][strong].double(), K, T)
    drawn = draw_segments(draw_segments(img, g_seg, [(40, 200, 40)] * len(g_seg)), p_seg, [(230, 40, 40)] * len(p_seg))
    pred_view = (o["rgb_pred"][0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    metrics = [
        _metric("occupancy IoU (amodal, whole grid)", m["occ_iou"], "0-1", "higher",
                f"occupancy carved from the input depths: {m['occ_iou_carve_baseline']:.3f}",
                "beat the carving baseline (docs: 0.786 vs 0.140)"),
        _metric("semantic mIoU (occupied voxels)", m["sem_miou"], "0-1", "higher", "", "none set (docs: 0.393)"),
        _metric("3D box mAP at IoU 0.25", m["mAP3d@0.25"], "0-1", "higher", "", ">= 0.6 (docs: 0.605)"),
        _metric("3D box mAP at IoU 0.5", m["mAP3d@0.5"], "0-1", "higher", "", ">= 0.3 (docs: 0.381)"),
        _metric("held-out view PSNR", m["psnr"], "dB", "higher",
                f"mean-colour image {m['psnr_mean_colour']:.2f} dB; nearest view reprojected "
                f"{m['psnr_reproject_baseline']:.2f} dB", "+6 dB over the mean-colour image (docs: +6.32)"),
    ]  # fmt: skip
    floorless_gt = item["sem"] > 1  # leave the floor out of the 3D views
    floorless_pred = pred_occ & (pred_sem > 1)
    return {
        "metrics": metrics,
        "held-out rooms scored": scenes,
        "legend": {"semantic classes": _legend(item["sem"])},
        "images": {"held-out view: 3D boxes (green truth, red prediction) | the predicted view": image_grid(
            [[drawn, pred_view]], scale=3)},
        "scene3d": {
            "predicted occupancy (coloured by predicted class), predicted boxes (red), input cameras (grey)": view(
                floorless_pred, pred_sem, dets["boxes"][strong], "#d62728"),
            "exact occupancy and true boxes (green)": view(floorless_gt, item["sem"], gt_boxes, "#2ca02c"),
        },
    }  # fmt: skip


def _depth_on(frames: Path, intrinsics: Path, gt: Path, out: Path, device: str) -> tuple[dict, list[np.ndarray]]:
    """``unrender predict depth`` on a folder with ground truth: its predictions.json and the previews."""
    from PIL import Image

    from .methods.depth.predict import DepthPredictArgs, predict_depth_files

    predict_depth_files(DepthPredictArgs(input=frames, intrinsics=intrinsics, gt=gt, out=out, device=device))
    summary = json.loads((out / "predictions.json").read_text())
    return summary, [np.asarray(Image.open(f["preview"]).convert("RGB")) for f in summary["frames"]]


def _depth_section(out: Path, street: dict, real: Path, device: str) -> dict:
    """Shipped depth weights, through ``predict depth``, on the generated street and the KITTI frames."""
    from .data.formats import write_kitti_depth_png
    from .viz import box_edges_2d, draw_segments, image_grid, save_png

    # the generated street as files, so the page shows exactly what `unrender predict depth` writes
    folder = out / "depth-street"
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    for v in range(len(street["rgb"])):
        save_png(folder / "frames" / f"{v:04d}.png", street["rgb"][v].transpose(1, 2, 0))
        write_kitti_depth_png(folder / "gt" / f"{v:04d}.png", torch.from_numpy(street["depth"][v]).float())
    H, W = street["rgb"].shape[-2:]
    (folder / "intrinsics.json").write_text(json.dumps({"K": street["K"][0].tolist(), "width": W, "height": H}))
    gen, gen_previews = _depth_on(folder / "frames", folder / "intrinsics.json", folder / "gt", folder / "pred", device)
    boxed = []
    for v in (0, 3):
        visible = street["mask_pixels"][v] > 0
        segs, owner = box_edges_2d(
            torch.from_numpy(street["boxes_world"][v][visible]),
            torch.from_numpy(street["K"][v]),
            torch.from_numpy(street["cam_from_world"][v]),
        )
        boxed.append(draw_segments(street["rgb"][v].transpose(1, 2, 0), segs,
                                   _class_colors(street["box_classes"][visible][owner])))  # fmt: skip
    heights = [f["camera_height_m"] for f in gen["frames"] if f["camera_height_m"] is not None]
    cam_h = float(np.median(heights)) if heights else None
    metrics = [
        _metric("generated street: abs. relative error, metric (no rescaling)", gen["mean unscaled/abs_rel"],
                "fraction of true depth", "lower", "self-supervised base, median-scaled with the truth: 0.137 (docs)",
                "within 0.03 of the median-scaled error (docs: 0.162 vs 0.137)"),
        _metric("generated street: abs. relative error, median-scaled", gen["mean median/abs_rel"],
                "fraction of true depth", "lower", "", "<= 0.15"),
        _metric("generated street: scale error (median true / predicted)", gen["mean median/scale"], "ratio",
                "closer to 1", "", "1 +- 5 % (docs: 1.007)"),
        _metric("generated street: camera height from the road plane", cam_h, "m", "closer to 1.65", "",
                "1.65 m +- 5 % (docs: 1.657)"),
    ]  # fmt: skip
    images = {
        "generated street: objects with known heights that set the metric scale in training (3D boxes), frames 0, 3":
            image_grid([boxed]),
        "generated street, predicted depth (frames 0, 3): model input | depth | colour bar (m)":
            image_grid([[gen_previews[0]], [gen_previews[3]]]),
    }  # fmt: skip
    section: dict[str, Any] = {}
    kitti = real / "kitti_depth"
    if (kitti / "rgb").is_dir() and (kitti / "depth").is_dir():
        intr = kitti / "test_annotations.json"
        kt, _ = _depth_on(kitti / "rgb", intr, kitti / "depth", out / "depth-kitti" / "pred", device)
        metrics += [
            _metric("KITTI (3 real frames, LiDAR truth): abs. relative error, metric", kt["mean unscaled/abs_rel"],
                    "fraction of true depth", "lower",
                    f"the generated street above: {gen['mean unscaled/abs_rel']:.3f}",
                    "none set yet: the synthetic-to-real gap (docs: 0.243)"),
            _metric("KITTI: abs. relative error, median-scaled", kt["mean median/abs_rel"], "fraction of true depth",
                    "lower", f"the generated street above: {gen['mean median/abs_rel']:.3f}",
                    "none set yet (docs: 0.312)"),
            _metric("KITTI: scale error (median true / predicted)", kt["mean median/scale"], "ratio", "closer to 1",
                    "", "none set yet (docs: 1.32)"),
        ]  # fmt: skip
        rows = [_kitti_row(f) for f in kt["frames"]]
        caption = ("KITTI: the part of each frame the model sees | predicted depth | LiDAR ground truth (the same "
                   "colour scale, metres; black = no LiDAR return); no instance masks come with these frames, so "
                   "the scale is the one learned in training")  # fmt: skip
        images[caption] = image_grid(rows)
    else:
        section["real frames"] = f"skipped: {kitti} not found (pass --real-data)"
    section.update({"metrics": metrics, "images": images})
    return section


def _kitti_row(frame: dict[str, Any], size: tuple[int, int] = (96, 288)) -> list[np.ndarray]:
    """Input crop | predicted depth | ground truth of one KITTI frame, on one colour scale, with a colour bar."""
    import torch.nn.functional as F

    from .data.formats import fit_map, fit_view_crop, read_kitti_depth_png, read_rgb
    from .viz import colorize_depth, depth_colorbar, to_uint8

    pred, gt = read_kitti_depth_png(frame["depth_png"]), read_kitti_depth_png(frame["gt"])
    rgb = read_rgb(Path(frame["gt"]).parents[1] / "rgb" / f"{frame['name']}.png")
    top, left, ch, cw = fit_view_crop(*pred.shape[-2:], *size)

    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[:, top : top + ch, left : left + cw][None]

    p = fit_map(pred, *size)[0]
    valid = (crop(gt) > 0).float()  # sparse LiDAR: the mean of the returns in each output pixel
    num = F.adaptive_avg_pool2d(crop(gt) * valid, size)
    den = F.adaptive_avg_pool2d(valid, size)
    g = torch.where(den > 0, num / den.clamp(min=1e-9), torch.zeros_like(num))[0, 0]
    lo, hi = max(1.0, float(g[g > 0].min())), 80.0
    shown = [
        to_uint8(F.interpolate(crop(rgb), size, mode="area")[0]),
        colorize_depth(p, min_depth=lo, max_depth=hi),
        colorize_depth(g, min_depth=lo, max_depth=hi),
    ]
    return [*shown, depth_colorbar(size[0], lo, hi)]


def _nvs_section(cfg: Any, model: torch.nn.Module, device: torch.device) -> dict:
    from .methods.nvs.evaluate import evaluate_nvs

    cfg.data.num_val = 2
    with torch.no_grad():  # as `unrender eval` runs it (the energy models turn gradients on inside)
        m = evaluate_nvs(model, cfg, device, max_items=2 * cfg.data.views, images=4)
    metrics = [
        _metric("new-view PSNR", m["model/psnr"], "dB", "higher",
                f"nearest input view copied: {m['nearest/psnr']:.2f} dB",
                ">= 3 dB over the nearest view: not met yet (docs: -0.8 dB)"),
        _metric("new-view SSIM", m["model/ssim"], "0-1", "higher", f"nearest input view: {m['nearest/ssim']:.3f}", ""),
        _metric("gain over the nearest view", m["psnr_gain_over_nearest"], "dB", "higher", "0", ">= 3"),
    ]  # fmt: skip
    return {"metrics": metrics,
            "held-out objects scored": m["scenes"], "targets scored": m["targets"], "images": m["images"]}  # fmt: skip


def _radiance_section(cfg: Any, model: torch.nn.Module, real: Path, device: torch.device) -> dict:
    """The shipped fox grid: an orbit around it, and two held-out photos scored when the fox is in ``real``."""
    from .methods.radiance.data import load_views
    from .methods.radiance.evaluate import evaluate_views
    from .methods.radiance.predict import render_orbit
    from .viz import to_uint8

    frames = [to_uint8(f) for f in render_orbit(model, 24)]
    caption = ("an orbit around the fox, rendered from the fitted grid (24 frames; `unrender predict radiance "
               "--ckpt shipped` writes it as MP4)")  # fmt: skip
    out: dict[str, Any] = {"images": {caption: frames}}
    fox = real / "nerf_fox" / "transforms.json"
    if not fox.is_file():
        out["held-out photos"] = f"not scored: {fox} is absent"
        return out
    d = cfg.data
    views = load_views(fox, d.downscale, d.holdout)  # cached: a copy with two held-out photos, not an edit
    views = dataclasses.replace(views, held_out=views.held_out[:2])
    m = evaluate_views(model, views, cfg.eval.chunk)
    best = max(m["nearest_plane/psnr"], m["nearest_depth/psnr"])
    out["metrics"] = [
        _metric("held-out photo PSNR (1/8 size)", m["fit/psnr"], "dB", "higher",
                f"nearest training photo reprojected: {best:.2f} dB", ">= 23 dB and >= 5 dB over the baseline"),
        _metric("held-out photo SSIM", m["fit/ssim"], "0-1", "higher",
                f"reprojected: {max(m['nearest_plane/ssim'], m['nearest_depth/ssim']):.3f}", ""),
    ]  # fmt: skip
    out["held-out photos scored"] = m["held_out_views"]
    out["images"].update(m["images"])
    return out


def _skeleton_lines(joints: torch.Tensor, offset: float) -> np.ndarray:
    from .world.generators import H36M_PARENTS

    pairs = [(j, p) for j, p in enumerate(H36M_PARENTS) if p >= 0]
    j = joints.double().numpy() + np.array([offset, 0.0, 0.0])
    return np.stack([np.stack([j[a], j[b]]) for a, b in pairs]).reshape(-1, 3)


def _energy_pose_section(cfg: Any, model: torch.nn.Module, real: Path, device: torch.device) -> dict:
    from .methods.energy.pose.data import h36m_samples
    from .methods.energy.pose.evaluate import _predict, evaluate_pose

    h36m = real / "h36m"
    cfg.data.h36m = h36m if (h36m / "test_h36m_body3d.npz").is_file() else None
    cfg.data.num_val = min(cfg.data.num_val, 500)  # held-out poses scored here (docs/results.md: 2000)
    with torch.no_grad():  # as `unrender eval` runs it (the energy models turn gradients on inside)
        m = evaluate_pose(model, cfg, device)
    k = f"K{cfg.model.steps}"
    metrics = [
        _metric(f"MPJPE, generated poses, exact 2D ({k})", m[f"{k}/mpjpe@0px"], "mm", "lower",
                f"initial network (K0): {m['K0/mpjpe@0px']:.1f} mm; "
                f"fit to 2D with no prior: {m['fit/mpjpe@0px']:.1f} mm",
                ">= 15 mm better than K0 (docs: 18.4)"),
        _metric(f"MPJPE, generated poses, 5 px 2D noise ({k})", m[f"{k}/mpjpe@5px"], "mm", "lower",
                f"K0: {m['K0/mpjpe@5px']:.1f} mm", ">= 15 mm better than K0 (docs: 18.8)"),
    ]  # fmt: skip
    section: dict[str, Any] = {}
    if cfg.data.h36m is not None:
        metrics += [
            _metric(f"Human3.6M (4 real frames): MPJPE, protocol #1 ({k})", m[f"{k}/h36m/mpjpe"], "mm", "lower",
                    f"fit to 2D with no prior: {m['fit/h36m/mpjpe']:.1f} mm", "none set yet (docs: 199.8)"),
            _metric(f"Human3.6M: P-MPJPE, protocol #2, after Procrustes ({k})", m[f"{k}/h36m/p_mpjpe"], "mm", "lower",
                    f"fit to 2D with no prior: {m['fit/h36m/p_mpjpe']:.1f} mm", "none set yet (docs: 107.7)"),
        ]  # fmt: skip
        data = h36m_samples(cfg.data.h36m)
        batch = {"joints_2d": data["joints_2d"].to(device), "K": data["K"].to(device)}
        with torch.no_grad():
            pred = _predict(model, batch, cfg.model.steps)[cfg.model.steps].cpu()
        gt = data["joints_cam"]
        pred_c, gt_c = pred - pred[:, :1], gt - gt[:, :1]  # root-relative, side by side
        lines_gt = np.concatenate([_skeleton_lines(g, 1.2 * i) for i, g in enumerate(gt_c)])
        lines_pr = np.concatenate([_skeleton_lines(p, 1.2 * i) for i, p in enumerate(pred_c)])
        pts = np.concatenate([lines_gt, lines_pr])
        cols = np.concatenate([np.tile([40, 160, 40], (len(lines_gt), 1)), np.tile([220, 40, 40], (len(lines_pr), 1))])
        section["scene3d"] = {"the 4 Human3.6M frames lifted to 3D (root-relative, metres): truth green, "
                              f"prediction ({k}) red": {"points": pts, "colors": cols, "point_size": 0.03,
                              "cameras": [{"lines": lines_gt, "color": "#2ca02c"},
                                          {"lines": lines_pr, "color": "#d62728"}]}}  # fmt: skip
    else:
        section["real frames"] = f"skipped: {h36m} not found (pass --real-data)"
    section.update({"metrics": metrics, "images": m["images"]})
    return section


def _energy_voxels_section(cfg: Any, model: torch.nn.Module, device: torch.device) -> dict:
    from .methods.energy.voxels.data import VoxelViews, grid_points
    from .methods.energy.voxels.evaluate import _iterates, evaluate_voxels

    cfg.data.num_val = 2
    with torch.no_grad():  # as `unrender eval` runs it (the energy models turn gradients on inside)
        m = evaluate_voxels(model, cfg, device)
    k = f"K{cfg.model.steps}"
    metrics = [
        _metric(f"voxel IoU ({k}, the trained number of steps)", m[f"{k}/iou"], "0-1", "higher",
                f"initial decoder (K0): {m['K0/iou']:.3f}; plain encoder-decoder of the same size: 0.503 (docs)",
                "beat the encoder-decoder: not met yet (docs: 0.497 vs 0.503)"),
    ]  # fmt: skip
    item = VoxelViews(cfg, "val")[0]
    with torch.no_grad():
        ys = _iterates(model, {k2: v[None].to(device) for k2, v in item.items()}, cfg.model.steps)
    occ = (ys[-1][0] > 0).cpu()
    centres = grid_points(cfg.data, item["K"]).reshape(-1, 3).double()
    flat_pred, flat_gt = occ.reshape(-1), (item["occupancy"] > 0.5).reshape(-1)

    def cloud(mask: torch.Tensor, colour: tuple[int, int, int]) -> dict:
        p = centres[mask].numpy()
        shade = np.clip(1.2 - (p[:, 2:3] - p[:, 2].min()) / max(np.ptp(p[:, 2]), 1e-6) * 0.6, 0.4, 1.0)
        return {"points": p, "colors": (np.array(colour)[None] * shade).astype(np.uint8), "point_size": 0.04}

    return {
        "metrics": metrics,
        "held-out views scored": m["views"], "images": m["images"],
        "scene3d": {
            f"held-out view 0, predicted occupancy ({k}; camera frame, nearer = brighter)": cloud(
                flat_pred, (220, 60, 40)
            ),
            "its exact occupancy": cloud(flat_gt, (40, 160, 40)),
        },
    }  # fmt: skip


def _code_prior_section(cfg: Any, model: torch.nn.Module, out: Path, device: torch.device) -> dict:
    """Shipped code prior and its quantised mapping decoder: a held-out room's deleted block inpainted, in 3D."""
    from .methods.mapping.data import MappingDataset, memory_grid
    from .methods.prior.evaluate import choose_order, delete_block, fill_cells, score_fills
    from .viz import colorize_labels
    from .weights import SHIPPED, load_trained

    mcfg, decoder, _, _ = load_trained("mapping", SHIPPED / "code-prior" / "decoder", str(device),
                                       data_root=out / "data")  # fmt: skip
    mcfg.data.num_val = 4
    item = MappingDataset(mcfg, "val")[0]
    occ = item["occ"][0] > 0.5
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        true = decoder.encode_codes({k: v[None].to(device) for k, v in item.items()})[0].cpu()
        fill, region = delete_block(occ, tuple(true.shape), 3, g)
        draws = model.sample(true[None].repeat(16, 1, 1, 1).to(device), fill, order=choose_order(fill, model.orders),
                             generator=g).cpu()  # fmt: skip
        rand = fill_cells(true, fill, torch.randint(model.num_codes, (16 * int(fill.sum()),), generator=g))
        sc = score_fills(decoder, true, {"kept": true[None], "prior": draws, "uniform": rand}, fill, region, occ)
    grid = memory_grid(mcfg)
    centers = grid.centers(dtype=torch.float64)
    half = torch.tensor(grid.voxel_size, dtype=torch.float64) / 2
    inside = centers[region].reshape(-1, 3)  # the deleted block's voxels, as a box
    lo, hi = inside.min(0).values - half, inside.max(0).values + half
    block = torch.cat([(lo + hi) / 2, hi - lo, torch.zeros(1, dtype=torch.float64)])[None]

    def view(name: str) -> dict:
        o = sc[name]["out"]
        sem = o["sem_logits"][0].argmax(0).cpu()
        mask = (torch.sigmoid(o["occ_logits"][0, 0]).cpu() > 0.5) & (sem > 1)  # the floor left out
        return {
            "points": centers[mask].numpy(),
            "colors": colorize_labels(sem[mask].numpy()[None], 64)[0],
            "point_size": min(grid.voxel_size),
            "cameras": [{"lines": _box_lines(block), "color": "#d62728"}],
        }

    iou = {n: v["iou"] for n, v in sc.items()}
    metrics = [
        _metric("deleted block: decoded occupancy IoU, the prior's first draw", float(iou["prior"][0]), "0-1",
                "higher", f"uniform random codes: {float(iou['uniform'][0]):.3f}; the true codes decoded: "
                f"{float(iou['kept'][0]):.3f}", "docs: the held-out table (min_16 >= unigram + 0.1)"),
        _metric("deleted block: best of 16 draws (min_16), occupancy IoU", float(iou["prior"].max()), "0-1", "higher",
                f"uniform random codes, best of 16: {float(iou['uniform'].max()):.3f}"),
        _metric("deleted block: code accuracy, first draw", float(sc["prior"]["acc"][0]), "0-1", "higher",
                f"uniform random codes: {float(sc['uniform']['acc'][0]):.3f}"),
    ]  # fmt: skip
    return {
        "metrics": metrics,
        "deleted codes": f"{int(fill.sum())} of {true.numel()} (a 3 x 3 x 3 block; the red box)",
        "legend": {"semantic classes": _legend(item["sem"])},
        "scene3d": {
            "the room decoded from its own codes (floor left out; red: the block that is deleted)": view("kept"),
            "the block inpainted by the prior (first draw), decoded": view("prior"),
            "the block filled with uniform random codes, decoded": view("uniform"),
        },
    }


def run_demo(cfg: DemoConfig) -> Path:
    from .engine.distributed import pick_device
    from .viz import write_report

    out = Path(cfg.out)
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    steps = [
        "rendering a street video, a room and a traffic sequence; carving depth; tracking",
        "neural 3D mapping on held-out rooms",
        "metric depth on a generated street and the KITTI frames",
        "novel-view synthesis on held-out objects",
        "energy pose lifting on generated poses and the Human3.6M frames",
        "energy single-view voxels on held-out objects",
        "scene codes: a held-out room's deleted block inpainted by the code prior",
        "scene fitting: the fox capture's fitted grid",
    ]
    n = len(steps)
    print(f"[1/{n}] {steps[0]}")
    street, street_sample = _street_section(cfg.seed)
    room, geo = _room_section(cfg.seed)
    sections: dict[str, dict] = {
        "Synthetic world: a street video": street,
        "Synthetic world: a room from several views": room,
        "Geometry core: depth carving vs exact occupancy": geo,
        "Dynamic scenes: background/moving split and tracking (no learned weights)": _dynamic_section(cfg.seed, out),
    }
    real = Path(cfg.real_data)
    jobs = [
        ("Neural 3D mapping (shipped weights, held-out rooms)", "mapping",
         lambda c, m: _mapping_section(c, m, device)),
        ("Metric monocular depth (shipped weights; generated street and real KITTI frames)", "depth",
         lambda c, m: _depth_section(out, street_sample, real, cfg.device)),
        ("Transformer novel-view synthesis (shipped weights, held-out objects)", "nvs",
         lambda c, m: _nvs_section(c, m, device)),
        ("Learned-energy pose lifting (shipped weights; generated poses and real Human3.6M frames)", "energy-pose",
         lambda c, m: _energy_pose_section(c, m, real, device)),
        ("Learned-energy single-view voxels (shipped weights, held-out objects)", "energy-voxels",
         lambda c, m: _energy_voxels_section(c, m, device)),
        ("Scene codes: inpainting a held-out room (shipped weights)", "code-prior",
         lambda c, m: _code_prior_section(c, m, out, device)),
        ("Scene fitting: a real capture fitted from its photos (shipped fitted grid)", "radiance",
         lambda c, m: _radiance_section(c, m, real, device)),
    ]  # fmt: skip
    for i, (heading, name, build) in enumerate(jobs, start=2):
        print(f"[{i}/{n}] {steps[i - 1]} ({time.time() - t_start:.0f} s so far)")
        sections[heading] = _model_section(name, ABOUT[name], out, cfg.device, build)
    page = write_report(out / "index.html", "unrender demo", sections, intro=INTRO)
    summary: dict[str, Any] = {"seconds": None}
    for heading, s in sections.items():
        entry: dict[str, Any] = {k: v for k, v in s.items() if isinstance(v, (int, float))}
        if "model" in s:
            entry["model"] = s["model"]
        if "metrics" in s:
            entry["metrics"] = {r["name"]: r["value"] for r in s["metrics"]}
        summary[heading] = entry
    summary["seconds"] = time.time() - t_start
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    untrained = [h for h, s in sections.items() if s.get("model", "trained") != "trained"]
    note = f"; sections without fully trained weights: {untrained}" if untrained else ""
    print(f"done in {summary['seconds']:.0f} s{note}")
    print(f"open {page.resolve()}")
    return page
