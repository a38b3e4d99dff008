"""Run logs: JSON lines always, TensorBoard when the ``tb`` extra is installed."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

__all__ = ["RunLogger"]


class RunLogger:
    """Appends ``{"step", "time", **scalars}`` to ``<out_dir>/metrics.jsonl``; mirrors to TensorBoard.

    ``start_step``: the step training (re)starts from. Lines of later steps (logged by a run that was
    killed after its last checkpoint) are dropped, so a resumed run's log holds each step once.
    """

    def __init__(self, out_dir: Path, *, enabled: bool = True, tensorboard: bool = True, start_step: int = 0) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._drop_after(start_step)
            if tensorboard:
                try:  # lazily: tensorboard is optional and heavy
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(Path(out_dir) / "tb"))
                except ImportError:
                    self._tb = None

    def _drop_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines()

        def keep(line: str) -> bool:
            try:
                return int(json.loads(line)["step"]) <= step
            except (ValueError, KeyError, TypeError):  # a line cut by a kill mid-write
                return False

        kept = [ln for ln in lines if keep(ln)]
        if len(kept) != len(lines):
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))

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
