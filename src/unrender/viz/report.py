"""A self-contained HTML report: metric tables and pictures."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .images import save_png

__all__ = ["write_report"]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:60] or "image"


def write_report(
    out_dir: str | Path,
    title: str,
    sections: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write ``<out_dir>/report.html`` with, per section, a table of scalars and its images.

    ``sections`` maps a heading to a dict of values: numbers and strings go in
    the table; ``"images"`` maps a caption to an ``(H, W, 3)`` uint8 array, saved
    as a PNG next to the report.
    """
    out_dir = Path(out_dir)
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 10px;"
             "text-align:left}img{image-rendering:pixelated;max-width:100%}</style>",
             f"<h1>{html.escape(title)}</h1>"]  # fmt: skip
    for heading, values in sections.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><table>")
        for k, v in values.items():
            if k == "images":
                continue
            shown = f"{v:.4g}" if isinstance(v, float) else str(v)
            parts.append(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(shown)}</td></tr>")
        parts.append("</table>")
        for caption, im in dict(values.get("images", {})).items():
            name = f"{_slug(heading)}__{_slug(caption)}.png"
            save_png(out_dir / name, np.asarray(im))
            parts.append(f"<figure><img src='{name}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    path = out_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
