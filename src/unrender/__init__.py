"""unrender: inverse graphics for PyTorch.

Given images with cameras (one image, a video, or many posed views), recover
the 3D world behind them. ``unrender.geometry`` is the shared geometry core,
``unrender.metrics`` the evaluation metrics, ``unrender.engine`` the trainer.
Heavy optional dependencies (plotly, rerun, tensorboard) are never imported here.
"""

__version__ = "0.1.0"
