import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _util import Crash, crash_at
from safetensors.torch import load_file

from unrender.engine import (
    StepBatchSampler,
    TrainConfig,
    Trainer,
    build_scheduler,
    config_from_dict,
    config_to_dict,
    find_latest_checkpoint,
    load_checkpoint,
)
from unrender.methods import get_method

TOY = get_method("toy")


def tiny_cfg(out: Path, **train):
    cfg = TOY.make_config("tiny")
    cfg.train = dataclasses.replace(cfg.train, out_dir=out, progress=False, tensorboard=False, **train)
    return cfg


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(find_latest_checkpoint(run) / "model.safetensors"))


def assert_same_weights(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0 if atol == 0 else 1e-5, msg=k)


def test_sampler_shards_the_global_batch_and_resumes():
    one = list(StepBatchSampler(10, 4, seed=3, rank=0, world=1, start_step=0, steps=7))
    r0 = list(StepBatchSampler(10, 4, seed=3, rank=0, world=2, start_step=0, steps=7))
    r1 = list(StepBatchSampler(10, 4, seed=3, rank=1, world=2, start_step=0, steps=7))
    for g, a, b in zip(one, r0, r1, strict=True):
        assert sorted(g) == sorted(a + b)
    assert list(StepBatchSampler(10, 4, seed=3, rank=0, world=1, start_step=4, steps=7)) == one[4:]
    flat = [i for b in one for i in b]
    assert sorted(flat[:10]) == list(range(10))  # an epoch is a permutation
    with pytest.raises(ValueError, match="not divisible"):
        StepBatchSampler(10, 3, seed=0, rank=0, world=2, start_step=0, steps=1)


def test_schedule_warmup_and_cosine():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, TrainConfig(max_steps=12, warmup_steps=2, schedule="cosine", min_lr_ratio=0.1))
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] < 0.2 and all(x >= 0.1 for x in lrs)


def test_config_round_trip_and_errors():
    cfg = TOY.make_config("cpu")
    back = config_from_dict(TOY.config, json.loads(json.dumps(config_to_dict(cfg))))
    assert back == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        config_from_dict(TOY.config, {"nope": 1})
    with pytest.raises(ValueError, match="optimizer"):
        config_from_dict(TrainConfig, {"optimizer": "lion"})


def test_config_of_an_earlier_version_loads_without_its_retired_settings():
    from unrender.methods.dynamic.config import DynamicConfig, FlowTraining

    old = config_to_dict(DynamicConfig())
    old["flow"]["sharp_temperature"] = 0.03  # a setting that versions before 2026-12-07 saved
    old["flow"]["radius"] = 3  # and a reach that was one int then: int | tuple takes either
    back = config_from_dict(DynamicConfig, old)
    assert back.flow.radius == 3 and not hasattr(back.flow, "sharp_temperature")
    assert config_from_dict(FlowTraining, {"radius": [4, 1, 4]}).radius == (4, 1, 4)
    with pytest.raises(ValueError, match="unknown config keys"):
        config_from_dict(FlowTraining, {"sharp_temperatur": 0.03})
    with pytest.raises((TypeError, ValueError), match="radius"):
        config_from_dict(FlowTraining, {"radius": "far"})


def test_crash_then_resume_gives_identical_weights(tmp_path):
    ref = tmp_path / "ref"
    Trainer(TOY, tiny_cfg(ref)).fit()

    run = tmp_path / "run"
    with pytest.raises(Crash):
        Trainer(TOY, tiny_cfg(run), hooks=[crash_at(17)]).fit()
    assert find_latest_checkpoint(run).name == "step_00000010"
    # a half-written checkpoint left by a killed writer is ignored and cleaned up
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = run / "checkpoints" / f".step_00000020.pid{dead.pid}.abc.tmp"
    left.mkdir()
    (left / "model.safetensors").write_bytes(b"garbage")
    trainer = Trainer(TOY, tiny_cfg(run))
    out = trainer.fit()
    assert trainer.step == 30 and out["checkpoint"].endswith("step_00000030")
    assert_same_weights(weights(ref), weights(run))
    assert not list((run / "checkpoints").glob(".*.tmp"))
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in x for x in lines) and any("eval/abs_rel" in x for x in lines)
    # the end-of-run evaluation's picture goes beside the final weights, as `unrender eval` puts it
    from PIL import Image

    with Image.open(Path(out["checkpoint"]) / "eval_0.png") as im:
        assert im.format == "PNG" and im.size[0] > 0


def test_a_run_the_time_limit_cuts_says_so_in_eval_json(tmp_path):
    Trainer(TOY, tiny_cfg(tmp_path / "a", max_steps=4, ckpt_every=0)).fit()
    done = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert done["step"] == done["max_steps"] == 4 and "stopped_by" not in done
    cfg = tiny_cfg(tmp_path / "b", max_steps=50, ckpt_every=0, time_limit_min=1e-9)
    Trainer(TOY, cfg).fit()
    cut = json.loads((tmp_path / "b" / "eval.json").read_text())
    assert cut["step"] < cut["max_steps"] == 50 and cut["stopped_by"].startswith("time limit")


def test_non_finite_losses_are_skipped(tmp_path):
    calls = {"n": 0}

    def flaky_loss(model, batch, cfg):
        out = TOY.loss(model, batch, cfg)
        calls["n"] += 1
        if calls["n"] in (3, 4):
            out["loss"] = out["loss"] * float("nan")
        return out

    method = dataclasses.replace(TOY, loss=flaky_loss)
    trainer = Trainer(method, tiny_cfg(tmp_path / "a", max_steps=8, ckpt_every=0))
    trainer.fit()
    assert trainer.skipped == 2
    assert json.loads((tmp_path / "a" / "eval.json").read_text())["skipped_steps"] == 2
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "a").values())

    def always_nan(model, batch, cfg):
        return {"loss": TOY.loss(model, batch, cfg)["loss"] * float("inf")}

    with pytest.raises(FloatingPointError, match="consecutive steps had a non-finite loss"):
        Trainer(dataclasses.replace(TOY, loss=always_nan), tiny_cfg(tmp_path / "b", max_bad_steps=3)).fit()


def test_loss_spikes_are_skipped_and_a_lasting_rise_is_not(tmp_path):
    """With ``spike_factor`` a single loss far above the running loss is skipped; a loss that stays
    high lifts the running loss, so training goes on."""
    calls = {"n": 0}

    def spiky_loss(model, batch, cfg):
        out = TOY.loss(model, batch, cfg)
        calls["n"] += 1
        if calls["n"] == 30:
            out["loss"] = out["loss"] * 0 + 1e4
        if calls["n"] > 40:  # a lasting rise: 20x from here on
            out["loss"] = out["loss"] * 20
        return out

    cfg = tiny_cfg(tmp_path / "a", max_steps=120, ckpt_every=0, spike_factor=4.0, lr=0.0)
    history: list[int] = []
    hooks = [lambda tr, step: history.append(tr.skipped)]
    trainer = Trainer(dataclasses.replace(TOY, loss=spiky_loss), cfg, hooks=hooks)
    trainer.fit()
    assert history[28] == 0 and history[29] == 1  # the 30th step was the spike
    assert history[40] > 1  # the rise is treated as spikes at first ...
    assert history[-1] == history[-30]  # ... until the running loss caught up: no skips at the end
    assert trainer.loss_seen == 120


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        load_checkpoint(tmp_path)
    Trainer(TOY, tiny_cfg(tmp_path / "r", max_steps=2, ckpt_every=0)).fit()
    ck = find_latest_checkpoint(tmp_path / "r")
    other = TOY.build_model(dataclasses.replace(TOY.make_config("tiny"), hidden=8))
    with pytest.raises(ValueError, match="does not fit the model"):
        load_checkpoint(ck, other)
    (ck / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_checkpoint(ck)


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "unrender", *args], env=env, **kw)


def test_torchrun_two_processes_match_one(tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not on PATH")
    common = ["train", "toy", "--preset", "tiny", "--train.no-progress", "--train.no-tensorboard",
              "--train.max-steps", "12", "--train.batch-size", "4"]  # fmt: skip
    one = tmp_path / "one"
    assert _cli(*common, "--train.out-dir", str(one), stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "unrender", *common, "--train.out-dir", str(two)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_weights(weights(one), weights(two), atol=1e-6)
