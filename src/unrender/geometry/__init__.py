"""unrender's geometry core: pure, differentiable torch functions on batched tensors.

Conventions (see ``docs/conventions.md``): OpenCV camera frame (x right, y
down, z forward), column vectors, transforms named ``a_from_b``, pixel centres
at integer ``(u, v) = (column, row)``, ``grid_sample`` with
``align_corners=False``, voxel volumes ``(..., C, Z, Y, X)``, boxes
``(cx, cy, cz, sx, sy, sz, yaw)`` with yaw about y, quaternions ``(w, x, y, z)``,
Plücker rays ``(d, o x d)``. This package imports nothing else of unrender.
"""

from .boxes import (
    BOX_EDGES,
    bev_polygons,
    box_corners,
    box_iou_3d,
    box_iou_bev,
    box_volume,
    boxes_from_kitti,
    boxes_to_kitti,
    nms_boxes,
)
from .camera import (
    crop_intrinsics,
    depth_to_points,
    distort_points,
    make_intrinsics,
    normalized_to_pixels,
    pixel_centers,
    pixels_to_normalized,
    project_points,
    scale_intrinsics,
    undistort_image,
    unproject_points,
    validate_intrinsics,
)
from .checks import broadcast_batch, check_args, check_finite, check_same_dtype, check_shape
from .grids import VoxelGrid, carve_depth, sample_frustum, unproject_to_grid, warp_volume
from .poses import (
    compose,
    invert_rigid,
    look_at,
    make_rigid,
    split_rigid,
    transform_directions,
    transform_points,
    validate_rigid,
)
from .rays import camera_rays, plucker, plucker_map
from .rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    skew,
    so3_exp,
    so3_log,
    yaw_matrix,
)

__all__ = [
    "BOX_EDGES",
    "VoxelGrid",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "bev_polygons",
    "box_corners",
    "box_iou_3d",
    "box_iou_bev",
    "box_volume",
    "boxes_from_kitti",
    "boxes_to_kitti",
    "broadcast_batch",
    "camera_rays",
    "carve_depth",
    "check_args",
    "check_finite",
    "check_same_dtype",
    "check_shape",
    "compose",
    "crop_intrinsics",
    "distort_points",
    "undistort_image",
    "depth_to_points",
    "invert_rigid",
    "look_at",
    "make_intrinsics",
    "make_rigid",
    "validate_rigid",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "nms_boxes",
    "normalized_to_pixels",
    "pixel_centers",
    "pixels_to_normalized",
    "plucker",
    "plucker_map",
    "project_points",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "rotation_6d_to_matrix",
    "sample_frustum",
    "scale_intrinsics",
    "skew",
    "so3_exp",
    "so3_log",
    "split_rigid",
    "transform_directions",
    "transform_points",
    "unproject_points",
    "unproject_to_grid",
    "validate_intrinsics",
    "warp_volume",
    "yaw_matrix",
]
