"""Readers and writers of real file formats. Foreign conventions are converted here and nowhere else.

Every reader raises :class:`FormatError` (a ``ValueError``) for a malformed file and
:class:`MissingFileError` (also a ``FileNotFoundError``) for a missing one.
"""

from .binvox import read_binvox, write_binvox
from .cameras import (
    cam_from_world_from_colmap,
    cam_from_world_from_opengl,
    kitti_cam_from_velo,
    opengl_from_cam_from_world,
)
from .colmap import ColmapModel, read_colmap_text
from .errors import FormatError, MissingFileError
from .frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoWriter, iter_frames, video_frame_rate
from .h36m import H36MSamples, read_h36m
from .images import fit_intrinsics, fit_map, fit_view, fit_view_crop, fit_view_undistorted, read_rgb
from .intrinsics import CameraIntrinsics, camera_for_image, intrinsics_from_fov, read_intrinsics
from .kitti import (
    KittiObject,
    read_kitti_calib,
    read_kitti_depth_png,
    read_kitti_label,
    read_kitti_velodyne,
    velodyne_depth_map,
    write_kitti_depth_png,
    write_kitti_label,
)
from .kitti_raw import KittiRawDrive, read_kitti_cam_to_cam, read_kitti_raw, read_kitti_raw_image, write_kitti_raw
from .nerf import NerfScene, read_transforms_json
from .ply import read_ply, write_ply
from .realestate import RealEstateClip, read_realestate10k
from .tum import TUM_DEPTH_SCALE, TumSequence, read_tum_rgbd, tum_default_intrinsics

__all__ = [
    "TUM_DEPTH_SCALE",
    "TumSequence",
    "read_tum_rgbd",
    "tum_default_intrinsics",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "VideoWriter",
    "fit_intrinsics",
    "fit_map",
    "fit_view_undistorted",
    "video_frame_rate",
    "CameraIntrinsics",
    "camera_for_image",
    "intrinsics_from_fov",
    "read_intrinsics",
    "read_ply",
    "write_ply",
    "write_kitti_depth_png",
    "fit_view",
    "fit_view_crop",
    "iter_frames",
    "read_rgb",
    "ColmapModel",
    "FormatError",
    "H36MSamples",
    "KittiObject",
    "KittiRawDrive",
    "MissingFileError",
    "NerfScene",
    "RealEstateClip",
    "cam_from_world_from_colmap",
    "cam_from_world_from_opengl",
    "kitti_cam_from_velo",
    "opengl_from_cam_from_world",
    "read_binvox",
    "read_colmap_text",
    "read_h36m",
    "read_kitti_cam_to_cam",
    "read_kitti_calib",
    "read_kitti_depth_png",
    "read_kitti_label",
    "read_kitti_raw",
    "read_kitti_raw_image",
    "read_kitti_velodyne",
    "read_realestate10k",
    "read_transforms_json",
    "velodyne_depth_map",
    "write_kitti_raw",
    "write_binvox",
    "write_kitti_label",
]
