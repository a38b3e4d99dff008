"""Analytic primitives in their local frame: ray intersection, surface normal, inside test.

Every primitive is described by ``size``, its full extent ``(sx, sy, sz)`` along
its local axes (so its local bounding box is ``[-size/2, size/2]``):

* ``box``: the box itself;
* ``ellipsoid``: radii ``size / 2`` (a sphere when all equal);
* ``cylinder``: axis along local y, radius ``sx / 2``, height ``sy``;
* ``capsule``: axis along local y, radius ``sx / 2``, total height ``sy``
  (a cylinder of height ``sy - sx`` capped by two half-spheres);
* ``plane``: the plane ``y = 0`` facing up (-y, gravity is +y), bounded to
  ``|x| <= sx/2, |z| <= sz/2``, or unbounded where ``sx = sz = 0``. As a solid
  (for occupancy) it is the half-space below its surface (``y >= 0``) under
  its footprint.

Rays are given in the local frame as origins ``(P, R, 3)`` and unit directions
``(P, R, 3)`` (rigid transforms keep lengths, so ``t`` is the world distance).
Intersections return ``t (P, R)`` with ``inf`` for a miss; only hits with
``t > T_MIN`` count.
"""

from __future__ import annotations

import math

import torch

__all__ = ["KINDS", "T_MIN", "intersect", "normal", "inside"]

KINDS = ("box", "ellipsoid", "cylinder", "capsule", "plane")
T_MIN = 1e-4
_INF = math.inf


def _safe(d: torch.Tensor) -> torch.Tensor:
    """Division-safe direction components (tiny values keep their sign)."""
    tiny = torch.full_like(d, 1e-12)
    return torch.where(d.abs() < 1e-12, torch.where(d < 0, -tiny, tiny), d)


def _first(*ts: torch.Tensor) -> torch.Tensor:
    """Smallest candidate above ``T_MIN`` (candidates are ``inf`` where invalid)."""
    out = torch.full_like(ts[0], _INF)
    for t in ts:
        out = torch.where((t > T_MIN) & (t < out), t, out)
    return out


def _quadratic_roots(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roots of ``a t^2 + 2 b t + c`` (``inf`` where none); ``a > 0``."""
    disc = b * b - a * c
    ok = disc >= 0
    s = disc.clamp(min=0).sqrt()
    a = a.clamp(min=1e-20)
    inf = torch.full_like(b, _INF)
    # numerically stable pair: q = -(b + sign(b) s)
    q = -(b + torch.where(b >= 0, s, -s))
    q = torch.where(q.abs() < 1e-30, torch.full_like(q, -1e-30), q)
    r1, r2 = q / a, c / q
    lo, hi = torch.minimum(r1, r2), torch.maximum(r1, r2)
    return torch.where(ok, lo, inf), torch.where(ok, hi, inf)


def _box(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    h = size[:, None, :] / 2
    inv = 1 / _safe(d)
    t1, t2 = (-h - o) * inv, (h - o) * inv
    tnear = torch.minimum(t1, t2).amax(-1)
    tfar = torch.maximum(t1, t2).amin(-1)
    hit = tnear <= tfar
    inf = torch.full_like(tnear, _INF)
    return torch.where(hit, _first(tnear, tfar), inf)


def _ellipsoid(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    r = size[:, None, :] / 2
    o2, d2 = o / r, d / r
    lo, hi = _quadratic_roots((d2 * d2).sum(-1), (o2 * d2).sum(-1), (o2 * o2).sum(-1) - 1)
    return _first(lo, hi)


def _disc_hit(o, d, t, r, y):
    """Candidate ``t`` where the ray meets the plane ``y`` inside a disc of radius ``r``."""
    p = o + t[..., None] * d
    ok = p[..., 0] ** 2 + p[..., 2] ** 2 <= r * r
    return torch.where(ok, t, torch.full_like(t, _INF))


def _side(o, d, r, half):
    """Hits of the infinite cylinder x^2 + z^2 = r^2 restricted to |y| <= half."""
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    c = o[..., 0] ** 2 + o[..., 2] ** 2 - r * r
    out = []
    for t in _quadratic_roots(a, b, c):
        y = o[..., 1] + torch.where(torch.isfinite(t), t, torch.zeros_like(t)) * d[..., 1]
        out.append(torch.where(torch.isfinite(t) & (y.abs() <= half), t, torch.full_like(t, _INF)))
    return out


def _cylinder(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    r, half = size[:, None, 0] / 2, size[:, None, 1] / 2
    s1, s2 = _side(o, d, r, half)
    dy = _safe(d[..., 1])
    c1 = _disc_hit(o, d, (-half - o[..., 1]) / dy, r, -half)
    c2 = _disc_hit(o, d, (half - o[..., 1]) / dy, r, half)
    return _first(s1, s2, c1, c2)


def _capsule(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    r = size[:, None, 0] / 2
    a = (size[:, None, 1] / 2 - r).clamp(min=0)
    s1, s2 = _side(o, d, r, a)
    cands = [s1, s2]
    for sign in (-1.0, 1.0):
        oc = o.clone()
        oc[..., 1] = o[..., 1] - sign * a
        cands += list(_quadratic_roots((d * d).sum(-1), (oc * d).sum(-1), (oc * oc).sum(-1) - r * r))
    return _first(*cands)


def _plane(o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    t = -o[..., 1] / _safe(d[..., 1])
    p = o + torch.where(torch.isfinite(t), t, torch.zeros_like(t))[..., None] * d
    sx, sz = size[:, None, 0], size[:, None, 2]
    bounded = (sx > 0) | (sz > 0)
    inside = ((p[..., 0].abs() <= sx / 2) & (p[..., 2].abs() <= sz / 2)) | ~bounded
    return torch.where(inside & (t > T_MIN), t, torch.full_like(t, _INF))


_INTERSECT = {"box": _box, "ellipsoid": _ellipsoid, "cylinder": _cylinder, "capsule": _capsule, "plane": _plane}


def intersect(kind: str, o: torch.Tensor, d: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Distance ``(P, R)`` along local rays ``o, d (P, R, 3)`` to primitives of one kind with ``size (P, 3)``."""
    return _INTERSECT[kind](o, d, size)


def normal(kind: str, p: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Outward unit normal ``(R, 3)`` at local surface points ``p (R, 3)`` of primitives ``size (R, 3)``."""
    if kind == "box":
        rel = p / (size / 2)
        axis = rel.abs().argmax(-1, keepdim=True)
        n = torch.zeros_like(p).scatter_(-1, axis, rel.gather(-1, axis).sign())
    elif kind == "ellipsoid":
        n = p / (size / 2) ** 2
    elif kind == "cylinder":
        r, half = size[:, :1] / 2, size[:, 1:2] / 2
        radial = (p[:, 0:1] ** 2 + p[:, 2:3] ** 2).sqrt()
        cap = (half - p[:, 1:2].abs()) < (r - radial)  # nearer a cap than the side
        side = p * torch.tensor([1.0, 0.0, 1.0], dtype=p.dtype, device=p.device)
        capn = torch.zeros_like(p)
        capn[:, 1] = p[:, 1].sign()
        n = torch.where(cap, capn, side)
    elif kind == "capsule":
        a = (size[:, 1] / 2 - size[:, 0] / 2).clamp(min=0)
        q = torch.zeros_like(p)
        q[:, 1] = torch.maximum(torch.minimum(p[:, 1], a), -a)
        n = p - q
    elif kind == "plane":
        n = torch.zeros_like(p)
        n[:, 1] = -1.0
    else:
        raise ValueError(f"unknown primitive kind {kind!r}; expected one of {KINDS}")
    return n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def inside(kind: str, p: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Bool ``(P, Q)``: local points ``p (P, Q, 3)`` inside primitives ``size (P, 3)`` (surface included)."""
    s = size[:, None, :]
    if kind == "box":
        return (p.abs() <= s / 2).all(-1)
    if kind == "ellipsoid":
        return ((p / (s / 2)) ** 2).sum(-1) <= 1
    if kind == "cylinder":
        r = s[..., 0] / 2
        return (p[..., 0] ** 2 + p[..., 2] ** 2 <= r * r) & (p[..., 1].abs() <= s[..., 1] / 2)
    if kind == "capsule":
        r = s[..., 0] / 2
        a = (s[..., 1] / 2 - r).clamp(min=0)
        y = torch.maximum(torch.minimum(p[..., 1], a), -a)
        return p[..., 0] ** 2 + (p[..., 1] - y) ** 2 + p[..., 2] ** 2 <= r * r
    if kind == "plane":
        bounded = (s[..., 0] > 0) | (s[..., 2] > 0)
        foot = (p[..., 0].abs() <= s[..., 0] / 2) & (p[..., 2].abs() <= s[..., 2] / 2)
        return (p[..., 1] >= 0) & (foot | ~bounded)
    raise ValueError(f"unknown primitive kind {kind!r}; expected one of {KINDS}")
