"""A 3D encoder-decoder over voxel volumes (the feature net of neural 3D mapping and of dynamic scenes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeatureNet3D", "conv_block"]


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3x3 convolution, group norm, SiLU."""
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(min(8, cout), cout), nn.SiLU()
    )


class FeatureNet3D(nn.Module):
    """3D encoder to a small bottleneck and one or more decoders back to full resolution.

    Without ``unet`` there are no skip connections: everything a decoder produces passes through
    the bottleneck (``channels[-1]`` channels at ``1 / 2^(levels-1)`` resolution). With
    ``decoders > 1`` the decoders share the encoder and bottleneck but not their weights (one for
    geometry and semantics, one for appearance), so the tasks do not compete for decoder channels.
    """

    def __init__(self, *, cin: int, channels: tuple[int, ...], unet: bool, decoders: int = 1):
        super().__init__()
        self.stem = nn.Sequential(conv_block(cin, channels[0]), conv_block(channels[0], channels[0]))
        self.down = nn.ModuleList(
            nn.Sequential(conv_block(a, b, stride=2), conv_block(b, b))
            for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.decoders = nn.ModuleList(_Decoder(channels, unet) for _ in range(decoders))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(B, cin, Z, Y, X)`` -> one ``(B, channels[0], Z, Y, X)`` per decoder, and the bottleneck.

        A size that does not halve evenly ``levels - 1`` times is zero-padded at the far end for the pass
        and cropped back (the decoders' upsampling doubles sizes).
        """
        skips = self.encode(x)
        return self.decode(skips, x.shape[-3:]), skips[-1]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features at every resolution, full first, the bottleneck last (of ``x`` padded to
        a size that halves evenly)."""
        step = 2 ** len(self.down)
        pad = [(-n) % step for n in x.shape[-3:]]
        if any(pad):
            x = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        return skips

    def decode(self, skips: list[torch.Tensor], size: tuple[int, ...] | torch.Size) -> list[torch.Tensor]:
        """:meth:`encode`'s features (the bottleneck maybe replaced, e.g. quantised) -> one ``(B, channels[0],
        *size)`` per decoder, cropped to the input's ``size``."""
        crop = (..., slice(0, size[0]), slice(0, size[1]), slice(0, size[2]))
        return [dec(skips)[crop] for dec in self.decoders]


class _Decoder(nn.Module):
    def __init__(self, channels: tuple[int, ...], unet: bool):
        super().__init__()
        self.unet = unet
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(b, a, 2, stride=2) for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.fuse = nn.ModuleList(conv_block(2 * a if unet else a, a) for a in channels[:-1])

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        h = skips[-1]
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
            if self.unet:
                h = torch.cat([h, skips[i]], 1)
            h = self.fuse[i](h)
        return h
