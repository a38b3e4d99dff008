"""Readers and writers of real file formats. Foreign conventions are converted here and nowhere else."""

from .kitti import KittiObject, read_kitti_calib, read_kitti_label, write_kitti_label

__all__ = ["KittiObject", "read_kitti_calib", "read_kitti_label", "write_kitti_label"]
