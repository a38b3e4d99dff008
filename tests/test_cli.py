import json
import subprocess
import sys

from unrender.cli import main
from unrender.methods import PLANNED


def run(*args):
    return subprocess.run([sys.executable, "-m", "unrender", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "synth", "train", "eval", "bench"):
        assert cmd in out


def test_train_help_lists_methods_and_planned(capsys, monkeypatch):
    monkeypatch.setitem(PLANNED, "later", "a later issue")
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for name in ("toy", "mapping", "depth", "nvs", "energy-pose", "energy-voxels"):
        assert name in out
    assert "later" in out and "not built yet" in out


def test_unbuilt_things_say_so(capsys, monkeypatch):
    monkeypatch.setitem(PLANNED, "later", "a later issue")
    assert main(["train", "later"]) == 2
    assert "not built yet" in capsys.readouterr().err
    assert main(["train", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_method_help_is_generated_from_the_config():
    r = run("train", "toy", "--help")
    assert r.returncode == 0
    assert "--train.lr" in r.stdout and "--hidden" in r.stdout and "Presets" in r.stdout


def test_train_then_eval(tmp_path):
    r = run("train", "toy", "--preset", "tiny", "--train.out-dir", str(tmp_path / "r"), "--train.no-progress",
            "--train.max-steps", "5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "abs_rel" in json.loads(r.stdout[r.stdout.index("{") :])
    r = run("eval", "toy", "--ckpt", str(tmp_path / "r"), "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "e.json").read_text())
    assert "abs_rel" in got
    # how far the checkpoint's training got goes with every evaluation of it
    assert got["trained_steps"] == 5 and got["schedule_steps"] == 5 and got["skipped_steps"] == 0
    r = run("eval", "toy", "--ckpt", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no complete checkpoint" in r.stderr
    r = run("eval", "toy", "--ckpt", str(tmp_path / "r"), "--held-out", "3")  # toy has no held-out scenes
    assert r.returncode == 2 and "held-out" in r.stderr and "Traceback" not in r.stderr


def test_import_is_light():
    code = (
        "import sys, unrender, unrender.geometry, unrender.metrics, unrender.engine, unrender.cli, unrender.viz;"
        "heavy = [m for m in ('plotly', 'rerun', 'tensorboard', 'torch.utils.tensorboard', 'torchvision') "
        "if m in sys.modules]; print(heavy); assert not heavy"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_train_reads_what_synth_wrote_for_the_method(tmp_path, capsys):
    """`unrender synth <method> --out DIR` writes the data `unrender train <method> --data.root DIR` uses."""
    data = tmp_path / "data"
    assert main(["synth", "energy-voxels", "--preset", "tiny", "--out", str(data)]) == 0
    assert "--data.root" in capsys.readouterr().out
    written = {p: p.stat().st_mtime_ns for p in data.rglob("*.npz")}
    assert len({p.parent for p in written}) >= 2  # a training and a held-out dataset
    assert main(["train", "energy-voxels", "--preset", "tiny", "--data.root", str(data), "--train.max-steps", "1",
                 "--train.out-dir", str(tmp_path / "run")]) == 0  # fmt: skip
    after = {p: p.stat().st_mtime_ns for p in data.rglob("*.npz")}
    assert written and after == written  # no sample generated again, none added
    assert main(["synth", "energy-pose", "--out", str(data)]) == 2
    assert "on the fly" in capsys.readouterr().err
