"""LVSM-style transformers that render a target camera from posed input views, on Plücker-ray tokens.

Reads top-down: pose normalisation, patch tokens, the shared transformer block, the decoder-only
and the encoder-decoder models. Nothing 3D is built in: a token is a patch of RGB (inputs only)
and of the Plücker embedding ``(d, o x d)`` of its pixels' rays; there is no other position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...geometry import check_args, invert_rigid, make_rigid, plucker_map
from .config import NVSConfig

__all__ = ["normalize_cameras", "patchify", "unpatchify", "Block", "NVSModel"]


# ------------------------------------------------------------------------------ pose normalisation
def normalize_cameras(
    input_cam_from_world: torch.Tensor, target_cam_from_world: torch.Tensor, max_translation: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Express all cameras of a sample relative to the mean input camera, scaled to a fixed range.

    The mean camera sits at the mean input centre, turned by the rotation nearest (SVD) to the mean
    of the input rotations. Translations are then scaled so that the farthest input centre is
    ``max_translation`` away (a single input view leaves the scale as it is).

    Args:
        input_cam_from_world: ``(B, V, 4, 4)``; target_cam_from_world: ``(B, T, 4, 4)``.

    Returns:
        The same cameras as ``cam_from_mean``, ``(B, V, 4, 4)`` and ``(B, T, 4, 4)``.

    Example:
        >>> from unrender.geometry import look_at
        >>> eyes = torch.tensor([[2.0, 0, 0], [0, 0, 2.0], [-2.0, 0, 0]])
        >>> T = look_at(eyes, torch.zeros(3))[None]
        >>> a, b = normalize_cameras(T[:, :2], T[:, 2:])
        >>> round(float(invert_rigid(a)[..., :3, 3].norm(dim=-1).max()), 6)
        1.0
    """
    check_args(("input_cam_from_world", input_cam_from_world, ("B", "V", 4, 4)),
               ("target_cam_from_world", target_cam_from_world, ("B", "T", 4, 4)))  # fmt: skip
    world_from_cam = invert_rigid(input_cam_from_world)
    centre = world_from_cam[..., :3, 3].mean(1)  # (B, 3)
    U, _, Vh = torch.linalg.svd(world_from_cam[..., :3, :3].sum(1))
    fix = torch.ones_like(centre)
    fix[:, 2] = torch.sign(torch.linalg.det(U @ Vh))
    R = U @ torch.diag_embed(fix) @ Vh  # the nearest rotation to the mean rotation
    world_from_mean = make_rigid(R, centre)[:, None]
    out = [T @ world_from_mean for T in (input_cam_from_world, target_cam_from_world)]
    centres = invert_rigid(out[0])[..., :3, 3].norm(dim=-1).amax(1)  # (B,)
    scale = torch.where(centres > 1e-6, max_translation / centres.clamp(min=1e-6), torch.ones_like(centres))
    for T in out:
        T[..., :3, 3] = T[..., :3, 3] * scale[:, None, None]
    return out[0], out[1]


# ----------------------------------------------------------------------------------------- tokens
def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``(..., C, H, W)`` -> ``(..., H/p * W/p, p*p*C)`` tokens, row-major over patches.

    Example:
        >>> patchify(torch.zeros(2, 9, 16, 24), 8).shape
        torch.Size([2, 6, 576])
    """
    return rearrange(x, "... c (h p) (w q) -> ... (h w) (p q c)", p=p, q=p)


def unpatchify(tokens: torch.Tensor, p: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(..., N, p*p*C)`` -> ``(..., C, H, W)``.

    Example:
        >>> x = torch.rand(3, 16, 24)
        >>> torch.equal(unpatchify(patchify(x, 8), 8, 16, 24), x)
        True
    """
    return rearrange(tokens, "... (h w) (p q c) -> ... c (h p) (w q)", h=H // p, w=W // p, p=p, q=p)


# ------------------------------------------------------------------------------------------ block
class HeadRMSNorm(nn.Module):
    """RMSNorm over the last dim (one head's channels) with a learned gain: QK-norm."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    """Pre-LayerNorm transformer block, no biases: QK-normed attention (fused kernel) + 4x GELU MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"Block: dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, bias=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm, self.k_norm = HeadRMSNorm(dim // heads), HeadRMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.norm2 = nn.LayerNorm(dim, bias=False)
        self.fc1 = nn.Linear(dim, 4 * dim, bias=False)
        self.fc2 = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        q, k, v = rearrange(self.qkv(self.norm1(x)), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        a = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        x = x + self.proj(rearrange(a, "b h n d -> b n (h d)"))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def init_weights(module: nn.Module, num_layers: int) -> None:
    """Normal(0, 0.02) linear weights; the residual outputs (``proj``, ``fc2``) scaled by
    1/sqrt(2 * layers) so the residual stream's variance does not grow with depth (GPT-2)."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            std = 0.02 / math.sqrt(2 * num_layers) if name.endswith(("proj", "fc2")) else 0.02
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------ model
class NVSModel(nn.Module):
    """Input views + target cameras -> target images.

    ``arch="decoder"``: per target, [input tokens ; target tokens] go through all blocks and the
    target tokens are read out (targets never see each other). ``arch="encdec"``: the encoder turns
    [latents ; input tokens] into latents (:meth:`encode`); the decoder renders [target tokens ;
    latents] (:meth:`decode`), the latents updating too.
    """

    def __init__(self, cfg: NVSConfig):
        super().__init__()
        m = self.m = cfg.model
        self.cfg = cfg
        if cfg.data.height % m.patch or cfg.data.width % m.patch:
            raise ValueError(f"image {cfg.data.height}x{cfg.data.width} is not a multiple of patch {m.patch}")
        p2 = m.patch * m.patch
        self.input_tokens = nn.Linear(9 * p2, m.dim, bias=False)  # RGB in [-1, 1] + Plücker
        self.target_tokens = nn.Linear(6 * p2, m.dim, bias=False)  # Plücker only
        if m.arch == "decoder":
            self.blocks = nn.ModuleList(Block(m.dim, m.heads) for _ in range(m.layers))
        elif m.arch == "encdec":
            if not 0 < m.encoder_layers < m.layers:
                raise ValueError(f"encoder_layers must be in 1..{m.layers - 1}, got {m.encoder_layers}")
            self.latents = nn.Parameter(torch.randn(m.latents, m.dim) * 0.02)
            self.encoder = nn.ModuleList(Block(m.dim, m.heads) for _ in range(m.encoder_layers))
            self.decoder = nn.ModuleList(Block(m.dim, m.heads) for _ in range(m.layers - m.encoder_layers))
        else:
            raise ValueError(f"model.arch must be 'decoder' or 'encdec', got {m.arch!r}")
        self.out_norm = nn.LayerNorm(m.dim, bias=False)
        self.out = nn.Linear(m.dim, 3 * p2)
        init_weights(self, m.layers)

    # -------------------------------------------------------------------------------- pieces
    def _run(self, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for blk in blocks:
            if self.m.checkpointing and self.training and x.requires_grad:
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return x

    def _tokens(self, batch: dict[str, torch.Tensor], inputs: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Input tokens ``(B, V*N, D)`` (None when ``inputs`` is False) and target tokens ``(B, T, N, D)``.

        Targets are the size of the input images; cameras are normalised per sample first."""
        images, K_in, T_in = batch["images"], batch["K"], batch["cam_from_world"]
        K_tg, T_tg = batch["target_K"], batch["target_cam_from_world"]
        H, W = images.shape[-2:]
        check_args(("images", images, ("B", "V", 3, "H", "W")), ("K", K_in, ("B", "V", 3, 3)),
                   ("cam_from_world", T_in, ("B", "V", 4, 4)), ("target_K", K_tg, ("B", "T", 3, 3)),
                   ("target_cam_from_world", T_tg, ("B", "T", 4, 4)))  # fmt: skip
        p = self.m.patch
        if H % p or W % p:
            raise ValueError(f"images are {H}x{W}, not a multiple of the patch size {p}")
        T_in, T_tg = normalize_cameras(T_in.double(), T_tg.double(), self.m.max_translation)
        x_tg = self.target_tokens(patchify(plucker_map(K_tg.double(), T_tg, H, W).to(images.dtype), p))
        if not inputs:
            return None, x_tg
        ray_in = plucker_map(K_in.double(), T_in, H, W).to(images.dtype)  # (B, V, 6, H, W)
        x_in = self.input_tokens(patchify(torch.cat([images * 2 - 1, ray_in], 2), p)).flatten(1, 2)
        return x_in, x_tg

    def _render(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """Target tokens ``(..., N, D)`` -> images ``(..., 3, H, W)`` in [0, 1]."""
        return unpatchify(torch.sigmoid(self.out(self.out_norm(x))), self.m.patch, H, W)

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder-decoder only: the scene's latent tokens ``(B, L, D)``."""
        if self.m.arch != "encdec":
            raise ValueError("encode() needs model.arch='encdec'")
        x_in, _ = self._tokens(batch)
        L = self.latents.shape[0]
        x = torch.cat([self.latents.expand(x_in.shape[0], -1, -1), x_in], 1)
        return self._run(self.encoder, x)[:, :L]

    def decode(self, latents: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder-decoder only: render the batch's targets from ``latents (B, L, D)`` -> ``(B, T, 3, H, W)``.

        Any number of latents works (the probes drop, add or permute them)."""
        if self.m.arch != "encdec":
            raise ValueError("decode() needs model.arch='encdec'")
        _, x_tg = self._tokens(batch, inputs=False)
        B, T, N, D = x_tg.shape
        lat = latents[:, None].expand(B, T, *latents.shape[1:]).flatten(0, 1)
        x = self._run(self.decoder, torch.cat([x_tg.flatten(0, 1), lat], 1))[:, :N]
        return self._render(x, *batch["images"].shape[-2:]).unflatten(0, (B, T))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``images (B, V, 3, H, W)``, ``K (B, V, 3, 3)``, ``cam_from_world (B, V, 4, 4)``, ``target_K (B, T, 3, 3)``,
        ``target_cam_from_world (B, T, 4, 4)`` -> rendered targets ``(B, T, 3, H, W)`` in [0, 1]."""
        H, W = batch["images"].shape[-2:]
        if self.m.arch == "encdec":
            return self.decode(self.encode(batch), batch)
        x_in, x_tg = self._tokens(batch)
        B, T, N, D = x_tg.shape
        ctx = x_in[:, None].expand(B, T, *x_in.shape[1:]).flatten(0, 1)  # each target gets its own copy
        x = self._run(self.blocks, torch.cat([ctx, x_tg.flatten(0, 1)], 1))[:, -N:]
        return self._render(x, H, W).unflatten(0, (B, T))
