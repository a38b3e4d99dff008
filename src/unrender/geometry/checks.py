"""Input validation shared by every public entry of unrender.

Shapes are validated once, at the public entry, with an error that names the
argument and prints the expected and the actual shape (the style of kornia's
``core/check.py``). Trailing dimensions are given as a tuple of ints, ``None``
(any size) or a string (a named size that must agree between arguments).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Dim = int | str | None

__all__ = ["check_shape", "check_same_dtype", "check_finite", "broadcast_batch", "check_args"]


def _fmt(trailing: Sequence[Dim]) -> str:
    names = ["..."] + [("?" if d is None else str(d)) for d in trailing]
    return "(" + ", ".join(names) + ")"


def check_shape(
    x: object,
    name: str,
    trailing: Sequence[Dim],
    *,
    sizes: dict[str, int] | None = None,
    floating: bool = True,
    min_batch: int = 0,
    max_batch: int | None = None,
) -> tuple[int, ...]:
    """Check that ``x`` is a tensor whose last dims match ``trailing``.

    Args:
        x: the value to check.
        name: the argument's name, used in the error message.
        trailing: expected trailing dims: an int (exact), ``None`` (any) or a
            str (a named size; bound on first use in ``sizes``).
        sizes: named sizes shared between calls; updated in place.
        floating: require a floating-point dtype.
        min_batch: minimum number of leading (batch) dims.
        max_batch: maximum number of leading (batch) dims (``None``: any).

    Returns:
        The leading (batch) shape.

    Raises:
        ValueError: naming the expected and the actual shape or dtype.

    Example:
        >>> check_shape(torch.zeros(2, 3, 3), "K", (3, 3))
        (2,)
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {_fmt(trailing)}, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    n = len(trailing)
    shape = tuple(x.shape)
    ok = len(shape) >= n + min_batch and (max_batch is None or len(shape) <= n + max_batch)
    if ok:
        sizes = {} if sizes is None else sizes
        for want, got in zip(trailing, shape[len(shape) - n :], strict=True):
            if want is None:
                continue
            if isinstance(want, str):
                if sizes.setdefault(want, got) != got:
                    ok = False
            elif want != got:
                ok = False
    if not ok:
        want_s = _fmt(trailing)
        if min_batch or max_batch is not None:
            hi = "any" if max_batch is None else str(max_batch)
            want_s += f" with {min_batch}..{hi} leading dims"
        if sizes:
            want_s += " where " + ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"{name}: expected shape {want_s}, got {shape}")
    return shape[: len(shape) - n]


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless all tensors share one dtype and one device.

    Example:
        >>> check_same_dtype(a=torch.zeros(1), b=torch.zeros(2))
    """
    items = list(tensors.items())
    n0, t0 = items[0]
    for n, t in items[1:]:
        if t.dtype != t0.dtype:
            raise ValueError(f"{n}: expected dtype {t0.dtype} (the dtype of {n0}), got {t.dtype}")
        if t.device != t0.device:
            raise ValueError(f"{n}: expected device {t0.device} (the device of {n0}), got {t.device}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity.

    Example:
        >>> check_finite(torch.ones(3), "depth")
    """
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries of {x.numel()}")


def broadcast_batch(*shapes: tuple[int, ...], names: Sequence[str]) -> tuple[int, ...]:
    """Broadcast batch shapes, raising ``ValueError`` that names the arguments.

    Example:
        >>> broadcast_batch((2, 1), (3,), names=("a", "b"))
        (2, 3)
    """
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        desc = ", ".join(f"{n}{s}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"batch shapes do not broadcast: {desc}") from None


def check_args(*specs: tuple[str, object, Sequence[Dim]], sizes: dict[str, int] | None = None) -> tuple[int, ...]:
    """Check several arguments at once: each one's trailing shape (see :func:`check_shape`), one
    dtype and device for all, and batch shapes that broadcast. Returns the broadcast batch shape.

    Example:
        >>> check_args(("K", torch.zeros(2, 3, 3), (3, 3)), ("points", torch.zeros(5, 3), (None, 3)))
        (2,)
    """
    sizes = {} if sizes is None else sizes
    batches = [check_shape(t, n, trailing, sizes=sizes) for n, t, trailing in specs]
    check_same_dtype(**{n: t for n, t, _ in specs})
    return broadcast_batch(*batches, names=[n for n, _, _ in specs])
