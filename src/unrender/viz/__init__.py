"""Pictures of results: colour maps, image grids, an HTML report. Heavy viewers are optional extras."""

from .images import colorize_depth, image_grid, save_png, to_uint8
from .report import write_report

__all__ = ["colorize_depth", "image_grid", "save_png", "to_uint8", "write_report"]
