"""The one interface a method implements to plug into the trainer, the CLI and the registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = ["Method"]


@dataclass(frozen=True)
class Method:
    """A registry entry: name -> config, model, losses, evaluation (nerfstudio's method split).

    The config is a dataclass with a ``train: TrainConfig`` field; presets are
    named factories of configs (``default_preset`` is used when none is given).

    * ``build_model(cfg) -> nn.Module`` returns the model; it returns outputs, never losses.
    * ``build_dataset(cfg, split) -> Dataset`` for ``split`` in ``{"train", "val"}``;
      items must be deterministic functions of the index (exact resume relies on it).
    * ``loss(model, batch, cfg) -> dict`` of scalar tensors including ``"loss"``
      (what is optimised); the rest is logged. Make ``"loss"`` a mean over the
      batch's samples: DDP averages the ranks' gradients, so only then does a
      2-process run equal a 1-process run with the same global batch.
    * ``evaluate(model, cfg, device) -> dict`` of floats (and, optionally,
      ``"images"``: a dict name -> HxWx3 uint8 array for the report).
    """

    name: str
    description: str
    config: type
    presets: Mapping[str, Callable[[], Any]]
    default_preset: str
    build_model: Callable[[Any], nn.Module]
    build_dataset: Callable[[Any, str], Dataset]
    loss: Callable[[nn.Module, Any, Any], dict[str, torch.Tensor]]
    evaluate: Callable[[nn.Module, Any, torch.device], dict[str, Any]]
    collate: Callable[[list[Any]], Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def make_config(self, preset: str | None = None) -> Any:
        name = preset or self.default_preset
        if name not in self.presets:
            raise ValueError(f"method {self.name!r} has no preset {name!r}; choose from {sorted(self.presets)}")
        return self.presets[name]()
