"""Core state model: parameters, modules, random keys, selection, and the split/merge primitive."""

from ._config import Config
from ._containers import TrackedDict, TrackedList
from ._module import Module
from ._param import Param, StaticParam, static
from ._random import RKG, RandomKeyGenerator, RandomKeyParam
from ._refs import ParamRefs
from ._selection import Mask, as_predicate, m
from ._state import Structure, StructureKey, merge, split
from ._tracing import LeakedTracerError
from ._tree import collect_params, is_param
from ._walk import freeze

__all__ = [
    "Config",
    "LeakedTracerError",
    "Mask",
    "Module",
    "Param",
    "ParamRefs",
    "RKG",
    "RandomKeyGenerator",
    "RandomKeyParam",
    "StaticParam",
    "Structure",
    "StructureKey",
    "TrackedDict",
    "TrackedList",
    "as_predicate",
    "collect_params",
    "freeze",
    "is_param",
    "m",
    "merge",
    "split",
    "static",
]
