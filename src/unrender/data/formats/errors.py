"""The error types of every reader: one to catch for any bad input file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FormatError", "MissingFileError", "require_file"]


class FormatError(ValueError):
    """A file that exists but is malformed, truncated or of an unsupported variant."""


class MissingFileError(FormatError, FileNotFoundError):
    """A file a reader needs is not there."""


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path`` if it is a file, else :class:`MissingFileError` naming ``what``."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{what} not found: {p}")
    return p
