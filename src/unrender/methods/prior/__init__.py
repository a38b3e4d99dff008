"""``code-prior``: an autoregressive prior (a gated 3D PixelCNN) over the code grids of a quantised mapping
model (``unrender dump mapping``), for scoring, generating and inpainting scenes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ...data.codes import CodeGrids
from ...nn import GatedPixelCNN3D
from ..base import Method
from .config import PRESETS, PriorConfig
from .evaluate import evaluate_prior, prior_loss, prior_markdown_table


class OrderedGrids(Dataset):
    """The dump's grids, each once per scan order: item ``o * N + i`` is grid ``i`` in order ``o`` (a fixed
    index, so resumed and distributed runs see the same data)."""

    def __init__(self, grids: CodeGrids, orders: int) -> None:
        self.grids, self.orders = grids, orders

    def __len__(self) -> int:
        return len(self.grids) * self.orders

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"OrderedGrids: index {i} out of range for {len(self)} items")
        o, j = divmod(i, len(self.grids))
        return {"codes": self.grids.codes[j], "order": o}


def build_model(cfg: PriorConfig) -> nn.Module:
    m = cfg.model
    return GatedPixelCNN3D(m.num_codes, channels=m.channels, layers=m.layers, orders=m.orders)


def read_grids(cfg: PriorConfig, split: str) -> CodeGrids:
    """The dump's ``train`` or ``val`` grids, checked against the model's codebook size."""
    grids = CodeGrids(cfg.data.codes / split)
    if grids.num_codes != cfg.model.num_codes:
        raise ValueError(f"code prior: {grids.folder} holds codes of a {grids.num_codes}-entry codebook; set "
                         f"--model.num-codes {grids.num_codes}")  # fmt: skip
    return grids


def build_dataset(cfg: PriorConfig, split: str) -> Dataset:
    grids = read_grids(cfg, "train" if split == "train" else "val")
    return OrderedGrids(grids, cfg.model.orders if split == "train" else 1)


def loss(model: nn.Module, batch: dict[str, torch.Tensor], cfg: PriorConfig) -> dict[str, torch.Tensor]:
    return prior_loss(model, batch)


METHOD = Method(
    name="code-prior",
    description="Autoregressive prior over a quantised mapping model's scene codes (unrender dump mapping): "
    "held-out bits per code, inpainting, generation.",
    config=PriorConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_model,
    build_dataset=build_dataset,
    loss=loss,
    evaluate=evaluate_prior,
    extra={"markdown_table": prior_markdown_table},
)
