"""Probes of the encoder-decoder model's latent tokens (``unrender probe nvs``), each writing a picture.

* interpolate: render scene A's target from latents blended between scene A's and scene B's;
* permute: shuffle the latent tokens -- the render must not change (no positions on latents);
* edit: zero, perturb or drop single tokens and show what changes, ranked by effect;
* add: add one token (zeros, the mean latent, a copy of a latent, random, and one optimised to change
  the render least) and measure how close an added token comes to an identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate

__all__ = ["ProbeArgs", "run_probes", "interpolate", "permute", "edit_tokens", "add_token"]


@dataclass
class ProbeArgs:
    ckpt: Path
    """A checkpoint folder of an ``encdec`` model, or its run folder (newest checkpoint)."""
    out: Path | None = None
    """Where the pictures and ``probes.json`` go (default: ``probes/`` beside the checkpoint)."""
    scene_a: int = 0
    """Held-out item whose scene is probed."""
    scene_b: int = 8
    """Held-out item of the second scene (interpolation); items of one scene are ``data.views`` apart."""
    steps: int = 7
    """Interpolation steps from A to B."""
    tokens: int = 4
    """How many tokens the edit probe shows (the most influential ones)."""
    noise: float = 1.0
    """Perturbation size, relative to each token's RMS."""
    device: str = "auto"
    data_root: Path | None = None
    """Where generated data is written (default: runs/data in the current folder)."""


def _change(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


@torch.no_grad()
def interpolate(model, a: dict, b: dict, steps: int) -> tuple[list[torch.Tensor], list[float]]:
    """Renders of ``a``'s first target from ``(1 - w) z_a + w z_b`` for ``steps`` weights in [0, 1]."""
    za, zb = model.encode(a), model.encode(b)
    renders = [model.decode((1 - w) * za + w * zb, a)[0, 0] for w in torch.linspace(0, 1, steps).tolist()]
    return renders, [_change(r, renders[0]) for r in renders]


@torch.no_grad()
def permute(model, a: dict, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The render from the latents and from a random permutation of them, and their largest difference."""
    z = model.encode(a)
    perm = torch.randperm(z.shape[1], generator=torch.Generator().manual_seed(seed)).to(z.device)
    r0, r1 = model.decode(z, a)[0, 0], model.decode(z[:, perm], a)[0, 0]
    return r0, r1, float((r0 - r1).abs().max())


def _edits(z: torch.Tensor, i: int, noise: float, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Latents ``(B, L, D)`` with token ``i`` zeroed, perturbed (by ``noise`` x its RMS) and dropped."""
    zero, pert = z.clone(), z.clone()
    zero[:, i] = 0
    rms = z[:, i].pow(2).mean().sqrt()
    pert[:, i] = z[:, i] + noise * rms * torch.randn(z[:, i].shape, generator=g).to(z.device)
    return {"zero": zero, "perturb": pert, "drop": torch.cat([z[:, :i], z[:, i + 1 :]], 1)}


@torch.no_grad()
def edit_tokens(model, a: dict, noise: float = 1.0, seed: int = 0) -> dict[str, list[float]]:
    """Zero, perturb and drop every latent token in turn: the render change of each (mean |diff|),
    per edit kind, indexed by token."""
    z = model.encode(a)
    base = model.decode(z, a)[0, 0]
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[float]] = {"zero": [], "perturb": [], "drop": []}
    for i in range(z.shape[1]):
        for kind, zz in _edits(z, i, noise, g).items():
            out[kind].append(_change(model.decode(zz, a)[0, 0], base))
    return out


def add_token(model, a: dict, steps: int = 100, lr: float = 0.05) -> dict[str, float]:
    """Render change when one token is added: zeros, the mean latent, a copy of latent 0, a random
    token of the latents' scale, and one optimised (Adam, ``steps``) to change the render least."""
    with torch.no_grad():
        z = model.encode(a)
        base = model.decode(z, a)
    rms = z.pow(2).mean().sqrt()
    g = torch.Generator().manual_seed(0)
    candidates = {
        "zeros": torch.zeros_like(z[:, :1]),
        "mean latent": z.mean(1, keepdim=True),
        "copy of latent 0": z[:, :1],
        "random": rms * torch.randn(z[:, :1].shape, generator=g).to(z.device),
    }
    out = {}
    with torch.no_grad():
        for name, t in candidates.items():
            out[name] = _change(model.decode(torch.cat([z, t], 1), a), base)
    token = z.mean(1, keepdim=True).clone().requires_grad_(True)
    opt = torch.optim.Adam([token], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = (model.decode(torch.cat([z, token], 1), a) - base).abs().mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out["optimised"] = _change(model.decode(torch.cat([z, token], 1), a), base)
    return out


def run_probes(args: ProbeArgs) -> dict[str, Any]:
    """Run every probe on a trained ``encdec`` checkpoint; write PNGs and ``probes.json``; return the numbers."""
    from ...engine import load_for_inference
    from ...engine.distributed import pick_device
    from ...io import atomic_write_text
    from ...viz import image_grid, save_png
    from .config import NVSConfig
    from .data import NVSDataset
    from .model import NVSModel

    cfg, model, ck_path = load_for_inference(args.ckpt, "nvs", NVSConfig, NVSModel, data_root=args.data_root)
    if cfg.model.arch != "encdec":
        raise ValueError(f"{ck_path}: the probes need an encoder-decoder model (model.arch='encdec'), "
                         f"this one is {cfg.model.arch!r}")  # fmt: skip
    device = pick_device(args.device)
    model.to(device).eval().requires_grad_(False)
    data = NVSDataset(cfg, "val")
    for name in ("scene_a", "scene_b"):
        if not 0 <= getattr(args, name) < len(data):
            raise ValueError(f"--{name.replace('_', '-')} must be in 0..{len(data) - 1}")
    a, b = ({k: v.to(device) for k, v in default_collate([data[i]]).items()} for i in (args.scene_a, args.scene_b))
    out_dir = args.out or Path(ck_path).parent.parent / "probes"
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers: dict[str, Any] = {"checkpoint": str(ck_path), "latents": cfg.model.latents}

    renders, changes = interpolate(model, a, b, args.steps)
    save_png(out_dir / "interpolate.png", image_grid([[a["target_images"][0, 0].cpu(), *(r.cpu() for r in renders)]],
                                                     scale=3))  # fmt: skip
    numbers["interpolate_change"] = changes

    r0, r1, diff = permute(model, a)
    save_png(out_dir / "permute.png", image_grid([[r0.cpu(), r1.cpu(), ((r0 - r1).abs() * 1e5).clamp(0, 1).cpu()]],
                                                 scale=3))  # fmt: skip
    numbers["permute_max_abs_diff"] = diff

    ed = edit_tokens(model, a, args.noise)
    top = sorted(range(len(ed["drop"])), key=lambda i: -ed["drop"][i])[: args.tokens]
    with torch.no_grad():  # render again only the tokens shown
        z = model.encode(a)
        base = model.decode(z, a)[0, 0]
        g = torch.Generator().manual_seed(0)
        rows = []
        for i in top:
            edited = [model.decode(zz, a)[0, 0] for zz in _edits(z, i, args.noise, g).values()]
            rows.append([base.cpu(), *(r.cpu() for r in edited),
                         *(((r - base).abs() * 4).clamp(0, 1).cpu() for r in edited)])  # fmt: skip
    save_png(out_dir / "edit.png", image_grid(rows, scale=3))
    numbers["edit"] = {k: {"mean": sum(v) / len(v), "max": max(v), "top_tokens": top} for k, v in ed.items()}

    numbers["add_token_change"] = add_token(model, a)
    atomic_write_text(out_dir / "probes.json", json.dumps(numbers, indent=2))
    numbers["out"] = str(out_dir)
    return numbers
