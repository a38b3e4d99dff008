"""Training loss and evaluation of pose lifting: MPJPE (Protocol 1), P-MPJPE and N-MPJPE in mm at
every inner step, next to the MLP baselines and a fit-to-2D baseline, with parameter counts and
multiply-adds; on held-out synthetic poses (0 px and 5 px 2D noise) and on the Human3.6M frames."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ....metrics.pose import mpjpe, n_mpjpe, p_mpjpe
from ....world.generators import H36M_PARENTS
from ..unrolled import step_weights
from .config import EnergyPoseConfig
from .data import PoseLifting, h36m_samples, synth_poses
from .model import EnergyPose, normalized_joints, project

__all__ = ["pose_losses", "evaluate_pose", "fit_to_2d", "count_macs", "pose_table"]

_BONES = [(j, p) for j, p in enumerate(H36M_PARENTS) if p >= 0]


def _iterates(model: nn.Module, batch: dict[str, torch.Tensor], steps: int | None = None) -> list[torch.Tensor]:
    out = model(batch, steps) if isinstance(model, EnergyPose) else model(batch)
    return out if isinstance(out, list) else [out]


def pose_losses(model: nn.Module, batch: dict[str, torch.Tensor], cfg: EnergyPoseConfig) -> dict[str, torch.Tensor]:
    """Root-relative joint error + ``root_weight`` x the root's position error (metres), on every
    iterate ``y_0 .. y_K`` with weights growing with ``k`` (one iterate for the MLP)."""
    gt = batch["joints_cam"]
    ys = _iterates(model, batch)
    weights = step_weights(len(ys) - 1, cfg.model.step_growth).tolist()
    errors = [mpjpe(y, gt).mean() + cfg.model.root_weight * (y[:, 0] - gt[:, 0]).norm(dim=-1).mean() for y in ys]
    out = {"loss": sum(w * e for w, e in zip(weights, errors, strict=True))}
    out["mpjpe_mm_first"] = 1000 * mpjpe(ys[0].detach(), gt).mean()
    out["mpjpe_mm_last"] = 1000 * mpjpe(ys[-1].detach(), gt).mean()
    return out


# ---------------------------------------------------------------------------- fit-to-2D baseline
def mean_bone_lengths(num: int = 2000, seed: int = 12345) -> torch.Tensor:
    """Mean bone lengths ``(16,)`` of the synthetic skeletons (a fixed statistic, nothing learned)."""
    J, _ = synth_poses(num, seed)
    return torch.stack([(J[:, j] - J[:, p]).norm(dim=-1) for j, p in _BONES], 1).mean(0).float()


def fit_to_2d(joints_2d: torch.Tensor, K: torch.Tensor, bones: torch.Tensor, steps: int = 500) -> torch.Tensor:
    """Baseline with no learned prior: lift the 2D joints to the depth at which their bones have the
    mean lengths ``bones`` (flat, plus a fixed 5 cm random depth tilt to break the symmetry), then
    ``steps`` Adam steps (cosine-decayed) on the reprojection error (in units of 0.002, ~2 px) + the
    bone-length error (in units of 2 cm). Returns ``(B, 17, 3)``."""
    xn = normalized_joints(joints_2d, K)
    idx_j, idx_p = torch.tensor([j for j, _ in _BONES]), torch.tensor([p for _, p in _BONES])
    bones = bones.to(xn)
    length_2d = (xn[:, idx_j] - xn[:, idx_p]).norm(dim=-1).sum(1)
    depth = bones.sum() / length_2d.clamp(min=1e-6)  # (B,)
    g = torch.Generator().manual_seed(0)
    z = depth[:, None] + 0.05 * torch.randn(xn.shape[1], generator=g).to(xn)
    y = torch.cat([xn * z[..., None], z[..., None]], -1).detach().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.03)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    with torch.enable_grad():
        for _ in range(steps):
            rep = ((project(y) - xn) / 0.002).pow(2).sum(-1).mean(-1)
            bone = ((y[:, idx_j] - y[:, idx_p]).norm(dim=-1) - bones).div(0.02).pow(2).mean(-1)
            opt.zero_grad()
            (rep + bone).sum().backward()
            opt.step()
            schedule.step()
    return y.detach()


# --------------------------------------------------------------------------------- cost measures
def count_macs(fn: Callable[[], Any]) -> int:
    """Multiply-adds of the matrix products and convolutions run by ``fn()`` -- forward and, where
    ``fn`` takes gradients, backward -- counted per dispatched op with PyTorch's FLOP formulas
    (FLOPs / 2). (``FlopCounterMode`` itself cannot run inside ``autograd.grad``: its module tracker
    registers hooks there.)

    Example:
        >>> count_macs(lambda: torch.ones(4, 8) @ torch.ones(8, 16))
        512
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        flops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.flops += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        fn()
    return int(counter.flops // 2)


# ------------------------------------------------------------------------------------ evaluation
def _scores(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    return {"mpjpe": 1000 * float(mpjpe(pred, gt).mean()), "p_mpjpe": 1000 * float(p_mpjpe(pred, gt).mean()),
            "n_mpjpe": 1000 * float(n_mpjpe(pred, gt).mean())}  # fmt: skip


def _predict(
    model: nn.Module, batch: dict[str, torch.Tensor], steps: int | None, chunk: int = 500
) -> list[torch.Tensor]:
    """All iterates of ``model`` on ``batch``, in chunks."""
    parts = []
    n = len(batch["joints_2d"])
    for s in range(0, n, chunk):
        parts.append([y.detach() for y in _iterates(model, {k: v[s : s + chunk] for k, v in batch.items()}, steps)])
    return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]


_FIT_SCORES: dict[tuple[str, bytes], dict[str, float]] = {}


def _fit_scores(name: str, data: dict[str, torch.Tensor], bones: torch.Tensor) -> dict[str, float]:
    """Scores of the fit-to-2D baseline on one evaluation set, computed once per process for the same
    2D input (it learns nothing, so every checkpoint of one ``unrender eval`` shares it)."""
    key = (name, hashlib.sha1(data["joints_2d"].numpy().tobytes() + data["K"].numpy().tobytes()).digest())
    if key not in _FIT_SCORES:
        _FIT_SCORES[key] = _scores(fit_to_2d(data["joints_2d"], data["K"], bones), data["joints_cam"])
    return _FIT_SCORES[key]


def _skeleton_panel(poses: list[torch.Tensor], colours: list[tuple[int, int, int]], size: int = 160) -> np.ndarray:
    """Side view (depth right, y down) of root-centred skeletons drawn over each other."""
    from ....viz.images import draw_segments

    canvas = np.full((size, size, 3), 255, np.uint8)
    for pose, colour in zip(poses, colours, strict=True):
        p = (pose - pose[:1]).numpy()[:, [2, 1]] * (size / 2.4) + size / 2  # 2.4 m across
        segs = np.stack([[p[j], p[q]] for j, q in _BONES])
        canvas = draw_segments(canvas, segs, [colour] * len(segs), width=2)
    return canvas


def _set_scores(model: nn.Module, cfg: EnergyPoseConfig, name: str, data: dict[str, torch.Tensor], bones: torch.Tensor,
                device: torch.device) -> tuple[dict[str, float], list[torch.Tensor]]:  # fmt: skip
    """Scores of the model's rows (every ``eval_steps`` K, or the MLP) and of the fit-to-2D baseline on one
    set of poses, keyed ``ROW/METRIC<name>`` (``ROW/h36m/METRIC`` for Human3.6M), and the rows' predictions."""
    energy = isinstance(model, EnergyPose)
    rows = [f"K{k}" for k in cfg.model.eval_steps] if energy else ["mlp"]
    batch = {k: v.to(device) for k, v in data.items() if k != "joints_cam"}
    ys = [y.cpu() for y in _predict(model, batch, max(cfg.model.eval_steps) if energy else None)]
    preds = [ys[k] for k in cfg.model.eval_steps] if energy else ys
    out: dict[str, float] = {}
    for row, pred in zip(rows, preds, strict=True):
        for metric, v in _scores(pred, data["joints_cam"]).items():
            out[f"{row}/h36m/{metric}" if name == "h36m" else f"{row}/{metric}{name}"] = v
    for metric, v in _fit_scores(name, data, bones).items():
        out[f"fit/h36m/{metric}" if name == "h36m" else f"fit/{metric}{name}"] = v
    return out, preds


def evaluate_h36m(model: nn.Module, cfg: EnergyPoseConfig, folder: Path, device: torch.device) -> dict[str, float]:
    """Human3.6M protocols #1 (MPJPE) and #2 (P-MPJPE, after Procrustes alignment), in mm, of the model's
    rows and of the fit-to-2D baseline on the frames of ``folder`` (``test_h36m_body3d.npz`` and
    ``cameras.json``: the 2D joints and the camera's intrinsics in, camera-frame 3D joints scored)."""
    was_training = model.training
    model.eval()
    data = h36m_samples(folder)
    scores, _ = _set_scores(model, cfg, "h36m", data, mean_bone_lengths(), device)
    model.train(was_training)
    return {"frames": len(data["joints_2d"]), **scores}


def evaluate_pose(model: nn.Module, cfg: EnergyPoseConfig, device: torch.device) -> dict[str, Any]:
    """Scores of the model (every ``eval_steps`` K for the energy model) and of the fit-to-2D
    baseline, keyed ``ROW/METRIC@Npx`` (synthetic) and ``ROW/h36m/METRIC``, plus ``ROW/params`` and
    ``ROW/macs`` (per pose)."""
    from ....viz.images import image_grid

    was_training = model.training
    model.eval()
    energy = isinstance(model, EnergyPose)
    rows = [f"K{k}" for k in cfg.model.eval_steps] if energy else ["mlp"]
    out: dict[str, Any] = {}
    params = sum(p.numel() for p in model.parameters())
    one = PoseLifting(cfg, "val", 0.0)
    sample = {k: v[None].to(device) for k, v in one[0].items()}  # MACs per pose: a batch of one
    for row, k in zip(rows, cfg.model.eval_steps if energy else [None], strict=True):
        out[f"{row}/params"] = params
        out[f"{row}/macs"] = count_macs(lambda k=k: _iterates(model, sample, k))
    if not energy:
        out["mlp/width"], out["mlp/blocks"] = cfg.model.width, cfg.model.blocks
    else:
        out["first_order"] = int(cfg.model.optimizer == "first_order")
    bones = mean_bone_lengths()
    sets: dict[str, dict[str, torch.Tensor]] = {}
    for noise in cfg.data.eval_noise_px:
        ds = one if noise == 0 else PoseLifting(cfg, "val", noise)
        sets[f"@{noise:g}px"] = {
            "joints_2d": ds.joints_2d,
            "K": ds.K.expand(len(ds), 3, 3),
            "joints_cam": ds.joints_cam,
        }
    h36m = cfg.data.h36m
    if h36m is not None and (Path(h36m) / "test_h36m_body3d.npz").is_file():
        sets["h36m"] = h36m_samples(h36m)
    elif h36m is not None:
        print(f"Human3.6M frames not found in {h36m}: skipping the real-data rows")
    pictures = []
    for name, data in sets.items():
        scores, preds = _set_scores(model, cfg, name, data, bones, device)
        out.update(scores)
        gt = data["joints_cam"]
        if name != "h36m" and not pictures:
            shown = [preds[0], preds[-1]] if energy else [preds[0]]
            colours = [(0, 160, 0), (220, 40, 40), (40, 80, 220)][: len(shown) + 1]
            pictures = [_skeleton_panel([gt[i]] + [p[i] for p in shown], colours) for i in range(4)]
    out["fit/params"] = 0
    title = f"{rows[0]} (red), {rows[-1]} (blue)" if energy else f"{rows[0]} (red)"
    out["images"] = {f"side views of held-out poses: truth (green), {title}": image_grid([pictures])}
    model.train(was_training)
    return out


_COLUMNS = [("mpjpe", "@0px"), ("p_mpjpe", "@0px"), ("n_mpjpe", "@0px"), ("mpjpe", "@5px"), ("p_mpjpe", "@5px"),
            ("n_mpjpe", "@5px"), ("mpjpe", "h36m"), ("p_mpjpe", "h36m")]  # fmt: skip


def pose_table(columns: dict[str, dict[str, float]], command: str) -> str:
    """One row per (checkpoint, model / inner step K) and one for the fit-to-2D baseline: parameters,
    multiply-adds per pose and the errors in mm (synthetic at 0 and 5 px, Human3.6M frames)."""
    head = ["model", "checkpoint", "params", "MACs/pose"] + [
        f"{m.replace('_', '-').upper()} {s if s == 'h36m' else s[1:]}" for m, s in _COLUMNS
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(m: dict[str, float], key: str, fmt: str = ".1f") -> str:
        v = m.get(key)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def line(label: str, ckpt: str, m: dict[str, float], row: str) -> str:
        errs = [cell(m, f"{row}/h36m/{k}" if s == "h36m" else f"{row}/{k}{s}") for k, s in _COLUMNS]
        return f"| {label} | {ckpt} | {cell(m, f'{row}/params', ',d')} | {cell(m, f'{row}/macs', ',d')} | " + \
            " | ".join(errs) + " |"  # fmt: skip

    fit_done = False
    for ckpt, m in columns.items():
        rows = sorted({k.split("/")[0] for k in m if k.startswith(("K", "mlp"))}, key=lambda r: (len(r), r))
        for row in rows:
            kind = "first-order updates" if m.get("first_order") else "energy"
            label = f"{kind}, K = {row[1:]}" if row.startswith("K") else \
                f"MLP {m.get('mlp/width', 0):.0f} x {m.get('mlp/blocks', 0):.0f}"  # fmt: skip
            lines.append(line(label, ckpt, m, row))
        if not fit_done and any(k.startswith("fit/") for k in m):
            lines.append(line("fit to 2D (no learned prior)", ckpt, m, "fit"))
            fit_done = True
    if not any("/h36m/" in k for m in columns.values() for k in m):
        lines.append("\nHuman3.6M columns empty: the frames (`test_h36m_body3d.npz`) were not found.")
    return f"Produced by `{command}`.\n\n" + "\n".join(lines) + "\n"
