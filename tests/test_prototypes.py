"""Prototype composition, the debugging stage: the selection variants and a run end to end."""

from __future__ import annotations

import torch
from _util import untrained_checkpoint

from unrender.geometry import VoxelGrid
from unrender.methods import get_method
from unrender.methods.prototypes.config import ProtoConfig, ProtoModel
from unrender.methods.prototypes.model import PrototypeComposer, min_cost_assignment

GRID = VoxelGrid((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0), (4, 4, 4))


def _model(**kw) -> PrototypeComposer:
    return PrototypeComposer(ProtoConfig(model=ProtoModel(prototypes=3, width=2, **kw)), GRID)


def test_selection_variants_train_differently_and_all_evaluate_as_the_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0]] * 64)
    soft = torch.softmax(logits, -1)
    for kw in ({"selection": "noise", "noise": 1.0}, {"selection": "epsilon", "epsilon": 0.5, "epsilon_steps": 10}):
        m = _model(**kw)
        m.train()
        w = m.select(logits)
        torch.testing.assert_close(w.sum(-1), torch.ones(64))
        assert not torch.allclose(w, soft)
        m.eval()
        torch.testing.assert_close(m.select(logits), soft)
    m = _model(selection="epsilon", epsilon=0.5, epsilon_steps=10)
    m.train()
    m.step.fill_(10)  # epsilon has decayed to 0: the softmax again
    torch.testing.assert_close(m.select(logits), soft)
    m = _model(selection="sinkhorn")
    m.train()
    w = m.select(torch.randn(6, 3, generator=torch.Generator().manual_seed(1)) * 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    torch.testing.assert_close(w.sum(0), torch.full((3,), 2.0), atol=1e-3, rtol=0)  # balanced over the batch
    m = _model(temperature=0.25)
    torch.testing.assert_close(m.select(logits), torch.softmax(logits / 0.25, -1))


def test_min_cost_assignment_is_the_exact_optimum_and_one_to_one():
    import itertools

    import pytest

    g = torch.Generator().manual_seed(0)
    for B, K in ((1, 1), (3, 3), (4, 6), (5, 7), (6, 6)):
        for _ in range(10):
            c = torch.rand(B, K, generator=g, dtype=torch.float64)
            cols = min_cost_assignment(c)
            best = min(sum(float(c[i, p[i]]) for i in range(B)) for p in itertools.permutations(range(K), B))
            assert len(set(cols.tolist())) == B
            assert abs(float(c[torch.arange(B), cols].sum()) - best) < 1e-9
    # a greedy pick (row 0 takes its cheapest column) is not the optimum here; the assignment is
    c = torch.tensor([[1.0, 2.0], [1.0, 10.0]])
    assert min_cost_assignment(c).tolist() == [1, 0]
    for bad in (torch.rand(3, 2), torch.rand(4), torch.tensor([[float("nan")]])):
        with pytest.raises(ValueError, match="min_cost_assignment"):
            min_cost_assignment(bad)


def test_assign_selection_gives_each_room_its_own_prototype_and_teaches_the_classifier():
    m = _model(selection="assign")
    m.train()
    with torch.no_grad():  # prototype k is room k's occupancy (in logits), so the assignment must be the identity
        occ = (torch.rand(3, 1, 4, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.5).float()
        m.prototypes[:, 3] = 6 * (2 * occ[:, 0] - 1)
    batch = {"carved": occ, "known": torch.ones_like(occ), "occ": occ[[2, 0, 1]]}
    out = m(batch)
    assert out["assigned"].tolist() == [2, 0, 1]
    torch.testing.assert_close(out["weights"], torch.eye(3)[[2, 0, 1]])
    m.eval()
    assert "assigned" not in m(batch)  # evaluation: the plain softmax


def test_composition_is_the_weighted_sum_of_the_prototypes():
    m = _model()
    one_hot = torch.eye(3)
    torch.testing.assert_close(m.compose(one_hot), torch.sigmoid(m.prototypes))
    half = torch.tensor([[0.5, 0.5, 0.0]])
    torch.testing.assert_close(m.compose(half)[0], torch.sigmoid(m.prototypes[:2]).mean(0))


def _fit(tmp_path, preset: str) -> dict:
    """Train and evaluate ``preset`` on an untrained tiny mapping model's rooms."""
    from unrender.engine import Trainer

    untrained_checkpoint("mapping", "tiny", tmp_path / "mapping")
    method = get_method("prototypes")
    cfg = method.make_config(preset)
    cfg.data.mapping, cfg.data.root = tmp_path / "mapping", tmp_path / "data"
    cfg.train.out_dir, cfg.train.progress = tmp_path / "run", False
    return Trainer(method, cfg).fit()


def test_prototypes_debug_stage_end_to_end(tmp_path):
    m = _fit(tmp_path, "tiny")
    assert m["scenes"] == 2 and 1 <= m["distinct_picks"] <= 2 and 0.5 <= m["takeover_share"] <= 1
    assert 0 <= m["soft/occ_iou"] <= 1 and len(m["picks"].split()) == 2


def test_compose_stage_reads_a_box_shape_back_and_pastes_it_where_it_was():
    from unrender.geometry import points_in_boxes
    from unrender.methods.prototypes.compose import PrototypePlacer
    from unrender.metrics import voxel_iou

    cfg = ProtoConfig(model=ProtoModel(stage="compose", prototypes=2, size=8, upsample=2, id_lattice=2))
    grid = VoxelGrid((-1.6, -0.8, 0.0), (1.6, 0.8, 3.2), (8, 4, 8))  # 0.4 m; the fine grid 0.2 m
    m = PrototypePlacer(cfg, grid, feature_channels=3)
    box = torch.tensor([[0.2, 0.0, 1.6, 1.2, 0.8, 0.8, 0.3]])
    centres = m.fine.centers().reshape(-1, 3)
    occ = points_in_boxes(centres, box).any(0).reshape(1, *m.fine.shape)  # the box, solid, on the fine grid
    shape = m.object_shapes(occ, box)
    assert shape.shape == (1, 8**3) and float(shape.mean()) > 0.7  # mostly inside (trilinear edges aside)
    m.seed(torch.cat([shape, torch.zeros_like(shape)]))  # prototype 0: the box's shape, 1: empty
    assert torch.sigmoid(m.prototypes[0, 3]).mean() > torch.sigmoid(m.prototypes[1, 3]).mean() + 0.5
    pasted = m.paste(box, torch.tensor([[1.0, 0.0]]))
    support = pasted[4] > 0.5
    inside = occ[0]
    # the box's support covers the box's voxels and little else
    assert float((support & inside).sum()) / float(inside.sum()) > 0.9
    assert float((support & ~inside).sum()) / float(inside.sum()) < 0.3
    # composition: an empty net (logit -10) plus the pasted box is the box; with no paste it stays empty
    logits, colour = torch.full((1, *grid.shape), -10.0), torch.zeros(3, *grid.shape)
    vol = m.compose(logits, colour, pasted)
    assert float(voxel_iou(vol[None, 3:], occ[None].float())[0]) > 0.7
    assert float(m.compose(logits, colour, None)[3].max()) < 1e-3
    # a box owns its voxels: a full net is emptied where the empty prototype is pasted
    with torch.no_grad():
        gone = m.paste(box, torch.tensor([[0.0, 1.0]]))
        empty = m.compose(torch.full((1, *grid.shape), 10.0), colour, gone)
    full = gone[4] > 0.999
    assert int(full.sum()) > 0.3 * int(inside.sum()) and float(empty[3][full].max()) < 0.06  # the prototype's 0.05
    assert float(empty[3][~(gone[4] > 0)].min()) > 0.99  # outside the box the net's occupancy stays


def test_prototypes_compose_stage_end_to_end(tmp_path):
    m = _fit(tmp_path, "tiny-compose")
    assert m["scenes"] == 2 and m["upsample"] == 2 and m["fine_voxel"] < m["native_voxel"]
    for k in ("upsampled/occ_iou", "detected/occ_iou", "true/occ_iou", "native/occ_iou"):
        assert 0 <= m[k] <= 1, k
    shares = [m[f"classes_true/p{k}/placements"] for k in range(3)]
    assert sum(shares) > 0  # every true box got a prototype
