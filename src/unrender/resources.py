"""Memory estimates checked before large allocations: a clear error up front instead of a machine
that swaps or an out-of-memory kill half-way. Imports nothing else of unrender."""

from __future__ import annotations

import os

__all__ = ["ResourceError", "available_memory", "check_memory", "format_bytes"]


class ResourceError(ValueError):
    """The work asked for needs more memory than this machine has available."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text.

    Example:
        >>> format_bytes(3 * 2**30)
        '3.0 GiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(nbytes: float, what: str, *, hint: str = "") -> None:
    """Raise :class:`ResourceError` when ``nbytes`` exceeds the memory available now.

    Example:
        >>> check_memory(1024, "a tiny buffer")
        >>> check_memory(2**50, "an impossible buffer")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        unrender.resources.ResourceError: an impossible buffer needs about 1024.0 TiB ...
    """
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise ResourceError(
            f"{what} needs about {format_bytes(nbytes)} of memory, this machine has {format_bytes(avail)} available"
            + (f"; {hint}" if hint else "")
        )
