"""An autoregressive prior over 3D grids of discrete codes: a gated PixelCNN with masked 3D convolutions.

Raster order is ``z`` (slowest), then ``y``, then ``x`` (fastest), over ``(B, Z, Y, X)`` index grids. A
single stack of masked 3x3x3 convolutions has a blind spot (as in 2D: the receptive field of a stack of
causal kernels misses part of the past), so the net keeps three stacks, the 3D form of the gated PixelCNN's
vertical and horizontal stacks (van den Oord et al. 2016): a *slab* stack that sees every earlier ``z``
slab, a *row* stack that sees the earlier rows of the current slab, and a *voxel* stack that sees the
earlier voxels of the current row. Each stack feeds the finer one at the same position, so the voxel
stack's output at ``(z, y, x)`` depends on exactly the codes before it in raster order.

Optionally the net is told one of 8 *orders* (a flip of any of the three axes before the raster scan), so
one model can fill a region in the order that conditions it on the most known codes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskedConv3d", "GatedPixelCNN3D", "flip_order", "raster_index"]


def flip_order(x: torch.Tensor, order: int, dims: tuple[int, int, int] = (-3, -2, -1)) -> torch.Tensor:
    """``x`` flipped along the axes ``dims`` (z, y, x) whose bits are set in ``order`` (bit 0: z, 1: y, 2: x).
    Its own inverse."""
    flip = [d for bit, d in enumerate(dims) if (order >> bit) & 1]
    return x.flip(flip) if flip else x


def raster_index(shape: tuple[int, int, int], order: int = 0) -> torch.Tensor:
    """``(Z, Y, X)`` long: each cell's position in the raster scan of ``order`` (0 comes first)."""
    Z, Y, X = shape
    return flip_order(torch.arange(Z * Y * X).reshape(Z, Y, X), order)


class MaskedConv3d(nn.Module):
    """A 3D convolution whose kernel is multiplied by a fixed 0/1 ``mask`` (odd sizes, centred on the output
    cell), so an output sees only the inputs the mask allows; the size is kept (zero padding). Only the
    mask's bounding box is stored and computed (a causal mask leaves most of a cube empty)."""

    def __init__(self, cin: int, cout: int, mask: torch.Tensor) -> None:
        super().__init__()
        if mask.dim() != 3 or any(k % 2 == 0 for k in mask.shape) or not mask.any():
            raise ValueError(f"MaskedConv3d: the mask must be a non-empty 3D kernel of odd sizes, got "
                             f"{tuple(mask.shape)}")  # fmt: skip
        nz = mask.nonzero()
        lo, hi = nz.min(0).values.tolist(), nz.max(0).values.tolist()
        box = mask[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
        centre = [k // 2 for k in mask.shape]
        # F.pad order: x before/after, y before/after, z before/after
        self.pad = tuple(p for a in (2, 1, 0) for p in (centre[a] - lo[a], hi[a] - centre[a]))
        self.weight = nn.Parameter(torch.empty(cout, cin, *box.shape))
        self.bias = nn.Parameter(torch.zeros(cout))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.register_buffer("mask", box.float()[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv3d(F.pad(x, self.pad), self.weight * self.mask, self.bias)


def _kernel_mask(kind: str, k: int = 3) -> torch.Tensor:
    """Masks of the three stacks over a ``k^3`` kernel (centre ``c``): ``slab`` sees ``dz <= 0`` (every y, x);
    ``row`` sees ``dz = 0, dy <= 0`` (every x); ``voxel`` sees ``dz = dy = 0, dx <= 0``. Their inputs are
    shifted by one along z, y and x respectively, so ``<= 0`` means strictly before."""
    c = k // 2
    m = torch.zeros(k, k, k, dtype=torch.bool)
    if kind == "slab":
        m[: c + 1] = True
    elif kind == "row":
        m[c, : c + 1] = True
    elif kind == "voxel":
        m[c, c, : c + 1] = True
    else:
        raise ValueError(f"unknown mask kind {kind!r}")
    return m


def _shift(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` moved one step along ``dim`` (of ``(B, C, Z, Y, X)``), zeros entering at the start."""
    pad = [0, 0] * 3
    pad[2 * (4 - dim)] = 1  # F.pad lists the last dim first
    return F.pad(x, pad).narrow(dim, 0, x.shape[dim])


class _GatedLayer(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.slab = MaskedConv3d(ch, 2 * ch, _kernel_mask("slab"))
        self.row = MaskedConv3d(ch, 2 * ch, _kernel_mask("row"))
        self.voxel = MaskedConv3d(ch, 2 * ch, _kernel_mask("voxel"))
        self.slab_to_row = nn.Conv3d(2 * ch, 2 * ch, 1)
        self.row_to_voxel = nn.Conv3d(2 * ch, 2 * ch, 1)
        self.out_row, self.out_voxel = nn.Conv3d(ch, ch, 1), nn.Conv3d(ch, ch, 1)

    @staticmethod
    def _gate(h: torch.Tensor) -> torch.Tensor:
        a, b = h.chunk(2, 1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, s: torch.Tensor, r: torch.Tensor, v: torch.Tensor):
        hs = self.slab(s)
        hr = self.row(r) + self.slab_to_row(hs)
        hv = self.voxel(v) + self.row_to_voxel(hr)
        return s + self._gate(hs), r + self.out_row(self._gate(hr)), v + self.out_voxel(self._gate(hv))


class GatedPixelCNN3D(nn.Module):
    """``p(codes) = prod_i p(code_i | codes before i)`` over ``(B, Z, Y, X)`` grids of ``num_codes`` codes.

    Args:
        num_codes: the size of the code alphabet.
        channels: feature channels of each stack.
        layers: gated layers (each widens the receptive field by one cell along every axis).
        orders: 1 (the plain raster order) or 8 (each flip of the three axes, told to the net by an
            embedding; the grid is flipped before the scan).
    """

    def __init__(self, num_codes: int, *, channels: int = 64, layers: int = 6, orders: int = 1) -> None:
        super().__init__()
        if num_codes < 2 or channels < 1 or layers < 1:
            raise ValueError(f"GatedPixelCNN3D: needs num_codes >= 2, channels >= 1, layers >= 1; got "
                             f"{num_codes}, {channels}, {layers}")  # fmt: skip
        if orders not in (1, 8):
            raise ValueError(f"GatedPixelCNN3D: orders must be 1 or 8, got {orders}")
        self.num_codes, self.orders = num_codes, orders
        self.embed = nn.Embedding(num_codes, channels)
        self.order_embed = nn.Embedding(orders, channels)
        self.start = nn.Parameter(torch.zeros(3, channels))  # what each stack sees where nothing came before
        self.layers = nn.ModuleList(_GatedLayer(channels) for _ in range(layers))
        self.head = nn.Sequential(nn.Conv3d(channels, channels, 1), nn.SiLU(), nn.Conv3d(channels, num_codes, 1))

    def forward(self, codes: torch.Tensor, order: int = 0) -> torch.Tensor:
        """Logits ``(B, num_codes, Z, Y, X)``: at each cell, of its code given the codes before it in the
        scan of ``order`` (``codes`` are in the grid's own orientation; so are the logits)."""
        self._check(codes, order)
        return flip_order(self._scan_logits(flip_order(codes, order), order), order)

    def _check(self, codes: torch.Tensor, order: int) -> None:
        if codes.dim() != 4 or codes.dtype != torch.long:
            raise ValueError(f"GatedPixelCNN3D: expected (B, Z, Y, X) long codes, got {tuple(codes.shape)} "
                             f"{codes.dtype}")  # fmt: skip
        if not 0 <= order < self.orders:
            raise ValueError(f"GatedPixelCNN3D: order {order} out of range for a model of {self.orders} orders")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_codes):
            raise ValueError(f"GatedPixelCNN3D: codes must lie in [0, {self.num_codes}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")  # fmt: skip

    def _scan_logits(self, codes: torch.Tensor, order: int) -> torch.Tensor:
        """Logits of codes already flipped into the scan's orientation (plain raster order from here on)."""
        x = self.embed(codes).movedim(-1, 1) + self.order_embed.weight[order][:, None, None, None]
        ones = torch.ones_like(x[:, :1])  # (1 - shifted ones) marks the first cell along each stack's axis
        s, r, v = (_shift(x, d) + (1 - _shift(ones, d)) * self.start[i][:, None, None, None]
                   for i, d in enumerate((2, 3, 4)))  # fmt: skip
        for layer in self.layers:
            s, r, v = layer(s, r, v)
        return self.head(v)

    def nll(self, codes: torch.Tensor, order: int = 0) -> torch.Tensor:
        """Negative log-likelihood per code (nats), ``(B, Z, Y, X)``."""
        return F.cross_entropy(self(codes, order), codes, reduction="none")

    @torch.no_grad()
    def sample(self, codes: torch.Tensor, fill: torch.Tensor, *, order: int = 0, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """``codes (B, Z, Y, X)`` with the cells where ``fill`` (bool, same shape or ``(Z, Y, X)``) is set
        drawn one by one from the prior in the scan of ``order``, each given every code before it (known or
        drawn). ``temperature`` divides the logits (0: the most likely code). Same ``generator`` state, same
        samples."""
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"sample: temperature must be finite and >= 0, got {temperature}")
        self._check(codes, order)
        scan = flip_order(codes, order).clone()
        fill = flip_order(fill.to(codes.device).expand_as(codes), order)
        _, _, Y, X = codes.shape
        for cell in fill.any(0).reshape(-1).nonzero()[:, 0].tolist():  # in raster order of the scan
            z, y, x = cell // (Y * X), (cell // X) % Y, cell % X
            # the scan is causal: slabs after z cannot change this logit, so they are left out
            logits = self._scan_logits(scan[:, : z + 1], order)[:, :, z, y, x].float()
            if temperature == 0:
                draw = logits.argmax(1)
            else:
                p = torch.softmax(logits / temperature, 1)
                draw = torch.multinomial(p.cpu(), 1, generator=generator)[:, 0].to(codes.device)
            here = fill[:, z, y, x]
            scan[here, z, y, x] = draw[here]
        return flip_order(scan, order)
