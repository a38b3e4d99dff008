"""Prototype composition, the debugging stage: the selection variants and a run end to end."""

from __future__ import annotations

import torch
from _util import untrained_checkpoint

from unrender.geometry import VoxelGrid
from unrender.methods import get_method
from unrender.methods.prototypes.config import ProtoConfig, ProtoModel
from unrender.methods.prototypes.model import PrototypeComposer

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


def test_composition_is_the_weighted_sum_of_the_prototypes():
    m = _model()
    one_hot = torch.eye(3)
    torch.testing.assert_close(m.compose(one_hot), torch.sigmoid(m.prototypes))
    half = torch.tensor([[0.5, 0.5, 0.0]])
    torch.testing.assert_close(m.compose(half)[0], torch.sigmoid(m.prototypes[:2]).mean(0))


def test_prototypes_debug_stage_end_to_end(tmp_path):
    from unrender.engine import Trainer

    untrained_checkpoint("mapping", "tiny", tmp_path / "mapping")
    method = get_method("prototypes")
    cfg = method.make_config("tiny")
    cfg.data.mapping, cfg.data.root = tmp_path / "mapping", tmp_path / "data"
    cfg.train.out_dir, cfg.train.progress = tmp_path / "run", False
    m = Trainer(method, cfg).fit()
    assert m["scenes"] == 2 and 1 <= m["distinct_picks"] <= 2 and 0.5 <= m["takeover_share"] <= 1
    assert 0 <= m["soft/occ_iou"] <= 1 and len(m["picks"].split()) == 2
