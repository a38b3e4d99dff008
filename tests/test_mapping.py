import dataclasses
import json
import math

import pytest
import torch
from torch.utils.data import default_collate

from unrender.engine import Trainer, find_latest_checkpoint, load_checkpoint
from unrender.geometry import VoxelGrid, box_iou_3d
from unrender.methods import get_method
from unrender.methods.mapping.data import MappingDataset
from unrender.methods.mapping.detection import bins_to_yaw, decode_boxes, encode_targets, yaw_to_bins

GRID = VoxelGrid((-3.2, -0.8, 0.0), (3.2, 2.4, 6.4), (32, 16, 32))


def perfect_outputs(boxes, labels, bins=4, k=4):
    t = encode_targets(boxes, labels, GRID, k, bins)
    yaw_logits = torch.nn.functional.one_hot(t["yaw_bin"], bins).permute(2, 0, 1).float() * 10
    yaw_res = t["yaw_res"][None].expand(bins, -1, -1)
    return t["heatmap"][None], t["reg"][None], yaw_logits[None], yaw_res[None]


def test_decoding_recovers_hand_made_boxes():
    boxes = torch.tensor([[-1.0, 1.2, 2.0, 1.2, 0.75, 0.7, 0.3], [1.5, 1.4, 4.1, 0.45, 0.9, 0.45, -2.0],
                          [0.3, 1.0, 5.5, 1.0, 1.8, 0.35, 1.2]])  # fmt: skip
    labels = torch.tensor([0, 1, 2])
    dets = decode_boxes(*perfect_outputs(boxes, labels), GRID)[0]
    assert len(dets["boxes"]) == 3
    order = dets["labels"].argsort()
    got = dets["boxes"][order].double()
    torch.testing.assert_close(got[:, :6], boxes[:, :6].double(), atol=1e-5, rtol=1e-5)
    # yaw comes back modulo pi: the same box
    torch.testing.assert_close(
        box_iou_3d(got, boxes.double()).diagonal(), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    assert (dets["scores"] > 0.99).all()


def test_yaw_half_turn_ambiguity():
    yaw = torch.tensor([0.3, 0.3 + math.pi, -0.3, 3.0, -3.0])
    b, r = yaw_to_bins(yaw, 4)
    back = bins_to_yaw(b, r, 4)
    assert b[0] == b[1] and torch.allclose(r[0], r[1], atol=1e-6)  # a half turn is the same target
    torch.testing.assert_close(
        torch.remainder(back - yaw, math.pi).clamp(max=math.pi - 1e-5), torch.zeros(5), atol=1e-5, rtol=0
    )
    assert (b >= 0).all() and (b < 4).all() and (r.abs() <= math.pi / 8 + 1e-6).all()


def test_decoding_suppresses_duplicates_and_low_scores():
    boxes = torch.tensor([[0.0, 1.0, 3.0, 1.2, 0.8, 0.7, 0.0]])
    heat, reg, yl, yr = perfect_outputs(boxes, torch.tensor([0]))
    heat[0, 0, 15, 17] = 0.9  # a second peak two cells away: same box region, suppressed by NMS? (far enough: kept)
    heat[0, 1, 5, 5] = 0.01  # below the score threshold
    dets = decode_boxes(heat, reg, yl, yr, GRID, nms_iou=0.3)[0]
    assert (dets["scores"] >= 0.05).all() and 1 <= len(dets["boxes"]) <= 2
    empty = decode_boxes(torch.zeros_like(heat), reg, yl, yr, GRID)[0]
    assert empty["boxes"].shape == (0, 7)


# --- training, checkpoints, bad input ------------------------------------------------------------
MAPPING = get_method("mapping")


def tiny_cfg(tmp_path, **train):
    cfg = MAPPING.make_config("tiny")
    cfg.data.root = tmp_path / "data"
    cfg.train = dataclasses.replace(cfg.train, out_dir=tmp_path / "run", progress=False, tensorboard=False, **train)
    return cfg


def test_tiny_training_lowers_the_loss_and_checkpoints_reload(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=30, lr=3e-3, warmup_steps=0, schedule="constant")
    ds = MappingDataset(cfg, "train", workers=1)
    batch = default_collate([ds[i] for i in range(2)])
    torch.manual_seed(0)
    model = MAPPING.build_model(cfg)
    before = MAPPING.loss(model, batch, cfg)["loss"].item()
    Trainer(MAPPING, cfg).fit()
    ck = find_latest_checkpoint(tmp_path / "run")
    trained = MAPPING.build_model(cfg)
    load_checkpoint(ck, trained)
    trained.eval()
    after = MAPPING.loss(trained, batch, cfg)["loss"].item()
    assert after < 0.8 * before, (before, after)
    again = MAPPING.build_model(cfg)
    load_checkpoint(ck, again)
    again.eval()
    with torch.no_grad():
        a, b = trained(batch), again(batch)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_quantised_bottleneck_trains_reloads_and_decodes_only_its_codes(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=6)
    cfg.model = dataclasses.replace(cfg.model, codebook=16, code_dim=8)
    ds = MappingDataset(cfg, "train", workers=1)
    batch = default_collate([ds[i] for i in range(2)])
    Trainer(MAPPING, cfg).fit()
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(1 <= r.get("train/codes/perplexity", 0) <= 16 and "train/commitment" in r for r in logged)
    ck = find_latest_checkpoint(tmp_path / "run")
    model, again = MAPPING.build_model(cfg), MAPPING.build_model(cfg)
    load_checkpoint(ck, model)
    load_checkpoint(ck, again)
    model.eval(), again.eval()
    with torch.no_grad():
        out, b = model(batch), again(batch)
        assert torch.equal(out["codes"], b["codes"]) and torch.equal(out["occ_logits"], b["occ_logits"])
        assert out["codes"].shape == (2, 4, 2, 4) and out["codes"].max() < 16  # (B, Z, Y, X) at 1/4
        # the codes carry the scene: decoded from the code grid alone (no skips), the outputs are the same
        torch.testing.assert_close(model.decode_codes(out["codes"])["occ_logits"], out["occ_logits"])
    # the encoder learns through the codes (straight through) and the commitment
    model.train()
    MAPPING.loss(model, batch, cfg)["loss"].backward()
    assert model.net.stem[0][0].weight.grad.abs().sum() > 0 and model.pre_quant.weight.grad.abs().sum() > 0
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())  # the end-of-run evaluation
    assert 1 <= scores["codes/perplexity"] <= 16 and 0 < scores["codes/used"] <= 1  # held-out codebook usage
    cfg.model = dataclasses.replace(cfg.model, unet=True)
    with pytest.raises(ValueError, match="codebook"):
        MAPPING.build_model(cfg)


def test_overfits_one_scene(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.model = dataclasses.replace(cfg.model, view=False, detection=False, semantics=False)
    ds = MappingDataset(cfg, "train", workers=1)
    batch = default_collate([ds[0]])
    torch.manual_seed(0)
    model = MAPPING.build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    from unrender.metrics import voxel_iou

    for _ in range(250):
        loss = MAPPING.loss(model, batch, cfg)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        iou = voxel_iou(torch.sigmoid(model(batch)["occ_logits"]), batch["occ"])[0].item()
    assert iou >= 0.9, iou


def test_bad_inputs(tmp_path):
    cfg = tiny_cfg(tmp_path)
    ds = MappingDataset(cfg, "train", workers=1)
    batch = default_collate([ds[0]])
    model = MAPPING.build_model(cfg).eval()
    bad = dict(batch, depth_in=batch["depth_in"][:, :2])
    with pytest.raises(ValueError, match="depth"):
        model(bad)
    bad = dict(batch, K_in=batch["K_in"][:, :2])
    with pytest.raises(ValueError, match="K"):
        model(bad)
    missing = {k: v for k, v in batch.items() if k != "depth_in"}
    with pytest.raises(ValueError, match="depth_in"):
        model(missing)
    # documented empty results: no valid depth, or cameras that see nothing of the grid
    with torch.no_grad():
        out = model(dict(batch, depth_in=torch.zeros_like(batch["depth_in"])))
        assert torch.isfinite(out["occ_logits"]).all()
        away = batch["cam_from_mem_in"].clone()
        away[..., 2, 3] += 100.0  # the grid is 100 m behind every camera
        out = model(dict(batch, cam_from_mem_in=away))
        assert torch.isfinite(out["occ_logits"]).all() and torch.isfinite(out["rgb_pred"]).all()


def test_mirror_augmentation_is_the_mirrored_world(tmp_path):
    """A mirrored sample builds the mirrored memory, its boxes enclose the mirrored occupancy, and
    a mirrored box centre projects to the mirrored pixel."""
    from unrender.geometry import box_corners, project_points, transform_points
    from unrender.methods.mapping.data import mirror_item
    from unrender.nn.memory import build_memory

    cfg = tiny_cfg(tmp_path)
    ds = MappingDataset(cfg, "train", workers=1)
    assert len(ds) == 2 * len(ds.synth)
    item, mirrored = ds[0], ds[len(ds.synth)]
    torch.testing.assert_close(mirrored["rgb_in"], mirror_item(item)["rgb_in"])
    mem = lambda it: build_memory(ds.grid, *(it[k][None].double() for k in ("rgb_in", "depth_in", "K_in",
                                                                          "cam_from_mem_in")))  # fmt: skip
    a, b = mem(item), mem(mirrored)
    torch.testing.assert_close(b, a.flip(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(mirrored["occ"], item["occ"].flip(-1))
    keep = item["box_labels"] >= 0
    assert keep.any()
    c, cm = box_corners(item["boxes"][keep].double()), box_corners(mirrored["boxes"][keep].double())
    flipped = c * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    # same corner sets (the order of the corners changes under a reflection)
    assert torch.cdist(cm, flipped).min(-1).values.max() < 1e-5

    def pixel(it):
        centre = transform_points(it["cam_from_mem_out"].double(), it["boxes"][keep][:1, :3].double())
        return project_points(centre, it["K_out"].double())[0]

    uv, uvm = pixel(item), pixel(mirrored)
    W = item["rgb_in"].shape[-1]
    torch.testing.assert_close(uvm[..., 0], (W - 1) - uv[..., 0])
    torch.testing.assert_close(uvm[..., 1], uv[..., 1])


def test_surface_colour_reaches_the_occupied_voxel_under_a_seen_face():
    """A floor point seen in the empty voxel above the floor gives the occupied voxel below its colour;
    occupied voxels far from anything seen and empty unseen voxels get no colour target."""
    from unrender.methods.mapping.losses import surface_colour_target

    memory = torch.zeros(1, 7, 4, 4, 4)
    occ_frac, rgb = 0.5, torch.tensor([0.2, 0.6, 0.1])
    memory[0, 0, 1, 1, 1] = occ_frac  # (z, y, x): the face was seen in voxel y = 1 ...
    memory[0, 1:4, 1, 1, 1] = occ_frac * rgb
    occupied = torch.zeros(1, 1, 4, 4, 4, dtype=torch.bool)
    occupied[0, 0, :, 2] = True  # ... while the floor slab occupies y = 2
    colour, weight = surface_colour_target(memory, occupied)
    torch.testing.assert_close(colour[0, :, 1, 1, 1], rgb)  # seen directly
    torch.testing.assert_close(colour[0, :, 1, 2, 1], rgb)  # the occupied voxel below it
    assert weight[0, 0, 1, 1, 1] == 1 and weight[0, 0, 1, 2, 1] == 1
    assert weight[0, 0, 3, 2, 3] == 0  # occupied, but nothing seen near it
    assert weight[0, 0, 1, 0, 1] == 0  # next to the seen face, but empty
    assert weight.sum() == 1 + occupied[0, 0, :3, 2, :3].sum()


def test_render_views_are_forwards_views_with_each_camera_held_out(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=1)
    model = MAPPING.build_model(cfg).eval()
    item = MappingDataset(cfg, "train", workers=1)[0]
    batch = {k: v[None] for k, v in item.items()}
    K = torch.stack([item["K_out"], item["K_in"][1], item["K_in"][2]])
    T = torch.stack([item["cam_from_mem_out"], item["cam_from_mem_in"][1], item["cam_from_mem_in"][2]])
    H, W = item["rgb_out"].shape[-2:]
    with torch.no_grad():
        views = model.render_views(batch, K, T, H, W, chunk=2)  # chunks of 2 and 1
        for k in range(3):
            one = model({**batch, "K_out": K[k : k + 1], "cam_from_mem_out": T[k : k + 1]})["rgb_pred"][0]
            torch.testing.assert_close(views[k], one, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="batch of one"):
        model.render_views(default_collate([item, item]), K, T, H, W)
