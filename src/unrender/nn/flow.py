"""Parameter-free 3D flow: correlate a voxel's feature with a neighbourhood of the next volume's features
and take the soft-argmax of the correlation as its displacement.

There is no flow network: what is learned is the features (trained so that the soft-argmax of their
correlation lands on the true displacement). Displacements are in voxels, ordered ``(x, y, z)`` like
``grid_sample``'s last dim; volumes are ``(..., C, Z, Y, X)`` (see :mod:`unrender.geometry.grids`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..geometry.checks import check_args

__all__ = ["Radius", "radii", "neighbourhood_offsets", "local_correlation", "soft_argmax_flow", "piece_flow"]

Radius = int | tuple[int, int, int]
"""A neighbourhood's reach in voxels: one for every axis, or ``(rx, ry, rz)`` (a street's motion is mostly
horizontal: a small ``ry`` saves most of the work)."""


def radii(radius: Radius) -> tuple[int, int, int]:
    """``(rx, ry, rz)`` of a :data:`Radius`, checked.

    Example:
        >>> radii(2), radii((4, 1, 4))
        ((2, 2, 2), (4, 1, 4))
    """
    r = (radius,) * 3 if isinstance(radius, int) else tuple(radius)
    if len(r) != 3 or not all(isinstance(v, int) and v >= 0 for v in r):
        raise ValueError(f"radius: expected an int >= 0 or three of them (x, y, z), got {radius!r}")
    return r  # type: ignore[return-value]


def neighbourhood_offsets(radius: Radius, *, device: torch.device | str | None = None) -> torch.Tensor:
    """The ``K = (2 rx + 1)(2 ry + 1)(2 rz + 1)`` integer offsets ``(dx, dy, dz)`` of a box neighbourhood,
    ``x`` fastest.

    Example:
        >>> off = neighbourhood_offsets(1)
        >>> off.shape, off[0].tolist(), off[13].tolist()
        (torch.Size([27, 3]), [-1, -1, -1], [0, 0, 0])
        >>> neighbourhood_offsets((2, 0, 1)).shape
        torch.Size([15, 3])
    """
    rx, ry, rz = radii(radius)
    dz, dy, dx = torch.meshgrid(*(torch.arange(-r, r + 1, device=device) for r in (rz, ry, rx)), indexing="ij")
    return torch.stack([dx, dy, dz], -1).reshape(-1, 3)


def local_correlation(
    feat0: torch.Tensor, feat1: torch.Tensor, radius: Radius, *, index: torch.Tensor | None = None,
    chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Scaled dot products ``<f0(v), f1(v + o)> / sqrt(C)`` of each chosen voxel ``v`` of ``feat0`` with the
    voxels ``v + o`` of ``feat1``, for every offset ``o`` of :func:`neighbourhood_offsets`.

    Args:
        feat0, feat1: ``(..., C, Z, Y, X)`` feature volumes on one grid.
        radius: neighbourhood reach in voxels (:data:`Radius`).
        index: ``(..., N)`` flat voxel indices (``(z * Y + y) * X + x``) of the voxels to correlate;
            ``None``: every voxel, ``N = Z Y X``.
        chunk: voxels correlated at a time (bounds the ``C x K x chunk`` gathered features).

    Returns:
        ``scores (..., K, N)`` and ``valid (..., K, N)`` (False where ``v + o`` leaves the grid; its score
        is 0 there).

    Example:
        >>> f = torch.ones(1, 4, 3, 3, 3)
        >>> s, ok = local_correlation(f, f, 1)
        >>> s.shape, bool(ok[0, 13].all()), int(ok[0, :, 0].sum())
        (torch.Size([1, 27, 27]), True, 8)
    """
    batch = check_args(("feat0", feat0, ("C", "Z", "Y", "X")), ("feat1", feat1, ("C", "Z", "Y", "X")))
    C, Z, Y, X = feat0.shape[-4:]
    f0 = feat0.expand(*batch, C, Z, Y, X).reshape(-1, C, Z * Y * X)
    f1 = feat1.expand(*batch, C, Z, Y, X).reshape(-1, C, Z * Y * X)
    B = f0.shape[0]
    if index is None:
        idx = torch.arange(Z * Y * X, device=feat0.device).expand(B, -1)
    else:
        if index.dtype not in (torch.int32, torch.int64) or index.shape[:-1] != batch:
            raise ValueError(f"index: expected integer indices of shape (*{tuple(batch)}, N), got "
                             f"{tuple(index.shape)} {index.dtype}")  # fmt: skip
        if index.numel() and (index.min() < 0 or index.max() >= Z * Y * X):
            raise ValueError(f"index: voxel indices must lie in [0, {Z * Y * X}), got {index.min()}..{index.max()}")
        idx = index.reshape(B, -1).long()
    off = neighbourhood_offsets(radius, device=feat0.device)
    K = off.shape[0]
    if index is None:  # every voxel: one shifted slice of the zero-padded volume per offset (18x the gather)
        return _dense_correlation(f0.reshape(B, C, Z, Y, X), f1.reshape(B, C, Z, Y, X), radius, off, batch)
    scores, valid = [], []
    for start in range(0, idx.shape[1], chunk):
        i = idx[:, start : start + chunk]  # (B, n)
        n = i.shape[1]
        z, y, x = i // (Y * X), (i // X) % Y, i % X
        nx, ny, nz = (c[:, None] + off[None, :, j, None] for j, c in enumerate((x, y, z)))  # (B, K, n)
        ok = (nx >= 0) & (nx < X) & (ny >= 0) & (ny < Y) & (nz >= 0) & (nz < Z)
        flat = (nz.clamp(0, Z - 1) * Y + ny.clamp(0, Y - 1)) * X + nx.clamp(0, X - 1)
        g1 = f1.gather(2, flat.reshape(B, 1, K * n).expand(-1, C, -1)).reshape(B, C, K, n)
        g0 = f0.gather(2, i[:, None].expand(-1, C, -1))  # (B, C, n)
        s = torch.einsum("bcn,bckn->bkn", g0, g1) / math.sqrt(C)
        scores.append(s * ok)
        valid.append(ok)
    N = idx.shape[1]
    return torch.cat(scores, -1).reshape(*batch, K, N), torch.cat(valid, -1).reshape(*batch, K, N)


def _dense_correlation(
    f0: torch.Tensor, f1: torch.Tensor, radius: Radius, off: torch.Tensor, batch: torch.Size
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`local_correlation` at every voxel of ``(B, C, Z, Y, X)`` volumes."""
    B, C, Z, Y, X = f0.shape
    rx, ry, rz = radii(radius)
    pad = F.pad(f1, (rx, rx, ry, ry, rz, rz))
    scores = torch.stack([
        (f0 * pad[:, :, rz + dz : rz + dz + Z, ry + dy : ry + dy + Y, rx + dx : rx + dx + X]).sum(1)
        for dx, dy, dz in off.tolist()], 1) / math.sqrt(C)  # fmt: skip
    coords = [torch.arange(n, device=f0.device) for n in (X, Y, Z)]
    inside = [(c[None, :] + off[:, j, None] >= 0) & (c[None, :] + off[:, j, None] < n)
              for j, (c, n) in enumerate(zip(coords, (X, Y, Z), strict=True))]  # fmt: skip  # (K, n) per axis
    ok = inside[2][:, :, None, None] & inside[1][:, None, :, None] & inside[0][:, None, None, :]  # (K, Z, Y, X)
    K = off.shape[0]
    return scores.reshape(*batch, K, Z * Y * X), ok.reshape(K, -1).expand(*batch, K, Z * Y * X)


def _expected_offset(logits: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """The softmax over the offsets (dim -2 of ``logits (..., K, N)``) weighting the offsets ``(K, 3)``:
    ``(..., 3, N)``."""
    return torch.einsum("...kn,kd->...dn", logits.softmax(-2), off.to(logits.dtype))


def soft_argmax_flow(
    feat0: torch.Tensor,
    feat1: torch.Tensor,
    radius: Radius,
    *,
    index: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Displacement of each voxel from ``feat0`` to ``feat1``: the softmax-weighted mean of the neighbourhood
    offsets, weighted by :func:`local_correlation` over ``temperature`` (offsets that leave the grid get no
    weight). Differentiable in both volumes; no parameters.

    Args:
        feat0, feat1: ``(..., C, Z, Y, X)``.
        radius: the largest displacement it can return, in voxels (:data:`Radius`).
        index: ``(..., N)`` flat voxel indices, or ``None`` for every voxel.
        temperature: divides the scores; small values approach the hard argmax.

    Returns:
        ``(..., 3, N)`` displacements ``(dx, dy, dz)`` in voxels for ``index``; ``(..., 3, Z, Y, X)`` without.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> f0 = torch.nn.functional.normalize(torch.randn(1, 8, 4, 4, 4), dim=1)  # unit features
        >>> f1 = torch.roll(f0, 1, dims=-1)  # everything moves one voxel along +x
        >>> flow = soft_argmax_flow(f0, f1, 1, temperature=0.01)
        >>> (flow[0, :, 1, 1, 1].round() + 0.0).tolist()  # + 0.0: no -0.0
        [1.0, 0.0, 0.0]
    """
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    scores, valid = local_correlation(feat0, feat1, radius, index=index)
    logits = (scores / temperature).masked_fill(~valid, float("-inf"))
    flow = _expected_offset(logits, neighbourhood_offsets(radius, device=feat0.device))
    if index is None:
        flow = flow.reshape(*flow.shape[:-1], *feat0.shape[-3:])
    return flow


def piece_flow(
    feat0: torch.Tensor,
    feat1: torch.Tensor,
    labels: torch.Tensor,
    radius: Radius,
    *,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    before: torch.Tensor | None = None,
) -> torch.Tensor:
    """One displacement per piece: the soft-argmax of the correlation summed over each labelled piece's voxels.

    A voxel on the side of a moving car matches its neighbours along the side as well as itself (the aperture
    problem), and a surface seen at one frame may be hidden at the next; a rigid piece moves as one, so the
    scores of all its voxels are averaged per offset (over the voxels whose ``v + o`` lies in the grid) before
    the soft-argmax, and the voxels that do match decide for the rest. No parameters, like
    :func:`soft_argmax_flow`.

    Args:
        feat0, feat1: ``(C, Z, Y, X)``.
        labels: ``(Z, Y, X)`` integer piece labels, 0 outside every piece (e.g.
            :func:`~unrender.geometry.connected_components`).
        radius: reach in voxels (:data:`Radius`).
        mask: ``(Z, Y, X)`` bool: only these voxels' scores count (e.g. the surfaces the frame saw); a piece
            with none of them gets no motion.
        temperature: divides the averaged scores.
        before: ``(C, Z, Y, X)``, the volume one step before ``feat0``: a piece moving at constant velocity
            was at ``v - o`` there, so its correlation with ``before`` at ``-o`` joins the average (twice the
            evidence; the piece's motion is taken as the same over both steps).

    Returns:
        ``(3, Z, Y, X)`` displacements ``(dx, dy, dz)`` in voxels: each piece's at all of its voxels, 0 outside.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> f0 = torch.nn.functional.normalize(torch.randn(8, 1, 1, 9), dim=0)
        >>> f1 = torch.roll(f0, 2, dims=-1)  # everything moves two voxels along +x
        >>> labels = torch.tensor([0, 0, 1, 1, 1, 0, 0, 0, 0]).reshape(1, 1, 9)
        >>> (piece_flow(f0, f1, labels, (3, 0, 0), temperature=0.01)[0, 0, 0].round() + 0.0).tolist()
        [0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    """
    if check_args(("feat0", feat0, ("C", "Z", "Y", "X")), ("feat1", feat1, ("C", "Z", "Y", "X"))):
        raise ValueError(
            f"feat0, feat1: expected (C, Z, Y, X) volumes, got {tuple(feat0.shape)} and {tuple(feat1.shape)}"
        )
    if labels.shape != feat0.shape[1:] or labels.dtype == torch.bool or labels.is_floating_point():
        raise ValueError(f"labels: expected integer labels of shape {tuple(feat0.shape[1:])}, got "
                         f"{tuple(labels.shape)} {labels.dtype}")  # fmt: skip
    if mask is not None and (mask.shape != labels.shape or mask.dtype != torch.bool):
        raise ValueError(f"mask: expected bool of shape {tuple(labels.shape)}, got {tuple(mask.shape)} {mask.dtype}")
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    lab = labels.reshape(-1).long()
    chosen = lab > 0 if mask is None else (lab > 0) & mask.reshape(-1)
    idx = chosen.nonzero()[:, 0]
    n = int(lab.max()) if lab.numel() else 0
    moves = torch.zeros(3, n + 1, dtype=feat0.dtype, device=feat0.device)  # label 0 (no piece) stays put
    if len(idx) == 0:
        return moves[:, lab].reshape(3, *labels.shape)
    off = neighbourhood_offsets(radius, device=feat0.device)
    scores, valid = local_correlation(feat0, feat1, radius, index=idx)  # (K, N)
    if before is not None:
        if before.shape != feat0.shape:
            raise ValueError(f"before: expected the shape of feat0 {tuple(feat0.shape)}, got {tuple(before.shape)}")
        back, ok = local_correlation(feat0, before, radius, index=idx)
        # the offsets are symmetric and ordered, so reversing them negates each: row k of the flip is at -o_k
        scores, valid = torch.cat([scores, back.flip(0)], 1), torch.cat([valid, ok.flip(0)], 1)
        idx = idx.repeat(2)
    K, piece = off.shape[0], lab[idx]
    sums = torch.zeros(K, n + 1, dtype=scores.dtype, device=scores.device).index_add_(1, piece, scores * valid)
    counts = torch.zeros(K, n + 1, dtype=scores.dtype, device=scores.device).index_add_(
        1, piece, valid.to(scores.dtype)
    )
    logits = (sums / counts.clamp(min=1) / temperature).masked_fill(counts == 0, float("-inf"))
    has = counts.sum(0) > 0  # pieces with a voxel that counts (never label 0)
    moves[:, has] = _expected_offset(logits[:, has], off).to(feat0.dtype)
    return moves[:, lab].reshape(3, *labels.shape)
