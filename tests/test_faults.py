"""Fault injection: kill -9 during training and synth, corrupted checkpoints and samples, concurrent
trainers, a full disk, bad command-line values. Every case ends in an exact recovery or in one
line ``unrender: ...`` with a non-zero exit code -- never a traceback or a hang.

docs/reliability.md lists the guarantees these tests check."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _util import Crash, crash_at
from safetensors.torch import load_file, save_file

from unrender.cli import main
from unrender.data.synth import _valid
from unrender.engine import (
    CheckpointError,
    Trainer,
    find_latest_checkpoint,
    find_resumable_checkpoint,
    load_checkpoint,
    load_for_inference,
)
from unrender.engine.checkpoint import _sha256
from unrender.methods import get_method

TOY = get_method("toy")
QUIET = ["--train.no-progress", "--train.no-tensorboard"]


def tiny(method, out: Path, data_root: Path | None = None, **train):
    cfg = method.make_config("tiny")
    cfg.train = dataclasses.replace(cfg.train, out_dir=out, progress=False, tensorboard=False, **train)
    if data_root is not None and hasattr(getattr(cfg, "data", None), "root"):
        cfg.data.root = data_root
    return cfg


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(find_latest_checkpoint(run) / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:  # bit for bit; a NaN buffer (an unset value) equals NaN
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True, msg=k)


def one_line_error(code: int, err: str, *needles: str) -> None:
    """A failed command: non-zero exit, no traceback, exactly one ``unrender:`` line holding ``needles``."""
    assert code != 0
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("unrender:") and "warning" not in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])


def run_main(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "unrender", *args], env=env, **kw)


def wait_for(cond, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(p.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------------------------------ exact resume
@pytest.mark.parametrize("name", ["energy-pose", "depth"])  # the methods whose training draws random numbers
def test_crash_and_resume_is_bit_identical_for_methods_with_randomness(name, tmp_path):
    method = get_method(name)
    common = {"max_steps": 6, "ckpt_every": 2}

    Trainer(method, tiny(method, tmp_path / "ref", tmp_path / "data", **common)).fit()
    with pytest.raises(Crash):
        Trainer(method, tiny(method, tmp_path / "run", tmp_path / "data", **common), hooks=[crash_at(5)]).fit()
    assert find_latest_checkpoint(tmp_path / "run").name == "step_00000004"
    Trainer(method, tiny(method, tmp_path / "run", tmp_path / "data", **common)).fit()
    assert_same_weights(weights(tmp_path / "ref"), weights(tmp_path / "run"))


def test_kill9_mid_run_resumes_to_the_same_weights(tmp_path):
    """energy-pose trains with dropout: a kill -9 at a random moment, then a rerun, gives the weights
    of an uninterrupted run bit for bit."""
    steps, every = 200, 20
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ["train", "energy-pose", "--preset", "tiny", *QUIET, "--train.max-steps", str(steps),
            "--train.ckpt-every", str(every)]  # fmt: skip
    # the uninterrupted run, in a process like the others (the thread count changes float sums)
    assert cli(*args, "--train.out-dir", str(ref), stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    args += ["--train.out-dir", str(run)]
    p = cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def far_enough() -> bool:
        ck = find_latest_checkpoint(run)
        return ck is not None and int(ck.name.split("_")[1]) >= 2 * every

    wait_for(far_enough, what="a checkpoint at step 40")
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = int(find_latest_checkpoint(run).name.split("_")[1])
    assert killed_at < steps, "the run ended before it was killed"
    assert cli(*args, stdout=subprocess.DEVNULL).wait(timeout=300) == 0
    assert_same_weights(weights(ref), weights(run))
    # the log holds each step once: lines the killed run wrote after its last checkpoint are dropped
    logged = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [s for s, x in zip(logged, (run / "metrics.jsonl").read_text().splitlines(), strict=True)
                   if "train/loss" in x]  # fmt: skip
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == steps


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.fixture
def toy_run(tmp_path) -> Path:
    """A finished toy run with checkpoints at steps 20 and 30."""
    run = tmp_path / "run"
    Trainer(TOY, tiny(TOY, run, keep_ckpts=3)).fit()
    return run


def _step(run: Path, n: int) -> Path:
    return run / "checkpoints" / f"step_{n:08d}"


CORRUPTIONS = {
    "truncated weights": ("model.safetensors", lambda b: b[: len(b) // 2]),
    "zeroed weights": ("model.safetensors", lambda b: bytes(len(b))),
    "bit flip in the weights": ("model.safetensors", lambda b: b[:-9] + bytes([b[-9] ^ 0x10]) + b[-8:]),
    "empty weights": ("model.safetensors", lambda b: b""),
    "state.json not an object": ("state.json", lambda b: b"[1, 2]"),
    "state.json not JSON": ("state.json", lambda b: b"{"),
    "config.json truncated": ("config.json", lambda b: b[:10]),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_checkpoint_gives_checkpoint_error_naming_the_file(case, toy_run, capsys):
    name, damage = CORRUPTIONS[case]
    ck = _step(toy_run, 30)
    (ck / name).write_bytes(damage((ck / name).read_bytes()))
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_checkpoint(ck, TOY.build_model(TOY.make_config("tiny")))
    code, err = run_main(capsys, "eval", "toy", "--ckpt", str(ck))
    one_line_error(code, err, name)


def test_nan_weights_are_refused_on_load(toy_run, capsys):
    ck = _step(toy_run, 30)
    sd = load_file(str(ck / "model.safetensors"))
    key = next(iter(sd))
    sd[key] = torch.full_like(sd[key], float("nan"))
    save_file(sd, str(ck / "model.safetensors"))
    state = json.loads((ck / "state.json").read_text())
    state["weights_sha256"] = _sha256(ck / "model.safetensors")  # a checksum that matches: only NaN is wrong
    (ck / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(ck, TOY.build_model(TOY.make_config("tiny")))
    code, err = run_main(capsys, "eval", "toy", "--ckpt", str(ck))
    one_line_error(code, err, "NaN", "model.safetensors")


def test_eval_needs_no_optimiser_state(toy_run, capsys):
    ck = _step(toy_run, 30)
    (ck / "train_state.pt").write_bytes((ck / "train_state.pt").read_bytes()[:100])
    code, err = run_main(capsys, "eval", "toy", "--ckpt", str(ck), "--out", str(toy_run / "e.json"))
    assert code == 0, err
    assert "abs_rel" in json.loads((toy_run / "e.json").read_text())


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path):
    """A broken newest checkpoint is skipped with a warning naming it; training resumes from the one
    before and ends with the weights of an uninterrupted run."""
    ref = tmp_path / "ref"
    Trainer(TOY, tiny(TOY, ref)).fit()

    run = tmp_path / "run"
    with pytest.raises(Crash):
        Trainer(TOY, tiny(TOY, run), hooks=[crash_at(25)]).fit()
    newest = _step(run, 20)
    ts = newest / "train_state.pt"
    ts.write_bytes(ts.read_bytes()[:-50])  # truncated optimiser state in the newest checkpoint
    with pytest.warns(RuntimeWarning, match=r"skipping broken checkpoint .*step_00000020.*train_state\.pt"):
        assert find_resumable_checkpoint(run) == _step(run, 10)
    with pytest.warns(RuntimeWarning, match="step_00000020"):
        Trainer(TOY, tiny(TOY, run)).fit()
    assert_same_weights(weights(ref), weights(run))


def test_a_crafted_pickle_never_runs(toy_run, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    ck = _step(toy_run, 30)
    torch.save({"optimizer": Evil(), "scheduler": {}, "rng": []}, ck / "train_state.pt")
    state = json.loads((ck / "state.json").read_text())
    state["train_state_sha256"] = _sha256(ck / "train_state.pt")
    (ck / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="train_state.pt"):
        load_checkpoint(ck, train_state=True)
    assert not (tmp_path / "pwned").exists()


def test_full_disk_while_saving_leaves_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    import unrender.engine.checkpoint as ckpt_mod

    run = tmp_path / "run"
    real = ckpt_mod.torch.save
    calls = {"n": 0}

    def save_then_fail(obj, f, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint hits a full disk half-way
            real(obj, f, *a, **kw)
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(ckpt_mod.torch, "save", save_then_fail)
    code, err = run_main(capsys, "train", "toy", "--preset", "tiny", *QUIET, "--train.out-dir", str(run))
    one_line_error(code, err, "no space left")
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(("step_", "."))] == ["step_00000010"]
    load_checkpoint(_step(run, 10), TOY.build_model(TOY.make_config("tiny")), train_state=True)
    monkeypatch.undo()
    assert run_main(capsys, "train", "toy", "--preset", "tiny", *QUIET, "--train.out-dir", str(run))[0] == 0


# --------------------------------------------------------------------------------------- one trainer per run
def test_second_trainer_on_the_same_folder_stops_at_once(tmp_path):
    run = tmp_path / "run"
    args = ["train", "energy-pose", "--preset", "tiny", *QUIET, "--train.out-dir", str(run),
            "--train.max-steps", "100000", "--train.ckpt-every", "50"]  # fmt: skip
    first = cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: find_latest_checkpoint(run) is not None, what="the first trainer's checkpoint")
        t0 = time.time()
        second = subprocess.run([sys.executable, "-m", "unrender", *args], capture_output=True, text=True, timeout=120)
        one_line_error(second.returncode, second.stderr, "in use", f"PID {first.pid}")
        assert time.time() - t0 < 60
        assert first.poll() is None, "the first trainer must keep running"
    finally:
        first.kill()
        first.wait()
    # the lock dies with its holder: a new trainer takes the folder over and resumes
    ep = get_method("energy-pose")
    ck = int(find_latest_checkpoint(run).name.split("_")[1])
    trainer = Trainer(ep, tiny(ep, run, max_steps=ck + 2))
    trainer.fit()
    assert trainer.step == ck + 2


def test_cleanup_leaves_another_live_writers_temporary_folder(tmp_path):
    run = tmp_path / "run"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = run / "checkpoints" / f".step_00000010.pid{other.pid}.xyz.tmp"
        live.mkdir(parents=True)
        Trainer(TOY, tiny(TOY, run)).fit()
        assert live.is_dir()
    finally:
        other.kill()
        other.wait()


def test_two_writers_of_one_dataset_take_turns(tmp_path):
    import threading

    from unrender.data.synth import write_dataset
    from unrender.io import FolderLock
    from unrender.world.sample import SynthConfig

    cfg = SynthConfig(kind="objects", num=2, views=1, height=8, width=8)
    out = tmp_path / "ds"
    done = threading.Event()
    with FolderLock(out, "test writer"):  # another writer holds the folder
        t = threading.Thread(target=lambda: (write_dataset(cfg, out, workers=1, progress=False), done.set()))
        t.start()
        time.sleep(0.5)
        assert not done.is_set() and not _samples(out), "the second writer must wait"
    t.join(timeout=60)
    assert done.is_set() and len(_samples(out)) == 2


# ---------------------------------------------------------------------------------------------- synth
SYNTH = ["synth", "rooms", "--num", "400", "--views", "1", "--height", "32", "--width", "32", "--workers", "2"]


def _samples(out: Path) -> list[Path]:
    return sorted((out / "samples").glob("*.npz")) if (out / "samples").is_dir() else []


def test_synth_workers_die_with_a_killed_parent(tmp_path):
    p = cli(*SYNTH, "--out", str(tmp_path / "ds"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(_samples(tmp_path / "ds")) >= 2, what="the first samples")
    workers = children(p.pid)
    assert workers, "synth started no worker processes"
    p.send_signal(signal.SIGKILL)
    p.wait()
    wait_for(lambda: not any(alive(w) for w in workers), timeout=10, what="the workers to exit")


def test_synth_ctrl_c_stops_within_a_second_with_one_line(tmp_path):
    out = tmp_path / "ds"
    # as from a terminal: a shell without job control (CI) starts background commands with SIGINT ignored
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    p = cli(*SYNTH, "--out", str(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    wait_for(lambda: len(_samples(out)) >= 2, what="the first samples")
    workers = children(p.pid)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert time.time() - t0 < 1.5, f"took {time.time() - t0:.1f} s"
    one_line_error(p.returncode, err, "interrupted")
    n = len(_samples(out))
    time.sleep(1.0)
    assert len(_samples(out)) == n, "samples were still written after the command ended"
    assert not any(alive(w) for w in workers)


def test_synth_rerun_rewrites_damaged_samples(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["synth", "objects", "--num", "3", "--views", "1", "--height", "16", "--width", "16", "--workers", "1",
            "--out", str(out)]  # fmt: skip
    assert run_main(capsys, *args)[0] == 0
    good = {k: v for k, v in np.load(out / "samples" / "000001.npz").items()}
    path = out / "samples" / "000001.npz"
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("rgb.npy")
    raw[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF  # a flipped bit inside compressed data
    path.write_bytes(bytes(raw))
    assert not _valid(path)
    (out / "samples" / "000002.npz").write_bytes(b"PK\x03\x04 truncated")
    assert run_main(capsys, *args)[0] == 0
    assert _valid(path) and _valid(out / "samples" / "000002.npz")
    again = dict(np.load(path).items())
    for k in good:
        assert np.array_equal(good[k], again[k]), k


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "option,value",
    [("--train.batch-size", "0"), ("--train.lr", "-1"), ("--train.lr", "nan"), ("--train.max-steps", "-5"),
     ("--train.ckpt-every", "-1"), ("--train.keep-ckpts", "0"), ("--train.warmup-steps", "-3"),
     ("--train.time-limit-min", "inf"), ("--height", "0")],
)  # fmt: skip
def test_bad_numbers_are_refused_up_front(option, value, tmp_path, capsys):
    code, err = run_main(capsys, "train", "toy", "--preset", "tiny", *QUIET, "--train.out-dir", str(tmp_path / "r"),
                         option, value)  # fmt: skip
    one_line_error(code, err, option)
    assert not (tmp_path / "r").exists()


def test_impossible_sizes_are_refused_before_allocating(tmp_path, capsys):
    code, err = run_main(capsys, "synth", "rooms", "--out", str(tmp_path / "s"), "--height", "100000",
                         "--width", "100000")  # fmt: skip
    one_line_error(code, err, "memory", "--height")
    code, err = run_main(capsys, "train", "mapping", "--preset", "tiny", *QUIET, "--data.height", "100000",
                         "--data.width", "100000", "--data.root", str(tmp_path / "d"),
                         "--train.out-dir", str(tmp_path / "m"))  # fmt: skip
    one_line_error(code, err, "memory")
    huge = ["--data.resolution", "2000", "2000", "2000"]
    code, err = run_main(capsys, "train", "mapping", "--preset", "tiny", *QUIET, *huge, "--data.root",
                         str(tmp_path / "d"), "--train.out-dir", str(tmp_path / "m"))  # fmt: skip
    one_line_error(code, err, "memory", "voxel memory")
    assert not (tmp_path / "d").exists()


def test_unusable_paths_give_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, err = run_main(capsys, "train", "toy", "--preset", "tiny", *QUIET, "--train.out-dir", str(blocker / "run"))
    one_line_error(code, err, str(blocker))
    code, err = run_main(capsys, "synth", "objects", "--num", "1", "--out", str(blocker / "ds"))
    one_line_error(code, err, str(blocker))
    empty = tmp_path / "not-kitti"
    empty.mkdir()
    code, err = run_main(capsys, "train", "depth", "--preset", "tiny", *QUIET, "--data.kitti-raw", str(empty),
                         "--data.root", str(tmp_path / "d"), "--train.out-dir", str(tmp_path / "dr"))  # fmt: skip
    one_line_error(code, err, "not-kitti")
    code, err = run_main(capsys, "eval", "toy", "--ckpt", str(tmp_path / "missing"))
    one_line_error(code, err, "no complete checkpoint")


def test_cameras_are_validated_at_the_entry_points():
    from unrender.geometry import (
        VoxelGrid,
        camera_rays,
        depth_to_points,
        make_intrinsics,
        plucker_map,
        sample_frustum,
        unproject_points,
        unproject_to_grid,
    )

    grid = VoxelGrid((-1.0, -1.0, 1.0), (1.0, 1.0, 3.0), (2, 2, 2))
    K = make_intrinsics(4.0, 4.0, 1.5, 1.5)
    T = torch.eye(4)
    zero_f, nan_K = K.clone(), K.clone()
    zero_f[0, 0] = 0
    nan_K[1, 2] = float("nan")
    nan_T = T.clone()
    nan_T[0, 3] = float("nan")
    calls = {
        "unproject_to_grid": lambda K, T: unproject_to_grid(grid, torch.ones(1, 3, 4, 4), K[None], T[None]),
        "sample_frustum": lambda K, T: sample_frustum(torch.ones(1, 2, 2, 2), grid, K, T, 4, 4, torch.tensor([1.0])),
        "camera_rays": lambda K, T: camera_rays(K, T, 4, 4),
        "plucker_map": lambda K, T: plucker_map(K, T, 4, 4),
        "depth_to_points": lambda K, T: depth_to_points(torch.ones(1, 4, 4), K),
        "unproject_points": lambda K, T: unproject_points(torch.zeros(1, 2), torch.ones(1), K),
    }
    for name, call in calls.items():
        call(K, T)  # a good camera works
        for bad_K, match in ((zero_f, "focal length is zero"), (nan_K, "NaN or inf")):
            with pytest.raises(ValueError, match=match):
                call(bad_K, T)
        if name not in ("depth_to_points", "unproject_points"):  # these take no pose
            with pytest.raises(ValueError, match="pose contains NaN"):
                call(K, nan_T)


@pytest.mark.parametrize(
    "err,needle",
    [(errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied"), (errno.EROFS, "read-only"),
     (errno.ENOTDIR, "is a file"), (errno.EDQUOT, "quota")],
)  # fmt: skip
def test_os_errors_give_one_line_with_a_hint(err, needle, capsys, monkeypatch):
    import unrender.cli as cli_mod

    def fail(args):
        raise OSError(err, os.strerror(err), "/some/where/file.bin")

    monkeypatch.setattr(cli_mod, "cmd_synth", fail)
    code, out = run_main(capsys, "synth", "rooms")
    one_line_error(code, out, needle, "/some/where/file.bin")
    assert code == 2


def test_debug_shows_the_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "unrender", "--debug", "train", "toy", "--preset", "tiny",
                        "--train.batch-size", "0", "--train.out-dir", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode != 0 and "Traceback" in r.stderr and "--train.batch-size" in r.stderr


def test_config_files_are_type_checked(toy_run, capsys):
    ck = _step(toy_run, 30)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["train"]["max_steps"] = "abc"
    (ck / "config.json").write_text(json.dumps(cfg))
    code, err = run_main(capsys, "eval", "toy", "--ckpt", str(ck))
    one_line_error(code, err, "max_steps", "config.json")


def test_eval_writes_generated_data_where_the_command_line_says(tmp_path, capsys):
    """A checkpoint's config names a data folder elsewhere: eval never writes there."""
    nvs = get_method("nvs")
    run = tmp_path / "run"
    Trainer(nvs, tiny(nvs, run, tmp_path / "train-data", max_steps=1)).fit()
    ck = find_latest_checkpoint(run)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["data"]["root"] = str(tmp_path / "elsewhere")
    (ck / "config.json").write_text(json.dumps(cfg))
    code, err = run_main(capsys, "eval", "nvs", "--ckpt", str(ck), "--data-root", str(tmp_path / "here"))
    assert code == 0, err
    assert (tmp_path / "here").is_dir() and not (tmp_path / "elsewhere").exists()
    cfg, _, _ = load_for_inference(ck, "nvs", nvs.config, nvs.build_model)  # without --data-root: ./runs/data
    assert cfg.data.root == Path("runs/data")
