"""Run logs: JSON lines always, TensorBoard when the ``tb`` extra is installed."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

__all__ = ["RunLogger"]


class RunLogger:
    """Appends ``{"step", "time", **scalars}`` to ``<out_dir>/metrics.jsonl``; mirrors to TensorBoard."""

    def __init__(self, out_dir: Path, *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:  # lazily: tensorboard is optional and heavy
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(Path(out_dir) / "tb"))
                except ImportError:
                    self._tb = None

    def log(self, step: int, scalars: dict[str, Any], *, prefix: str = "") -> None:
        if not self.enabled:
            return
        clean = {}
        for k, v in scalars.items():
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, (int, float)):
                clean[prefix + k] = v if math.isfinite(v) else str(v)
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **clean}) + "\n")
        if self._tb is not None:
            for k, v in clean.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
