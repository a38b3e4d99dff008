"""Scene codes: the masked 3D PixelCNN, the code dump and its reader, the code prior's training and evaluation."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from unrender.cli import main
from unrender.data.codes import CodeDump, CodeDumpError, CodeGrids
from unrender.engine import Trainer
from unrender.methods import get_method
from unrender.methods.mapping.data import MappingDataset
from unrender.methods.mapping.dump import DumpArgs, dump_codes
from unrender.methods.prior.evaluate import choose_order
from unrender.nn import GatedPixelCNN3D, MaskedConv3d, raster_index

MAPPING, PRIOR = get_method("mapping"), get_method("code-prior")


@pytest.mark.parametrize("orders", [1, 8])
def test_pixelcnn_is_causal_in_every_scan_order_and_has_no_blind_spot(orders):
    torch.manual_seed(0)
    model = GatedPixelCNN3D(16, channels=8, layers=4, orders=orders)
    shape = (4, 3, 5)
    codes = torch.randint(16, (2, *shape))
    for order in range(orders):
        rank = raster_index(shape, order)
        base = model(codes, order)
        last = tuple(int(i) for i in (rank == rank.max()).nonzero()[0])
        seen = torch.zeros(shape, dtype=torch.bool)
        for cell in (rank < rank.max()).nonzero().tolist():
            changed = codes.clone()
            changed[:, cell[0], cell[1], cell[2]] = (changed[:, cell[0], cell[1], cell[2]] + 1) % 16
            moved = (model(changed, order) - base).abs().amax((0, 1)) > 0
            # changing a code never changes the logits of itself or of any cell scanned before it
            assert not (moved & (rank <= rank[tuple(cell)])).any(), (order, cell)
            seen[tuple(cell)] = bool(moved[last])
        # ... and the last cell's logits see every cell before it (three stacks: no blind spot)
        assert int(seen.sum()) == rank.numel() - 1, order


def test_masked_convolution_sees_only_its_mask():
    mask = torch.zeros(3, 3, 3, dtype=torch.bool)
    mask[1, 1, 0] = mask[0, 2, 2] = True
    conv = MaskedConv3d(1, 1, mask)
    x = torch.zeros(1, 1, 5, 5, 5)
    x[0, 0, 2, 2, 2] = 1.0  # an impulse: the output is the flipped kernel around it
    y = conv(x)[0, 0] - conv.bias
    hit = (y.abs() > 0).nonzero().tolist()
    assert sorted(hit) == sorted([[2, 2, 3], [3, 1, 1]])  # output cells whose mask reaches the impulse
    with pytest.raises(ValueError, match="odd"):
        MaskedConv3d(1, 1, torch.ones(2, 3, 3, dtype=torch.bool))


def test_sampling_is_reproducible_keeps_known_codes_and_checks_inputs():
    torch.manual_seed(0)
    model = GatedPixelCNN3D(16, channels=8, layers=3, orders=8)
    codes = torch.randint(16, (3, 4, 3, 5))
    fill = torch.zeros(4, 3, 5, dtype=torch.bool)
    fill[1:3, 1:, 2:4] = True
    for order in (0, 5):
        a = model.sample(codes, fill, order=order, generator=torch.Generator().manual_seed(1))
        b = model.sample(codes, fill, order=order, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b) and torch.equal(a[:, ~fill], codes[:, ~fill])
    c = model.sample(codes, fill, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a, c)  # another seed, other draws (8 cells x 3 grids of 16 codes)
    greedy = model.sample(codes, fill, temperature=0)
    assert torch.equal(greedy, model.sample(codes, fill, temperature=0))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(codes, fill, temperature=-1)
    with pytest.raises(ValueError, match="codes must lie"):
        model(torch.full((1, 2, 2, 2), 16))
    with pytest.raises(ValueError, match="order"):
        model(codes, order=8)


def test_inpainting_scans_in_the_order_with_the_most_known_codes_before_the_block():
    fill = torch.zeros(8, 4, 8, dtype=torch.bool)
    fill[5:8, 1:4, 5:8] = True  # the far corner: the plain raster scan already sees most of the grid first
    assert choose_order(fill, 8) == 0
    fill = torch.zeros(8, 4, 8, dtype=torch.bool)
    fill[0:3, 0:3, 0:3] = True  # the first corner: scanning every axis backwards puts it last
    assert choose_order(fill, 8) == 7
    assert choose_order(fill, 1) == 0


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    """A tiny quantised mapping model, trained once for the module: ``(config, run folder)``."""
    root = tmp_path_factory.mktemp("vq")
    cfg = MAPPING.make_config("tiny-vq")
    cfg.data.root = root / "data"
    cfg.train = dataclasses.replace(cfg.train, max_steps=4, out_dir=root / "map", progress=False,
                                    tensorboard=False)  # fmt: skip
    assert cfg.model.codebook == 16
    Trainer(MAPPING, cfg).fit()
    return cfg, root / "map"


def test_dump_matches_the_model_resumes_and_round_trips_exactly(tmp_path, vq_run):
    cfg, run = vq_run
    out = tmp_path / "codes"
    args = DumpArgs(ckpt=run, out=out, batch_size=3, shard_size=3, device="cpu")
    first = dump_codes(args)
    assert first["train"] == {"scenes": 8, "shards_written": 3, "shards_kept": 0}  # 4 rooms and their mirrors
    train, val = CodeGrids(out / "train"), CodeGrids(out / "val")
    assert len(train) == 8 and len(val) == 2 and train.codes.shape[1:] == (4, 2, 4)
    # the dumped codes are the model's codes of the same rooms (the encoder alone gives the forward's codes)
    from unrender.weights import load_trained

    _, model, _, _ = load_trained("mapping", run, "cpu")
    ds = MappingDataset(cfg, "train", workers=1)
    batch = default_collate([ds[i] for i in range(8)])
    with torch.no_grad():
        out_fwd = model(batch)
        assert torch.equal(model.encode_codes(batch), out_fwd["codes"])
        # the same batches as the dump's (3 scenes a shard): bit-identical inputs to the nearest-code search
        chunks = [default_collate([ds[i] for i in range(a, min(a + 3, 8))]) for a in (0, 3, 6)]
        assert torch.equal(train.codes, torch.cat([model.encode_codes(c) for c in chunks]))
        decoded = model.decode_codes(out_fwd["codes"], batch)  # the code grid alone gives the outputs
    for k in ("occ_logits", "sem_logits", "rgb_pred", "heatmap_logits"):
        torch.testing.assert_close(decoded[k], out_fwd[k])
    torch.testing.assert_close(train.cam_from_mem[:, -1], batch["cam_from_mem_out"])
    # resumable: a lost and a damaged shard are written again, the others kept, the content the same
    (out / "train" / "shard_00001.npz").unlink()
    (out / "train" / "shard_00002.npz").write_bytes(b"half a file")
    again = dump_codes(args)
    assert again["train"] == {"scenes": 8, "shards_written": 2, "shards_kept": 1}
    assert torch.equal(CodeGrids(out / "train").codes, train.codes)
    # a dump of other settings is refused; an incomplete one does not read
    with pytest.raises(CodeDumpError, match="other settings"):
        dump_codes(dataclasses.replace(args, shard_size=2))
    (out / "val" / "shard_00000.npz").unlink()
    with pytest.raises(CodeDumpError, match="incomplete"):
        CodeGrids(out / "val")
    with pytest.raises(CodeDumpError, match="no code dump"):
        CodeGrids(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="shape"):
        CodeDump(out / "train", json.loads((out / "train" / "meta.json").read_text())).write(
            0, torch.zeros(2, 4, 2, 4, dtype=torch.long), torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 4, 4)
        )


def test_prior_trains_on_a_dump_and_evaluates_against_the_random_priors(tmp_path, vq_run):
    dump_codes(DumpArgs(ckpt=vq_run[1], out=tmp_path / "codes", device="cpu"))
    cfg = PRIOR.make_config("tiny")
    cfg.data.codes = tmp_path / "codes"
    cfg.train = dataclasses.replace(cfg.train, max_steps=30, out_dir=tmp_path / "prior", progress=False,
                                    tensorboard=False, lr=1e-2, warmup_steps=0, schedule="constant")  # fmt: skip
    Trainer(PRIOR, cfg).fit()
    logged = [json.loads(line) for line in (tmp_path / "prior" / "metrics.jsonl").read_text().splitlines()]
    bits = [r["train/bits_per_code"] for r in logged if "train/bits_per_code" in r]
    assert bits[-1] < bits[0]  # it learns the 8 training grids' codes
    scores = json.loads((tmp_path / "prior" / "eval.json").read_text())
    assert scores["bits/uniform"] == 4.0 and np.isfinite(scores["bits/prior"]) and scores["bits/unigram"] <= 4.0
    for name in ("prior", "unigram", "uniform"):
        for k in ("first", "min4"):
            assert 0 <= scores[f"inpaint/{name}/code_acc/{k}"] <= 1 and 0 <= scores[f"inpaint/{name}/occ_iou/{k}"] <= 1
        assert scores[f"inpaint/{name}/occ_iou/min4"] >= scores[f"inpaint/{name}/occ_iou/first"]
    md = tmp_path / "results.md"
    md.write_text("<!-- results:mapping -->\nkept\n<!-- /results:mapping -->\n")
    assert main(["eval", "code-prior", "--ckpt", str(tmp_path / "prior"), "--out", str(tmp_path / "e.json"),
                 "--markdown", str(md), "--markdown-block", "codes"]) == 0  # fmt: skip
    text = md.read_text()
    assert (
        "kept" in text and "<!-- results:codes -->" in text and "| autoregressive prior (scan order chosen) |" in text
    )
    cfg.model = dataclasses.replace(cfg.model, num_codes=32)
    with pytest.raises(ValueError, match="num-codes 16"):
        PRIOR.build_dataset(cfg, "train")


def test_dump_refuses_a_continuous_model_and_a_method_without_codes(tmp_path, capsys):
    assert main(["dump", "toy", "--ckpt", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "no code dump" in capsys.readouterr().err
    from unrender.weights import shipped_checkpoint

    assert main(["dump", "mapping", "--ckpt", str(shipped_checkpoint("mapping")), "--out", str(tmp_path / "c"),
                 "--data-root", str(tmp_path / "data")]) == 2  # fmt: skip
    assert "continuous bottleneck" in capsys.readouterr().err
