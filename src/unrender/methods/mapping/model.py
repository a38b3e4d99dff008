"""The mapping network: voxel memory from RGB-D views -> 3D encoder-decoder -> heads.

Reads top-down: memory construction, the 3D feature net (bottleneck or U-Net), the heads.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ...geometry import camera_rays, sample_frustum
from ...nn import FeatureNet3D, VectorQuantizer
from ...nn.memory import build_memory
from ...render import alpha_composite
from ...world import CLASSES
from .config import MappingConfig
from .data import memory_grid
from .detection import REG_CHANNELS

__all__ = ["MappingNet"]


COLOUR_MEAN, COLOUR_STD = 0.3, 0.2
"""Typical colour and spread of the generated rooms' surfaces, for :func:`normalise_memory`."""


def normalise_memory(memory: torch.Tensor) -> torch.Tensor:
    """The network's view of the memory: colour as ``occ * (rgb - mean) / std`` instead of ``occ * rgb``.

    Raw ``occ * rgb`` is mostly a copy of the occupancy (colours sit near 0.3); the differences
    between two floors are ~0.1 on top of it, and through a bottleneck without skips the network
    then did not learn to carry colour at all (floors came out one prior brown; measured: a
    colour-only 400-step run's error on seen voxels fell from 0.052 to 0.045 with this, U-Net 0.030).
    """
    occ, col = memory[:, :1], memory[:, 1:4]
    return torch.cat([occ, (col - COLOUR_MEAN * occ) / COLOUR_STD, memory[:, 4:]], 1)


class ViewDecoder(nn.Module):
    """Frustum features (one per depth plane) -> RGB: composite by occupancy, then a small 2D CNN.

    The CNN also sees each pixel's unit ray direction in the (gravity-aligned) memory frame, so
    what lies outside the memory (walls beyond it, the sky) can follow the view direction.
    """

    def __init__(self, *, cin: int, depth_planes: int, width: int = 48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin * depth_planes + cin + 1 + 3, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.SiLU(),
            nn.Conv2d(width, 3, 1),
        )  # fmt: skip

    def forward(self, frustum: torch.Tensor, alpha: torch.Tensor, rays: torch.Tensor, residual: bool = False
                ) -> torch.Tensor:  # fmt: skip
        """frustum ``(B, C, D, H, W)``, alpha ``(B, 1, D, H, W)``, unit rays ``(B, 3, H, W)``
        -> RGB ``(B, 3, H, W)`` in [0, 1].

        ``residual``: the first 3 frustum channels are colours; the CNN then corrects their
        composite (over grey where the rays leave the grid) in logit space instead of starting
        from nothing.
        """
        composite, acc = alpha_composite(alpha, frustum)
        x = torch.cat([rearrange(frustum, "b c d h w -> b (c d) h w"), composite, acc, rays], 1)
        y = self.net(x)
        if residual:
            y = y + torch.logit((composite[:, :3] + 0.5 * (1 - acc)).clamp(0.01, 0.99))
        return torch.sigmoid(y)


class MappingNet(nn.Module):
    def __init__(self, cfg: MappingConfig):
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.grid = memory_grid(cfg)
        self.image_net = None
        if m.image_features:
            f = m.image_features
            self.image_net = nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.SiLU(), nn.Conv2d(f, f, 3, padding=1))
        cin = 7 + m.image_features
        c0 = m.channels[0]
        two = m.view and m.appearance_decoder
        self.net = FeatureNet3D(cin=cin, channels=m.channels, unet=m.unet, decoders=2 if two else 1)
        self.quantizer = None
        if m.codebook:
            if m.unet:
                raise ValueError("model.codebook needs model.unet False: skips would carry the scene past the codes")
            self.pre_quant = nn.Conv3d(m.channels[-1], m.code_dim, 1)
            self.quantizer = VectorQuantizer(m.codebook, m.code_dim)
            self.post_quant = nn.Conv3d(m.code_dim, m.channels[-1], 1)
        self.occ_head = nn.Conv3d(c0, 1, 1) if m.occupancy or m.view else None
        self.sem_head = nn.Conv3d(c0, len(CLASSES), 1) if m.semantics else None
        if m.view:
            self.view_feat = nn.Conv3d(c0, m.view_channels, 1)
            self.view_dec = ViewDecoder(cin=m.view_channels, depth_planes=m.depth_planes, width=m.view_width)
        if m.detection:
            Y = self.grid.resolution[1]
            k, nb = len(m.det_classes), m.yaw_bins
            self.bev = nn.Sequential(
                nn.Conv2d(c0 * Y, 64, 3, padding=1), nn.SiLU(), nn.Conv2d(64, 64, 3, padding=1), nn.SiLU()
            )
            self.det_out = nn.Conv2d(64, k + REG_CHANNELS + 2 * nb, 1)
            nn.init.constant_(self.det_out.bias[:k], -2.2)  # CenterNet prior: heatmap starts near 0.1
        near, far = 0.3, float(cfg.data.bounds_max[2]) + 1.5
        self.register_buffer("planes", torch.linspace(near, far, m.depth_planes), persistent=False)

    INPUTS = ("rgb_in", "depth_in", "K_in", "cam_from_mem_in")

    def _check_batch(self, batch: dict[str, torch.Tensor], view: bool) -> None:
        need = self.INPUTS + (("rgb_out", "K_out", "cam_from_mem_out") if view else ())
        missing = [k for k in need if k not in batch]
        if missing:
            raise ValueError(f"MappingNet: the batch lacks {missing}; expected keys {list(need)}")

    def _encode(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        rgb, depth = batch["rgb_in"], batch["depth_in"]
        B, N = rgb.shape[:2]
        feats = None
        if self.image_net is not None:
            feats = self.image_net(rgb.flatten(0, 1)).unflatten(0, (B, N))
        memory = build_memory(self.grid, rgb, depth, batch["K_in"], batch["cam_from_mem_in"], feats)
        return memory, self.net.encode(normalise_memory(memory))

    def _need_codes(self) -> None:
        if self.quantizer is None:
            raise ValueError("MappingNet: this model has a continuous bottleneck (model.codebook 0): it has no codes")

    def encode_codes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The code grid ``(B, Z/4, Y/4, X/4)`` (long) of a quantised model: the encoder only, no decoders
        and no renderer (what a code dump needs)."""
        self._need_codes()
        self._check_batch(batch, view=False)
        _, skips = self._encode(batch)
        return self.quantizer.indices(self.pre_quant(skips[-1]))

    def decode_codes(
        self, codes: torch.Tensor, batch: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """A quantised model's outputs from a code grid alone ``(B, Z/4, Y/4, X/4)``: occupancy, semantics,
        the colour volume and boxes, and with ``batch`` holding a held-out camera (``rgb_out``, ``K_out``,
        ``cam_from_mem_out``) the rendered view too."""
        self._need_codes()
        K = self.quantizer.num_codes
        if codes.dim() != 4 or codes.dtype != torch.long or int(codes.min()) < 0 or int(codes.max()) >= K:
            raise ValueError(f"MappingNet.decode_codes: expected (B, Z, Y, X) long codes in [0, {K}), got "
                             f"{tuple(codes.shape)} {codes.dtype}")  # fmt: skip
        bottleneck = self.post_quant(self.quantizer.lookup(codes))
        skips = [None] * (len(self.cfg.model.channels) - 1) + [bottleneck]  # no skips without unet
        view = batch is not None and all(k in batch for k in ("rgb_out", "K_out", "cam_from_mem_out"))
        return self._decode(skips, batch if view else None)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs for a batch of :class:`~unrender.methods.mapping.data.MappingDataset` items.

        Views with no valid depth (all zeros) or cameras that see none of the grid give an empty
        memory (zeros) and outputs from the network's prior; they do not raise.
        """
        self._check_batch(batch, view=self.cfg.model.view)
        memory, skips = self._encode(batch)
        out: dict[str, torch.Tensor] = {"bottleneck": skips[-1], "memory": memory}
        skips, q = self._quantise(skips)
        if q is not None:
            out.update(codes=q["indices"], commitment=q["commitment"], code_perplexity=q["perplexity"],
                       code_used=q["used"])  # fmt: skip
        out.update(self._decode(skips, batch if self.cfg.model.view else None))
        return out

    def render_views(self, batch: dict[str, torch.Tensor], K: torch.Tensor, cam_from_mem: torch.Tensor, H: int,
                     W: int, chunk: int = 8) -> torch.Tensor:  # fmt: skip
        """One scene's predicted views ``(P, 3, H, W)`` from ``P`` cameras ``K (P, 3, 3)``, ``cam_from_mem
        (P, 4, 4)``: the inputs of ``batch`` (a batch of one) encoded and decoded once, the view rendered for
        ``chunk`` cameras at a time (the same images as ``forward`` with each camera as the held-out one)."""
        if not self.cfg.model.view:
            raise ValueError("MappingNet.render_views: this model has no view head (model.view false)")
        self._check_batch(batch, view=False)
        if batch["rgb_in"].shape[0] != 1:
            raise ValueError(f"MappingNet.render_views: expected a batch of one scene, got {batch['rgb_in'].shape[0]}")
        skips, _ = self._quantise(self._encode(batch)[1])
        vol = self._decode(skips, None, keep_volume=True)["view_volume"]
        parts = [self._render(vol.expand(len(k), -1, -1, -1, -1), k, t, H, W)["rgb_pred"]
                 for k, t in zip(K.split(chunk), cam_from_mem.split(chunk), strict=True)]  # fmt: skip
        return torch.cat(parts)

    def _quantise(self, skips: list) -> tuple[list, dict[str, torch.Tensor] | None]:
        """The skips with the bottleneck replaced by its codes' embedding (a quantised model's decoders see
        only the codes), and the quantiser's outputs; unchanged and None for a continuous bottleneck."""
        if self.quantizer is None:
            return skips, None
        q = self.quantizer(self.pre_quant(skips[-1]))
        return [*skips[:-1], self.post_quant(q["quantized"])], q

    def detect(self, out: dict[str, torch.Tensor], score_threshold: float = 0.05) -> list[dict[str, torch.Tensor]]:
        """The 3D boxes of :meth:`forward`'s outputs (the detection heads' peaks, rotated NMS with this model's
        settings): per sample ``{"boxes" (N, 7), "scores" (N,), "labels" (N,)}`` in the memory frame, labels
        indexing ``model.det_classes``."""
        from .detection import decode_boxes

        m = self.cfg.model
        if not m.detection:
            raise ValueError("MappingNet.detect: this model has no detection head (model.detection False)")
        return decode_boxes(torch.sigmoid(out["heatmap_logits"]), out["reg"], out["yaw_logits"], out["yaw_res"],
                            self.grid, max_detections=m.max_detections, score_threshold=score_threshold,
                            nms_iou=m.nms_iou)  # fmt: skip

    def _decode(self, skips: list, batch: dict[str, torch.Tensor] | None, keep_volume: bool = False
                ) -> dict[str, torch.Tensor]:  # fmt: skip
        """The heads on the decoders' features; the held-out view only with ``batch``; with ``keep_volume``
        the volume the views are rendered from (``view_volume``)."""
        m = self.cfg.model
        out: dict[str, torch.Tensor] = {}
        X, Y, Z = self.grid.resolution
        hs = self.net.decode(skips, (Z, Y, X))
        h = hs[0]
        out["features"] = h  # the occupancy decoder's features (for heads trained on a frozen net)
        if self.occ_head is not None:
            out["occ_logits"] = self.occ_head(h)
        if self.sem_head is not None:
            out["sem_logits"] = self.sem_head(h)
        if m.view:
            feat = self.view_feat(hs[-1])
            if m.colour_volume:  # the first 3 view channels are a per-voxel colour
                out["colour"] = torch.sigmoid(feat[:, :3])
                feat = torch.cat([out["colour"], feat[:, 3:]], 1)
            vol = torch.cat([feat, torch.sigmoid(out["occ_logits"])], 1)
            if keep_volume:
                out["view_volume"] = vol
            if batch is not None:
                out.update(self._render(vol, batch["K_out"], batch["cam_from_mem_out"], *batch["rgb_out"].shape[-2:]))
        if m.detection:
            k, nb = len(m.det_classes), m.yaw_bins
            bev = self.bev(rearrange(h, "b c z y x -> b (c y) z x"))
            d = self.det_out(bev)
            out["heatmap_logits"] = d[:, :k]
            out["reg"] = d[:, k : k + REG_CHANNELS]
            out["yaw_logits"] = d[:, k + REG_CHANNELS : k + REG_CHANNELS + nb]
            out["yaw_res"] = d[:, k + REG_CHANNELS + nb :]
        return out

    def _render(self, vol: torch.Tensor, K: torch.Tensor, cam_from_mem: torch.Tensor, H: int, W: int
                ) -> dict[str, torch.Tensor]:  # fmt: skip
        """The view of ``vol (B, C + 1, Z, Y, X)`` (view features, occupancy last) from cameras ``(B, ...)``."""
        m, out = self.cfg.model, {}
        fr = sample_frustum(vol, self.grid, K, cam_from_mem, H, W, self.planes)
        if m.colour_volume:  # parameter-free render: composite the colour volume, occupancy as alpha
            out["rgb_render"], out["render_alpha"] = alpha_composite(fr[:, -1:], fr[:, :3])
        _, rays = camera_rays(K, cam_from_mem, H, W)
        out["rgb_pred"] = self.view_dec(fr[:, :-1], fr[:, -1:], rearrange(rays, "b h w c -> b c h w"),
                                        residual=m.colour_volume and m.render_residual)  # fmt: skip
        return out
