"""A vectorised analytic ray-caster: RGB, z-depth, normals, instance and semantic ids.

Rays of every pixel of every view are intersected with every primitive of a
kind at once (a loop over the five primitive kinds and over ray chunks, never
over pixels or primitives). Shading is Lambertian with ambient light and
optional hard shadows from one directional light; textures are procedural
(checker, stripes, value noise) in each primitive's local frame, so they stick
to moving objects. Rendering is deterministic: no randomness is involved.
"""

from __future__ import annotations

import torch

from ..geometry import camera_rays, check_args
from .primitives import KINDS, intersect, normal
from .scene import TEXTURES, FlatScene, Scene

__all__ = ["render", "cast", "shade_texture", "check_antialias"]


def _local(flat: FlatScene, sel: torch.Tensor, o: torch.Tensor, d: torch.Tensor):
    T = flat.part_from_world[sel]  # (P, 4, 4)
    R, t = T[:, :3, :3], T[:, :3, 3]
    o_l = torch.einsum("pij,rj->pri", R, o) + t[:, None, :]
    d_l = torch.einsum("pij,rj->pri", R, d)
    return o_l, d_l


def cast(flat: FlatScene, o: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest hit of world rays ``o, d (R, 3)``: distance ``(R,)`` (``inf`` on a miss) and the
    primitive's index ``(R,)`` (-1 on a miss)."""
    best = torch.full(o.shape[:1], float("inf"), dtype=o.dtype, device=o.device)
    idx = torch.full(o.shape[:1], -1, dtype=torch.long, device=o.device)
    for k, kind in enumerate(KINDS):
        sel = (flat.kind == k).nonzero()[:, 0]
        if sel.numel() == 0:
            continue
        o_l, d_l = _local(flat, sel, o, d)
        tk = intersect(kind, o_l, d_l, flat.size[sel])  # (P, R)
        tmin, arg = tk.min(0)
        better = tmin < best
        best = torch.where(better, tmin, best)
        idx = torch.where(better, sel[arg], idx)
    return best, idx


def _hash01(ix: torch.Tensor, iy: torch.Tensor, iz: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """A deterministic integer hash of lattice points mapped to [0, 1]."""
    h = ix * 73856093 ^ iy * 19349663 ^ iz * 83492791 ^ seed * 2654435761
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFF).to(torch.float32) / 65535.0


def shade_texture(flat: FlatScene, idx: torch.Tensor, p_local: torch.Tensor) -> torch.Tensor:
    """Albedo ``(R, 3)`` of primitives ``idx (R,)`` at local points ``p_local (R, 3)``."""
    c1, c2 = flat.color[idx], flat.color2[idx]
    tex, s = flat.texture[idx], flat.tex_scale[idx][:, None]
    q = p_local / s
    cell = torch.floor(q).long()
    checker = (cell.sum(-1) % 2 == 1)[:, None]
    stripes = (cell[:, 0] % 2 == 1)[:, None]
    # value noise: trilinear interpolation of hashed lattice values
    f = q - torch.floor(q)
    w = f * f * (3 - 2 * f)  # smoothstep
    seed = flat.tex_seed[idx]
    noise = torch.zeros_like(q[:, 0])
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                v = _hash01(cell[:, 0] + dx, cell[:, 1] + dy, cell[:, 2] + dz, seed).to(q.dtype)
                wx = w[:, 0] if dx else 1 - w[:, 0]
                wy = w[:, 1] if dy else 1 - w[:, 1]
                wz = w[:, 2] if dz else 1 - w[:, 2]
                noise = noise + v * wx * wy * wz
    mix = torch.zeros_like(c1[:, :1])
    mix = torch.where((tex == TEXTURES.index("checker"))[:, None] & checker, torch.ones_like(mix), mix)
    mix = torch.where((tex == TEXTURES.index("stripes"))[:, None] & stripes, torch.ones_like(mix), mix)
    mix = torch.where((tex == TEXTURES.index("noise"))[:, None], noise[:, None], mix)
    return c1 * (1 - mix) + c2 * mix


def _shade_chunk(flat: FlatScene, scene: Scene, o: torch.Tensor, d: torch.Tensor, shadows: bool):
    t, idx = cast(flat, o, d)
    hit = idx >= 0
    R = o.shape[0]
    rgb = torch.tensor(scene.background, dtype=o.dtype, device=o.device).expand(R, 3).clone()
    n_world = torch.zeros_like(o)
    if hit.any():
        h = hit.nonzero()[:, 0]
        ih = idx[h]
        p_w = o[h] + t[h, None] * d[h]
        T = flat.part_from_world[ih]
        p_l = (T[:, :3, :3] @ p_w[:, :, None])[..., 0] + T[:, :3, 3]
        n_l = torch.zeros_like(p_l)
        kind_of_ray = flat.kind[ih]
        for k in kind_of_ray.unique().tolist():
            m = kind_of_ray == k
            n_l[m] = normal(KINDS[k], p_l[m], flat.size[ih[m]])
        n = (T[:, :3, :3].transpose(-1, -2) @ n_l[:, :, None])[..., 0]  # local -> world
        n = torch.where(((n * d[h]).sum(-1, keepdim=True) > 0), -n, n)  # face the viewer
        light = torch.tensor(scene.light_dir, dtype=o.dtype, device=o.device)
        light = light / light.norm()
        lambert = (n @ light).clamp(min=0)
        if shadows:
            ts, _ = cast(flat, p_w + 1e-3 * n, light.expand_as(p_w))
            lambert = torch.where(torch.isfinite(ts), torch.zeros_like(lambert), lambert)
        albedo = shade_texture(flat, ih, p_l - 1e-4 * n_l)  # just inside: stable cells on faces
        rgb[h] = (albedo * (scene.ambient + (1 - scene.ambient) * lambert[:, None])).clamp(0, 1)
        n_world[h] = n
    return t, idx, rgb, n_world


def check_antialias(n: int) -> None:
    """Raise ``ValueError`` unless ``n`` is an odd number of rays per pixel side (1, 3, 5, ...)."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"antialias must be an odd number of rays per pixel side (1, 3, 5, ...), got {n}")


def render(
    scene: Scene,
    K: torch.Tensor,
    cam_from_world: torch.Tensor,
    H: int,
    W: int,
    *,
    t: float = 0.0,
    shadows: bool = True,
    chunk: int = 1 << 15,
    dtype: torch.dtype = torch.float32,
    antialias: int = 1,
) -> dict[str, torch.Tensor]:
    """Render ``N`` views of ``scene`` at frame ``t``.

    Args:
        scene: the scene.
        K: ``(N, 3, 3)``.
        cam_from_world: ``(N, 4, 4)``.
        H, W: image size.
        shadows: cast shadow rays towards the light.
        chunk: rays intersected at once (bounds memory: ~``chunk x primitives x 40`` bytes).
        dtype: float32 (default) or float64.
        antialias: odd ``n``: the RGB of a pixel is the mean of ``n x n`` rays spread evenly over
            its area (a camera integrates light over its pixels; one ray per pixel aliases fine
            textures, and the aliasing changes as the camera moves). Every other output is the
            centre ray's, i.e. exactly what ``antialias=1`` gives. Costs ``n^2`` times the rays.

    Returns:
        ``rgb (N, 3, H, W)`` in [0, 1], ``depth (N, 1, H, W)`` z-depth in metres (0 where nothing is
        hit), ``distance (N, 1, H, W)`` along the ray, ``normals (N, 3, H, W)`` unit, world frame,
        facing the camera (0 on a miss), ``instance (N, 1, H, W)`` (1-based object index, 0 = none)
        and ``semantic (N, 1, H, W)`` (index into :data:`~unrender.world.CLASSES`), both long.
        Tensors are on the device of ``K``.
    """
    check_args(("K", K, ("N", 3, 3)), ("cam_from_world", cam_from_world, ("N", 4, 4)))
    if K.dim() != 3:
        raise ValueError(f"K: expected shape (N, 3, 3), got {tuple(K.shape)}")
    check_antialias(antialias)
    if antialias > 1:
        # an n-times finer image whose centre rays are the pixel centres: u' = n (u + 1/2) - 1/2
        n = antialias
        Kn = K.clone()
        Kn[:, :2, :] = Kn[:, :2, :] * n
        Kn[:, :2, 2] = Kn[:, :2, 2] + (n - 1) / 2
        fine = render(scene, Kn, cam_from_world, H * n, W * n, t=t, shadows=shadows, chunk=chunk, dtype=dtype)
        out = {k: v[..., n // 2 :: n, n // 2 :: n].contiguous() for k, v in fine.items() if k != "rgb"}
        return {"rgb": torch.nn.functional.avg_pool2d(fine["rgb"], n), **out}
    dev = K.device
    K, cam_from_world = K.to(dtype), cam_from_world.to(dtype)
    flat = scene.flatten(t).to(dev, dtype)
    N = K.shape[0]
    o, d = camera_rays(K, cam_from_world, H, W)  # (N, H, W, 3)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    outs = [_shade_chunk(flat, scene, o[i : i + chunk], d[i : i + chunk], shadows) for i in range(0, len(o), chunk)]
    dist, idx, rgb, nrm = (torch.cat(x) for x in zip(*outs, strict=True))
    hit = idx >= 0
    dist = torch.where(hit, dist, torch.zeros_like(dist)).reshape(N, H * W)
    forward = cam_from_world[:, 2, :3]  # the camera's z axis in world
    depth = dist * (d.reshape(N, H * W, 3) @ forward[:, :, None])[..., 0]
    safe = idx.clamp(min=0)
    inst = torch.where(hit, flat.instance[safe], torch.zeros_like(idx))
    sem = torch.where(hit, flat.semantic[safe], torch.zeros_like(idx))

    def img(x: torch.Tensor, c: int) -> torch.Tensor:
        return x.reshape(N, H, W, c).permute(0, 3, 1, 2).contiguous()

    return {
        "rgb": img(rgb, 3),
        "depth": img(depth.reshape(-1, 1), 1),
        "distance": img(dist.reshape(-1, 1), 1),
        "normals": img(nrm, 3),
        "instance": img(inst[:, None], 1),
        "semantic": img(sem[:, None], 1),
    }
