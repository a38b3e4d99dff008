"""The synthetic world: procedural scenes of analytic primitives, a ray-caster, exact ground truth."""

from .primitives import KINDS
from .render import cast, render
from .scene import CLASSES, Material, Primitive, Scene, SceneObject, class_id

__all__ = ["CLASSES", "KINDS", "Material", "Primitive", "Scene", "SceneObject", "cast", "class_id", "render"]
