"""3D human pose errors: MPJPE (Protocol 1), P-MPJPE (Protocol 2) and N-MPJPE."""

from __future__ import annotations

import torch

from ..geometry.checks import check_shape

__all__ = ["mpjpe", "p_mpjpe", "n_mpjpe", "procrustes_align"]


def _pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    sizes: dict[str, int] = {}
    check_shape(pred, "pred", ("J", 3), sizes=sizes)
    check_shape(gt, "gt", ("J", 3), sizes=sizes)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have one shape (..., J, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}")


def _center(x: torch.Tensor, root: int | None) -> torch.Tensor:
    return x if root is None else x - x[..., root : root + 1, :]


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, *, root: int | None = 0) -> torch.Tensor:
    """Mean per-joint position error, after subtracting the ``root`` joint (Protocol 1).

    Args:
        pred: ``(..., J, 3)``.
        gt: ``(..., J, 3)``.
        root: root joint index (0 = pelvis in Human3.6M order), or ``None``.

    Returns:
        ``(...)`` in the input's units.

    Example:
        >>> gt = torch.zeros(2, 3)
        >>> mpjpe(gt + torch.tensor([[0.0, 0, 0], [3, 4, 0]]), gt)
        tensor(2.5000)
    """
    _pair(pred, gt)
    return (_center(pred, root) - _center(gt, root)).norm(dim=-1).mean(-1)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``pred`` moved by the similarity transform (scale, rotation, translation) that best fits ``gt``.

    Reflections are excluded. Degenerate ``pred`` (all joints equal) is only translated.

    Args:
        pred: ``(..., J, 3)``.
        gt: ``(..., J, 3)``.

    Returns:
        ``(..., J, 3)``.

    Example:
        >>> gt = torch.randn(17, 3)
        >>> torch.allclose(procrustes_align(2 * gt + 1, gt), gt, atol=1e-5)
        True
    """
    _pair(pred, gt)
    mp, mg = pred.mean(-2, keepdim=True), gt.mean(-2, keepdim=True)
    X, Y = pred - mp, gt - mg
    M = X.transpose(-1, -2) @ Y  # sum_i x_i y_i^T
    U, S, Vh = torch.linalg.svd(M)
    V = Vh.transpose(-1, -2)
    d = torch.sign(torch.linalg.det(V @ U.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = V @ (D[..., :, None] * U.transpose(-1, -2))  # R x_i ~ y_i
    nx = (X * X).sum((-1, -2))
    scale = (S * D).sum(-1) / nx.clamp(min=1e-12)
    scale = torch.where(nx > 1e-12, scale, torch.zeros_like(scale))
    return scale[..., None, None] * (X @ R.transpose(-1, -2)) + mg


def p_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after Procrustes (similarity) alignment of ``pred`` to ``gt`` (Protocol 2).

    Example:
        >>> gt = torch.randn(17, 3)
        >>> p_mpjpe(3 * gt - 2, gt) < 1e-5
        tensor(True)
    """
    return mpjpe(procrustes_align(pred, gt), gt, root=None)


def n_mpjpe(pred: torch.Tensor, gt: torch.Tensor, *, root: int | None = 0) -> torch.Tensor:
    """MPJPE after root-centring and the least-squares scale of ``pred`` to ``gt``.

    Example:
        >>> gt = torch.randn(17, 3)
        >>> n_mpjpe(0.5 * gt, gt) < 1e-5
        tensor(True)
    """
    _pair(pred, gt)
    p, g = _center(pred, root), _center(gt, root)
    s = (p * g).sum((-1, -2)) / (p * p).sum((-1, -2)).clamp(min=1e-12)
    return mpjpe(s[..., None, None] * p, g, root=None)
