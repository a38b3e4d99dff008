"""Readers and writers of real file formats. Foreign conventions are converted here and nowhere else."""

from .cameras import (
    cam_from_world_from_colmap,
    cam_from_world_from_opengl,
    kitti_cam_from_velo,
    opengl_from_cam_from_world,
)
from .kitti import KittiObject, read_kitti_calib, read_kitti_label, write_kitti_label

__all__ = [
    "KittiObject",
    "cam_from_world_from_colmap",
    "cam_from_world_from_opengl",
    "kitti_cam_from_velo",
    "opengl_from_cam_from_world",
    "read_kitti_calib",
    "read_kitti_label",
    "write_kitti_label",
]
