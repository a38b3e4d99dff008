"""Method registry: ``unrender train <name>`` looks methods up here, so the CLI has no per-method code.

Methods are imported lazily (on first use), so ``import unrender`` stays light.
"""

from __future__ import annotations

import importlib

from .base import Method

__all__ = ["Method", "METHODS", "PLANNED", "get_method", "available_methods", "MethodNotBuiltError"]

# name -> module defining ``METHOD``
METHODS: dict[str, str] = {
    "code-prior": "unrender.methods.prior",
    "depth": "unrender.methods.depth",
    "dynamic": "unrender.methods.dynamic",
    "energy-pose": "unrender.methods.energy.pose",
    "energy-voxels": "unrender.methods.energy.voxels",
    "mapping": "unrender.methods.mapping",
    "nvs": "unrender.methods.nvs",
    "prototypes": "unrender.methods.prototypes",
    "radiance": "unrender.methods.radiance",
    "scene-grids": "unrender.methods.scenegrids",
    "toy": "unrender.methods.toy",
}

# names announced in the roadmap but not built yet -> the issue that builds them
PLANNED: dict[str, str] = {}


class MethodNotBuiltError(LookupError):
    """A method that is planned but not implemented yet."""


def available_methods() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Method:
    """The registered :class:`Method` called ``name``.

    Raises:
        MethodNotBuiltError: for a planned method that does not exist yet.
        KeyError: for an unknown name.
    """
    if name in METHODS:
        return importlib.import_module(METHODS[name]).METHOD
    if name in PLANNED:
        raise MethodNotBuiltError(f"method {name!r} is not built yet: {PLANNED[name]} is still open")
    raise KeyError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
