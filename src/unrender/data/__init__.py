"""Datasets and readers of real file formats (converted to unrender's conventions at the file boundary)."""
