"""Per-scene latent grids, each with its own optimiser, kept one file per scene ("one voxel grid per npz").

A scene's file holds its grid, its optimiser's state (Adam's moments and step count) and how many steps it
took, so a scene can be loaded, stepped and saved alone: nothing needs every scene in memory at once.
Scenes are loaded on first use and kept in memory up to ``cache`` of them; :meth:`SceneBank.flush` writes
the ones that changed (each file atomically).

With ``cache`` 0 (every scene stays in memory; the default) scene files change only at :meth:`SceneBank.flush`,
which the scene-grids model calls whenever its weights are saved, so a resumed run sees scenes and decoder of
the same step. With a smaller cache a scene pushed out is written at once, so after a crash it can be a few
steps ahead of the last checkpoint (the run still resumes; it is no longer step-for-step identical).

A scene's optimiser steps from inside the backward pass (a post-accumulate-grad hook on its grid), so a
training loop that knows nothing of the bank (the engine's trainer) steps every scene a batch touched.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from ...io import atomic_path

# Adam's fused step runs on CPU from torch 2.4 (before that on CUDA only)
_FUSED = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4)

__all__ = ["SceneBank"]


class SceneBank:
    """``n`` grids of ``shape``, grid ``i`` in ``folder/scene_{i:05d}.pt``, each with its own Adam.

    Args:
        folder: where the scene files are (created on the first flush).
        n: number of scenes.
        shape: one grid's shape, e.g. ``(C, Z, Y, X)``.
        lr: the optimisers' learning rate.
        init_std: new grids are Gaussian noise of this deviation, seeded by the scene index.
        cache: scenes kept in memory (0: all); a scene pushed out is written first if it changed.
    """

    def __init__(self, folder: Path, n: int, shape: tuple[int, ...], *, lr: float, init_std: float = 0.1,
                 cache: int = 0) -> None:  # fmt: skip
        if n < 1:
            raise ValueError(f"SceneBank: need at least one scene, got {n}")
        self.folder, self.n, self.shape = Path(folder), n, tuple(shape)
        self.lr, self.init_std, self.cache = lr, init_std, cache
        self._live: OrderedDict[int, tuple[torch.Tensor, torch.optim.Optimizer]] = OrderedDict()
        self._dirty: set[int] = set()
        self.frozen = False
        """True: grids still get gradients but their optimisers do not step (scoring, or a frozen bank)."""

    def path(self, i: int) -> Path:
        return self.folder / f"scene_{i:05d}.pt"

    def _new(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(1_000_003 + i)
        return torch.randn(self.shape, generator=g) * self.init_std

    def _load(self, i: int) -> tuple[torch.Tensor, torch.optim.Optimizer]:
        p = self.path(i)
        state = torch.load(p, map_location="cpu", weights_only=True) if p.is_file() else None
        if state is not None and tuple(state["grid"].shape) != self.shape:
            raise ValueError(f"{p}: a grid of shape {tuple(state['grid'].shape)}, this model's is {self.shape}")
        grid = (state["grid"] if state is not None else self._new(i)).clone().requires_grad_(True)
        opt = torch.optim.Adam([grid], lr=self.lr, fused=_FUSED)  # fused: a large grid's step in one pass
        if state is not None:
            opt.load_state_dict(state["optimizer"])

        def step(param: torch.Tensor) -> None:
            if not self.frozen:
                opt.step()
                self._dirty.add(i)
            opt.zero_grad(set_to_none=True)

        grid.register_post_accumulate_grad_hook(step)
        return grid, opt

    def get(self, i: int) -> torch.Tensor:
        """Scene ``i``'s grid (a leaf tensor: its gradient steps its own optimiser during ``backward``)."""
        if not 0 <= i < self.n:
            raise IndexError(f"SceneBank: scene {i} out of range for {self.n} scenes")
        if i not in self._live:
            self._live[i] = self._load(i)
            while self.cache and len(self._live) > self.cache:
                j = next(iter(self._live))
                self._write(j)
                del self._live[j]
        self._live.move_to_end(i)
        return self._live[i][0]

    def optimizer(self, i: int) -> torch.optim.Optimizer:
        self.get(i)
        return self._live[i][1]

    def _write(self, i: int) -> None:
        if i not in self._dirty:
            return
        grid, opt = self._live[i]
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(i)) as tmp:
            torch.save({"grid": grid.detach().clone(), "optimizer": opt.state_dict()}, tmp)
        self._dirty.discard(i)

    def flush(self) -> None:
        """Write every scene that changed since it was last written."""
        for i in list(self._dirty):
            self._write(i)

    def drop(self) -> None:
        """Forget the scenes in memory (unwritten changes are lost; flush first to keep them)."""
        self._live.clear()
        self._dirty.clear()
