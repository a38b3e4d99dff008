"""Pictures of results: colour maps, image grids, drawn boxes, a self-contained HTML report."""

from .images import (
    box_edges_2d,
    colorize_depth,
    colorize_labels,
    depth_colorbar,
    draw_segments,
    frustum_lines,
    image_grid,
    save_eval_images,
    save_png,
    to_uint8,
)
from .report import png_data_uri, write_report

__all__ = [
    "box_edges_2d",
    "colorize_depth",
    "colorize_labels",
    "depth_colorbar",
    "draw_segments",
    "frustum_lines",
    "image_grid",
    "png_data_uri",
    "save_eval_images",
    "save_png",
    "to_uint8",
    "write_report",
]
