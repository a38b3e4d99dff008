import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from unrender.cli import main
from unrender.data.synth import DatasetError, SynthDataset, write_dataset
from unrender.world.sample import SynthConfig

CFG = SynthConfig(kind="objects", num=3, views=2, height=24, width=24)


def test_write_read_resume_and_on_the_fly(tmp_path):
    out = write_dataset(CFG, tmp_path / "ds", workers=1, progress=False)
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == "unrender-synth" and len(index["samples"]) == 3
    assert all((out / e["preview"]).is_file() for e in index["samples"])
    disk = SynthDataset(out)
    fly = SynthDataset(config=CFG)
    assert len(disk) == len(fly) == 3
    a, b = disk[1], fly[1]
    for k in ("rgb", "depth", "instance", "K", "cam_from_world", "boxes_world", "occupancy"):
        assert torch.equal(a[k], b[k]), k
    assert a["rgb"].dtype == torch.float32 and a["rgb"].max() <= 1 and a["occupancy"].shape[0] == 1
    # resume: a finished sample is not rewritten; a half-written one (not a valid zip) is redone
    done = out / "samples" / "000000.npz"
    stamp = os.stat(done).st_mtime_ns
    (out / "samples" / "000002.npz").write_bytes(b"PK\x03\x04 truncated")
    write_dataset(CFG, out, workers=1, progress=False)
    assert os.stat(done).st_mtime_ns == stamp
    assert torch.equal(SynthDataset(out)[2]["rgb"], fly[2]["rgb"])
    # another config in the same folder is refused
    with pytest.raises(DatasetError, match="holds another dataset"):
        write_dataset(SynthConfig(kind="objects", num=3, views=2, height=24, width=32), out, workers=1, progress=False)
    with pytest.raises(DatasetError, match="holds another dataset"):
        write_dataset(dataclasses.replace(CFG, antialias=3), out, workers=1, progress=False)
    # a folder written before a setting existed resumes with that setting's default
    index["config"].pop("antialias")
    (out / "index.json").write_text(json.dumps(index))
    write_dataset(CFG, out, workers=1, progress=False)
    assert SynthDataset(out).config == CFG


def test_reader_errors(tmp_path):
    with pytest.raises(DatasetError, match="index.json is missing"):
        SynthDataset(tmp_path)
    (tmp_path / "index.json").write_text("{oops")
    with pytest.raises(DatasetError, match="not JSON"):
        SynthDataset(tmp_path)
    out = write_dataset(CFG, tmp_path / "ds", workers=1, progress=False)
    (out / "samples" / "000001.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="corrupt sample file"):
        SynthDataset(out)[1]
    (out / "samples" / "000002.npz").unlink()
    with pytest.raises(DatasetError, match="sample file missing"):
        SynthDataset(out)[2]
    with pytest.raises(ValueError, match="exactly one of"):
        SynthDataset()


def test_cli_synth_in_parallel(tmp_path):
    assert main(["synth", "people", "--out", str(tmp_path / "p"), "--num", "2", "--views", "2",
                 "--height", "24", "--width", "24", "--workers", "2"]) == 0  # fmt: skip
    ds = SynthDataset(tmp_path / "p")
    s = ds.raw(0)
    assert s["joints_world"].shape == (17, 3)
    assert np.isfinite(s["depth"]).all()
