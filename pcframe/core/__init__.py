"""Core state model: parameters, modules and random keys."""

from ._containers import TrackedDict, TrackedList
from ._module import Module
from ._param import Param, StaticParam, static
from ._random import RKG, RandomKeyGenerator, RandomKeyParam
from ._tree import collect_params, is_param

__all__ = [
    "Module",
    "Param",
    "RKG",
    "RandomKeyGenerator",
    "RandomKeyParam",
    "StaticParam",
    "TrackedDict",
    "TrackedList",
    "collect_params",
    "is_param",
    "static",
]
