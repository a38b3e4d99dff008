"""Config and presets of metric monocular depth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...engine.config import TrainConfig


@dataclass
class DepthData:
    """Generated street videos: every item is a target frame with its previous and next frame."""

    num_train: int = 48
    """Training sequences."""
    num_val: int = 8
    """Held-out sequences (a different seed)."""
    frames: int = 24
    """Frames per sequence (~1 m of ego motion per frame)."""
    height: int = 64
    width: int = 192
    seed: int = 0
    root: Path = Path("runs/data")
    """Datasets are written (once, resumably) under this folder, named by their settings."""
    max_objects: int = 16
    """Instance masks kept per frame (cars and pedestrians, largest first)."""
    antialias: int = 1
    """Rays per pixel side averaged into each frame's RGB (odd; see :class:`unrender.world.SynthConfig`)."""
    kitti_raw: Path | None = None
    """Train on this folder of KITTI raw videos instead (self-supervised losses only: it has no masks);
    evaluation stays on the generated held-out videos."""
    video: Path | None = None
    """Train on your own video instead: a video file or a folder of frames, with ``intrinsics``
    (self-supervised; with ``masks`` also metric from object heights and the camera height). Evaluation
    stays on the generated held-out videos."""
    intrinsics: Path | None = None
    """The camera of ``video``: a JSON file with K (and optional distortion) or a KITTI calib file."""
    masks: Path | None = None
    """Per-frame instance masks for ``video`` from any segmenter: ``<frame>.png`` (instance ids, 0 = none)
    and ``<frame>.json`` (``{"<id>": "car" | "pedestrian" | "road" | ...}``), frames named as ``predict``
    names them (``<video stem>_<index>``, or the image's stem)."""
    every: int = 1
    """Use every n-th frame of ``video`` (more motion between the frames of a triplet)."""


@dataclass
class DepthModel:
    channels: tuple[int, ...] = (16, 24, 32, 48, 64)
    """Depth-net encoder channels at 1/2 ... 1/32 resolution."""
    min_depth: float = 0.1
    max_depth: float = 100.0
    """Sigmoid disparity maps to depth in [min_depth, max_depth]."""
    init_depth: float = 10.0
    """Depth every pixel starts at. The photometric loss is invariant to a common scale of depth and
    motion, so training keeps roughly the scale it starts at; Monodepth2's mid-range start (~0.2 m)
    with ~1 m of motion per frame saturates near min_depth (measured)."""
    pose_channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    translation_scale: float = 1.0
    """Gain on the pose net's translation output (its axis-angle output is scaled by 0.01)."""
    align_iters: int = 3
    """Gauss-Newton steps of direct photometric alignment that refine the pose net's poses with the
    current (detached) depth (:func:`unrender.render.align_pose`); 0 = the pose net alone (Monodepth2)."""


@dataclass
class MetricScale:
    """How metric scale is learned from object heights and a constant camera height."""

    enabled: bool = True
    """False: the self-supervised base only (scale-ambiguous)."""
    car_height: tuple[float, float] = (1.5, 0.08)
    """Prior (mean, std) of a car's height in metres."""
    pedestrian_height: tuple[float, float] = (1.7, 0.08)
    car_roof_depth: float = 2.5
    """How far behind a vehicle's nearest ground contact its roof's far edge lies (metres): for a camera above
    the roof that edge is the mask's top, and the footprint rule reads it there
    (:func:`unrender.methods.depth.scale.footprint_camera_height`). 0: the rule reads the top as the contact's
    own depth, and then its camera heights came out 2.3 % low on the training frames with the true depth
    (1.612 against 1.65 m per object; 1.638 m with 2.5 m). A generated car's roof ends 2.3-2.8 m behind its
    near wheels; a saloon's about 2.7 m."""
    filter: bool = True
    """Drop abnormal objects (border, tiny, height inconsistent with the horizon rule) before use."""
    border_px: int = 1
    """Objects whose mask comes within this many pixels of the image border are dropped."""
    min_height_px: float = 8.0
    min_pixels: int = 24
    max_height_error: float = 0.15
    """Relative disagreement between the horizon-rule height and the prior that marks an object abnormal."""
    quantile: float = 0.25
    """Representative predicted depth of an object: this quantile of its mask's depths."""
    object_weight: float = 0.05
    """Initial weight of the per-pixel object-height loss."""
    object_decay: float = 0.5
    """The object-height weight multiplies by this every epoch ..."""
    object_floor: float = 0.0
    """... down to this fraction of its initial value. 0: the objects stop acting on the depth once the
    camera-height loss has taken over, and the camera height (the target the vehicles' footprints set)
    alone holds the metric scale. With a floor (the earlier 0.1) the two pull the one scale against each
    other (cars that move with the traffic come out farther than the scene): a run with the floor at 0.1
    ended with its scene 30 % too near (median GT/pred 1.44; docs/results.md, issue 29)."""
    camera_weight: float = 0.01
    """Camera-height loss weight once the object weight has decayed (grows as it decays)."""
    road_loss: Literal["plane", "normal"] = "plane"
    """``plane``: every road pixel is pulled onto the plane that contains the direction of travel
    (:func:`unrender.methods.depth.losses.road_plane_loss`). ``normal``: the earlier loss ``|n . c|`` on
    the road's fitted mean normal (:func:`unrender.methods.depth.losses.road_travel_loss`), kept for the
    ablation: a bent road satisfies it, and its runs collapse on some seeds and CPUs (docs/results.md)."""
    road_weight: float = 0.1
    """Weight of the road-plane loss: every road pixel's distance to the plane that contains the direction
    of travel (the chord between the previous and the next camera centre, from the refined poses) and
    best fits the road, relative to the camera height (:func:`unrender.methods.depth.losses.road_plane_loss`).
    The car drives on the road, so the road is flat under it and contains its motion. This weight holds
    while the road is being levelled (the first ``camera_freeze_epochs``); after that ...
    """
    road_settled_weight: float = 0.02
    """... the weight drops to this. The strong weight levels the road early (a run with 0.02 from the start
    tilted 8.7 and 5.6 degrees after its first two epochs), and kept to the end it holds the rest of the
    depth back: one seed of the cpu preset ended at unscaled abs_rel 0.191 with 0.1 throughout, 0.162 with
    0.02 throughout. With this schedule, three seeds on an Intel Xeon kept the road flat (0.70-0.94 degrees)
    but two of them ended 6-8 % too far: the slower levelling leaves the first camera-height targets high
    (docs/results.md, issue 29, still open)."""
    object_reach: Literal["pixels", "scale"] = "pixels"
    """What the object-height loss moves: ``pixels``, the depth of every pixel of each kept object (and the
    metric scale); ``scale``, only the model's one metric scale (the objects' depth is detached), so the
    objects cannot become metric on their own while the rest of the scene is not."""
    camera_source: Literal["depth", "footprint"] = "footprint"
    """How a frame's objects imply the camera height that sets the camera-height target: ``depth``, the road
    plane's height times the objects' scale (metric depth ``f_y H / h`` over their predicted depth);
    ``footprint``, through the road plane's normal at the footprint of each vehicle (pedestrians stand on
    the sidewalk, a kerb above the road; :func:`unrender.methods.depth.scale.footprint_camera_height`: no
    predicted depth enters)."""
    camera_normal: Literal["fitted", "travel"] = "travel"
    """The road normal the footprints imply the camera height through: ``fitted`` to the road's pixels, or
    the normal of the road plane that contains the direction of travel (``travel``: the car drives on the
    road, so a pitch of the fitted plane, which moves a footprint-implied height by 0.17-0.35 m per degree
    at 10-20 m, does not enter). Measured on 160 training frames (issue 29): a seed-0 checkpoint at step
    1500 whose road still tilted 1.1 degrees implied 2.19 m through the fitted normal, 1.60 m through the
    travel one; the finished run of seed 0, 1.69 and 1.58 m (the truth: 1.65 m). With ``fitted`` and
    ``camera_snap`` the early targets (1.94 / 1.81 / 1.87 m after epoch 4 over three seeds) set the scale
    10-15 % too far while the object loss still pulled the other way, and the road levelled more slowly
    (seed 0: 1.3 degrees at step 1760, 0.7 without the snap); those runs were stopped there."""
    camera_freeze_epochs: int = 2
    """The camera-height target is neither updated nor used during the first epochs (while the
    road plane is still being levelled, the heights it implies are too low)."""
    camera_momentum: float = 0.5
    """Weight of the old target in each epoch's update; lower settles faster on the objects' heights."""
    camera_max_jump: float = 2.0
    """An epoch average more than this factor away from the current target is ignored."""
    camera_snap: bool = True
    """At each epoch's end (once the target is set), set the metric scale so that the median road-plane
    height of the epoch's frames equals the camera-height target. The camera-height loss alone moves the
    scale by the learning rate per step and lets it lag: after the object loss decays nothing else holds
    the depth net's own scale, which drifted 30-40 % over a run while the loss followed it with a
    decaying LR (three seeds on an Intel Xeon ended with the target at 1.64-1.68 m but the scene 1-8 %
    too far; docs/results.md, issue 29). The scale multiplies depth and translation together, so the
    photometric loss does not see the step."""


@dataclass
class DepthLoss:
    ssim: float = 0.85
    smoothness: float = 1e-3
    automask: bool = True
    automask_margin: float = 0.0
    """A pixel is auto-masked only when the unwarped source beats every warped one by this much;
    > 0 keeps low-parallax (far) pixels in the loss instead of dropping them on a near-tie."""
    scales: int = 4


@dataclass
class DepthConfig:
    """Metric monocular depth: self-supervised from video (Monodepth2-style), with metric scale from
    object-height priors and a camera height that stays constant over a sequence."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: DepthData = field(default_factory=DepthData)
    model: DepthModel = field(default_factory=DepthModel)
    loss: DepthLoss = field(default_factory=DepthLoss)
    scale: MetricScale = field(default_factory=MetricScale)


def tiny() -> DepthConfig:
    return DepthConfig(
        train=TrainConfig(
            max_steps=20, batch_size=2, lr=1e-3, ckpt_every=10, log_every=5, out_dir=Path("runs/depth-tiny")
        ),
        data=DepthData(num_train=2, num_val=1, frames=5, height=32, width=96),
        model=DepthModel(channels=(8, 12, 16, 24, 32), pose_channels=(8, 16, 24, 32, 48)),
    )


def cpu() -> DepthConfig:
    return DepthConfig(
        train=TrainConfig(max_steps=4000, batch_size=6, lr=1e-3, warmup_steps=100, weight_decay=0.0, ckpt_every=500,
                          eval_every=0, out_dir=Path("runs/depth"), time_limit_min=27.0),
        data=DepthData(antialias=3),
        model=DepthModel(min_depth=1.0),
        loss=DepthLoss(automask_margin=0.03),
    )  # fmt: skip


def gpu() -> DepthConfig:
    return DepthConfig(
        train=TrainConfig(max_steps=40000, batch_size=12, lr=2e-4, warmup_steps=500, ckpt_every=2000,
                          precision="bf16", num_workers=4, out_dir=Path("runs/depth-gpu")),
        data=DepthData(num_train=400, num_val=20, frames=40, height=192, width=640),
        model=DepthModel(channels=(32, 48, 64, 96, 128), pose_channels=(32, 64, 128, 192, 256)),
    )  # fmt: skip


PRESETS = {"tiny": tiny, "cpu": cpu, "gpu": gpu}
