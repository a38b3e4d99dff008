"""Depth and pose networks (Monodepth2-style, small and trained from scratch).

Reads top-down: the disparity -> depth map, a conv block, the encoder, the depth decoder with
sigmoid disparities at 4 scales, the pose net, and the model that holds both plus the
camera-height target that metric-scale training keeps between steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry import axis_angle_to_matrix, check_args, invert_rigid, make_rigid
from ...render import align_pose
from .config import DepthConfig

__all__ = ["DepthModel", "DepthNet", "PoseNet", "disp_to_depth"]


def disp_to_depth(disp: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid output in ``[0, 1]`` -> depth in ``[min_depth, max_depth]``, linear in inverse depth.

    Example:
        >>> disp_to_depth(torch.tensor([0.0, 1.0]), 0.1, 100.0)
        tensor([100.0000,   0.1000])
    """
    lo, hi = 1.0 / max_depth, 1.0 / min_depth
    return 1.0 / (lo + (hi - lo) * disp)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="replicate", bias=False),
        nn.BatchNorm2d(cout),
        nn.ELU(inplace=True),
    )


class Encoder(nn.Module):
    """Five stride-2 stages: features at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input."""

    def __init__(self, *, cin: int, channels: tuple[int, ...]):
        super().__init__()
        ins = (cin, *channels[:-1])
        self.stages = nn.ModuleList(
            nn.Sequential(_conv(a, b, 2), _conv(b, b)) for a, b in zip(ins, channels, strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class DepthNet(nn.Module):
    """Image ``(B, 3, H, W)`` -> sigmoid disparities at scales 0..S-1 (full, 1/2, 1/4, 1/8 resolution).

    H and W must be multiples of 32 (five stride-2 stages).
    """

    def __init__(self, *, channels: tuple[int, ...], scales: int = 4, init_disp: float = 0.5):
        super().__init__()
        self.scales = scales
        self.encoder = Encoder(cin=3, channels=channels)
        dec = tuple(max(8, c // 2) for c in (channels[0], *channels[:-1]))  # decoder width per output level
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        cin = channels[-1]
        for i in reversed(range(len(channels))):  # level i outputs at 1/2^i
            self.up.append(_conv(cin, dec[i]))
            skip = channels[i - 1] if i > 0 else 0
            self.fuse.append(_conv(dec[i] + skip, dec[i]))
            cin = dec[i]
        self.heads = nn.ModuleDict(
            {str(s): nn.Conv2d(dec[s], 1, 3, padding=1, padding_mode="replicate") for s in range(scales)}
        )
        for head in self.heads.values():  # start every pixel at the sigmoid disparity init_disp
            nn.init.constant_(head.bias, math.log(init_disp / (1 - init_disp)))

    def forward(self, image: torch.Tensor) -> dict[int, torch.Tensor]:
        H, W = image.shape[-2:]
        n = len(self.encoder.stages)
        if H % 2**n or W % 2**n:
            raise ValueError(f"DepthNet: image size {H}x{W} must be a multiple of {2**n}")
        feats = self.encoder((image - 0.45) / 0.225)
        x = feats[-1]
        out: dict[int, torch.Tensor] = {}
        for k, i in enumerate(reversed(range(n))):
            x = F.interpolate(self.up[k](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], 1)
            x = self.fuse[k](x)
            if i < self.scales:
                out[i] = torch.sigmoid(self.heads[str(i)](x))
        return out


class PoseNet(nn.Module):
    """An earlier and a later frame ``(B, 3, H, W)`` each -> ``later_from_earlier (B, 4, 4)``.

    Axis-angle and translation come out of a global average pool; the axis-angle is scaled by 0.01
    (Monodepth2) and the translation by ``translation_scale``. The output layer starts at zero, so
    training starts at the identity. Monodepth2 scales the translation by 0.01 too, which suits a
    depth that may settle at any scale; here depth starts near metric (``model.init_depth``) and the
    ego motion is ~1 m per frame, which a 0.01 gain could only reach with raw outputs of ~100.
    """

    def __init__(self, *, channels: tuple[int, ...], translation_scale: float = 1.0):
        super().__init__()
        self.encoder = Encoder(cin=6, channels=channels)
        self.out = nn.Conv2d(channels[-1], 6, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("gain", torch.tensor([0.01] * 3 + [translation_scale] * 3), persistent=False)

    def forward(self, earlier: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
        x = torch.cat([earlier, later], 1)
        v = self.gain * self.out(self.encoder((x - 0.45) / 0.225)[-1]).mean((2, 3))
        return make_rigid(axis_angle_to_matrix(v[:, :3]), v[:, 3:])


class DepthModel(nn.Module):
    """Depth net + pose net; buffers carry the metric-scale state (saved with the weights)."""

    CAMERA_VALUES = 4096

    def __init__(self, cfg: DepthConfig):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        lo, hi = 1 / m.max_depth, 1 / m.min_depth
        self.depth_net = DepthNet(channels=m.channels, scales=cfg.loss.scales,
                                  init_disp=(1 / m.init_depth - lo) / (hi - lo))  # fmt: skip
        self.pose_net = PoseNet(channels=cfg.model.pose_channels, translation_scale=cfg.model.translation_scale)
        # metric-scale state: training steps seen, camera-height target (0 = not set yet) and the
        # camera heights implied by the object scales in the current epoch (a ring of the last
        # CAMERA_VALUES frames; their median is the epoch's value)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        # with metric scale: one learned log scale multiplies both the depth and the pose net's
        # translations. The photometric loss cannot see it (scaling depth and motion together warps
        # the same), so only the scale losses move it, and the camera-height loss moves nothing else.
        self.log_scale = nn.Parameter(torch.zeros(())) if cfg.scale.enabled else None
        self.register_buffer("camera_target", torch.zeros((), dtype=torch.float64))
        self.register_buffer("camera_values", torch.full((self.CAMERA_VALUES,), float("nan"), dtype=torch.float64))
        # the same frames' road-plane heights at metric scale 1 (their median sets the scale at each
        # epoch's end: ``scale.camera_snap``)
        self.register_buffer("plane_values", torch.full((self.CAMERA_VALUES,), float("nan"), dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        # weights saved before the plane-height ring existed (the shipped ones) load with an empty ring, and
        # without the count of the camera ring they kept (its finite entries are the count)
        state_dict.setdefault(prefix + "plane_values", self.plane_values.clone())
        state_dict.pop(prefix + "camera_count", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def predict_depth(self, image: torch.Tensor) -> torch.Tensor:
        """Image ``(B, 3, H, W)`` -> depth ``(B, 1, H, W)`` (full-resolution scale), in the net's units."""
        check_args(("image", image, ("B", 3, "H", "W")))
        return self.depth(self.depth_net(image)[0])

    def depth(self, disp: torch.Tensor) -> torch.Tensor:
        """Sigmoid disparity -> depth, times the learned metric scale."""
        m = self.cfg.model
        return disp_to_depth(disp, m.min_depth, m.max_depth) * self.metric_scale()

    def metric_scale(self) -> torch.Tensor | float:
        """The learned global scale of depth and translation (1 without metric-scale training)."""
        return 1.0 if self.log_scale is None else self.log_scale.exp()

    def scale_gain(self) -> torch.Tensor:
        """1 in value, with the metric scale's gradient: ``x.detach() * scale_gain()`` (or ``x`` computed at a
        detached scale, times it) scales with the metric scale and moves nothing else."""
        return torch.exp(self.log_scale - self.log_scale.detach())

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | dict[int, torch.Tensor]]:
        """``rgb (B, 3, 3, H, W)`` (previous, target, next) -> disparities per scale (see :meth:`depth`)
        and the two relative poses ``src_from_tgt (B, 2, 4, 4)`` (translations times the metric scale)."""
        if "rgb" not in batch:
            raise ValueError("DepthModel: the batch lacks 'rgb' (B, 3 frames, 3, H, W)")
        rgb = batch["rgb"]
        check_args(("rgb", rgb, ("B", 3, 3, "H", "W")))
        tgt = rgb[:, 1]
        disp = self.depth_net(tgt)
        # Monodepth2: the pose net always sees its two frames in temporal order, so it estimates the
        # forward motion either way; the previous frame's pose is the inverse of (previous -> target).
        # Fed (target, source) for both, it gave both sources the same motion (measured: ~1 m ahead
        # for the previous and the next frame alike) and depth came out in vertical streaks.
        prev = invert_rigid(self.pose_net(rgb[:, 0], tgt))
        poses = torch.stack([prev, self.pose_net(tgt, rgb[:, 2])], 1)
        if self.log_scale is not None:  # metric translations; the scale's gradient enters at the end
            poses = make_rigid(poses[..., :3, :3], poses[..., :3, 3] * self.metric_scale().detach())
        if self.cfg.model.align_iters > 0:
            # direct alignment with the detached depth corrects the poses; the correction is a
            # constant, so the pose net and the depth net still get the photometric gradient.
            # Both sources in one batch: (previous ; next), each against the target.
            if "K" not in batch:
                raise ValueError("DepthModel: the batch lacks 'K' (B, 3, 3), which pose alignment needs")
            B = tgt.shape[0]
            depth = self.depth(disp[0]).detach()
            fixed = align_pose(torch.cat([rgb[:, 0], rgb[:, 2]]), tgt.repeat(2, 1, 1, 1), depth.repeat(2, 1, 1, 1),
                               batch["K"].to(depth.dtype).repeat(2, 1, 1), poses.detach().transpose(0, 1).flatten(0, 1),
                               iters=self.cfg.model.align_iters)  # fmt: skip
            correction = fixed.unflatten(0, (2, B)).transpose(0, 1) @ invert_rigid(poses.detach())
            poses = correction @ poses
        if self.log_scale is not None:
            # the whole translation, the alignment's correction included, scales with the metric scale
            # (a factor of 1 in value): scaling depth and motion together warps the same, so the
            # photometric loss has no gradient on the scale. With the pose net's translation alone
            # scaled, the correction's part did not follow, and the photometric loss pushed the scale
            # as hard as the camera-height loss (measured: docs/results.md, issue 29).
            poses = make_rigid(poses[..., :3, :3], poses[..., :3, 3] * self.scale_gain())
        return {"disp": disp, "src_from_tgt": poses}
