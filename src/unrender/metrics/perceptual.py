"""VGG-16 feature distances (a perceptual loss) and LPIPS, from weights the user points to.

No weights ship and none are downloaded: these classes only load a local file. A random backbone
is never used -- without a file, callers report the metric as unavailable.

Key layouts: the backbone reads torchvision's ``features.<i>.weight``/``.bias`` of VGG-16; LPIPS
also needs its five calibration layers as ``lin<k>.model.1.weight`` (the official ``lpips`` layout),
in the same file or a second one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["VGGFeatures", "LPIPS", "feature_distance", "load_weights"]

# VGG-16 'features': channels per conv, "M" = max-pool; LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)  # indices (in torchvision's features Sequential) of the tapped ReLUs
_CHANNELS = (64, 128, 256, 512, 512)


def load_weights(*paths: str | Path) -> dict[str, torch.Tensor]:
    """Merge state dicts from ``.safetensors`` or ``.pth``/``.pt`` files (tensors only, no pickled code)."""
    out: dict[str, torch.Tensor] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise FileNotFoundError(f"perceptual weights: no such file {p}")
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            out.update(load_file(str(p)))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
            out.update(sd.get("state_dict", sd) if isinstance(sd, dict) else {})
    return out


class VGGFeatures(nn.Module):
    """VGG-16 conv layers up to relu5_3, frozen; returns the five LPIPS taps.

    Input ``(B, 3, H, W)`` in [0, 1] (ImageNet-normalised inside).
    """

    def __init__(self, weights: str | Path | dict[str, torch.Tensor]):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU()]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        sd = weights if isinstance(weights, dict) else load_weights(weights)
        mine = {k: v for k, v in sd.items() if k.startswith("features.")}
        missing = set(self.state_dict()) - set(mine)
        if missing:
            raise ValueError(f"VGG-16 weights lack {len(missing)} tensors, e.g. {sorted(missing)[0]!r}")
        self.load_state_dict(mine, strict=False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        return taps


def _tap_distances(vgg: VGGFeatures, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """Per tap: squared differences of channel-normalised features ``(B, C_tap, h, w)``."""

    def unit(f: torch.Tensor) -> torch.Tensor:
        return f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)

    return [(unit(x) - unit(y)).pow(2) for x, y in zip(vgg(a), vgg(b), strict=True)]


def feature_distance(vgg: VGGFeatures, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over the five taps of the squared distance of channel-normalised features, per image ``(B,)``."""
    return torch.stack([d.sum(1).mean((1, 2)) for d in _tap_distances(vgg, a, b)]).mean(0)


class LPIPS(nn.Module):
    """LPIPS (VGG) between images ``(B, 3, H, W)`` in [0, 1] -> ``(B,)``: the five taps'
    channel-normalised feature differences, weighted per channel by the calibration layers."""

    def __init__(self, *paths: str | Path):
        super().__init__()
        sd = load_weights(*paths)
        self.vgg = VGGFeatures(sd)
        lins = []
        for k, c in enumerate(_CHANNELS):
            key = f"lin{k}.model.1.weight"
            if key not in sd:
                raise ValueError(f"LPIPS weights lack the calibration layer {key!r}")
            w = sd[key].reshape(-1)
            if w.numel() != c:
                raise ValueError(f"LPIPS {key}: expected {c} weights, got {w.numel()}")
            lins.append(w)
        self.register_buffer("lin", torch.cat(lins), persistent=False)
        self.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        weights = self.lin.split(_CHANNELS)
        return sum((d * w.view(1, -1, 1, 1)).sum(1).mean((1, 2)) for d, w in zip(_tap_distances(self.vgg, a, b),
                                                                                  weights, strict=True))  # fmt: skip
