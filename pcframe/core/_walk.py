"""One pass over keyword arguments: the hashable signature of their state, their parameters and arrays.

`split` (in `_state`) builds a `Structure` from what this walk collects. Everything static
goes into the signature **by value** (`freeze`); every dynamic `Param` and every array
outside a `Param` is collected, with where it lives, so it can be swapped for a traced value.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

from ._containers import TrackedDict, TrackedList
from ._identity import ById
from ._module import Module, is_dynamic
from ._param import Param, StaticParam
from ._refs import ParamRefs
from ._tree import keystr

VALUE = "_value"
ARRAYS = (jax.Array, np.ndarray)
DATA = object()
"""Marks where an array sat among the leaves of a container rebuilt around traced values."""


def freeze(value: Any) -> Any:
    """A hashable stand-in for a static value that compares **by value**.

    Lists, tuples, dicts, sets, NumPy arrays and dataclasses are converted
    recursively (so editing one in place changes its frozen form); numbers,
    NumPy scalars included, keep their type (``1`` and ``1.0`` differ); other hashable objects stand for
    themselves; an unhashable object of another kind is compared by identity.

    **Arguments:**

    - `value`: any static value.

    **Returns:** a hashable object.
    """
    if isinstance(value, (bool, int, float, complex)):
        return (type(value), value)
    if isinstance(value, np.generic):  # a NumPy scalar compares elementwise with other objects: use its Python value
        return (type(value), value.item())
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(map(freeze, value)))
    if isinstance(value, dict):
        return (type(value), tuple((key, freeze(item)) for key, item in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value), frozenset(map(freeze, value)))
    if isinstance(value, np.ndarray):
        return (np.ndarray, value.shape, value.dtype.str, value.tobytes())
    if isinstance(value, types.SimpleNamespace):
        return (type(value), freeze(vars(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(freeze(getattr(value, f.name)) for f in dataclasses.fields(value)))
    try:
        hash(value)
    except TypeError:
        return ById(value)
    return value


class Slot(NamedTuple):
    """Where a module keeps arrays outside `Param`s: ``owner[key]``, an array or a container of them.

    `treedef` and `kept` (the container's leaves, `DATA` where an array sat) are `None` for a
    bare array; `count` is how many arrays it holds.
    """

    owner: Any
    key: Any
    treedef: Any
    kept: Any
    count: int


class Walk:
    """Builds a `Structure` from keyword arguments: one pass over every module, container and leaf."""

    def __init__(self) -> None:
        self.signature: list[Any] = []
        self.params: list[Param] = []
        self.paths: list[str] = []
        self.param_index: dict[int, int] = {}
        self.modules: list[Module] = []
        self.module_index: dict[int, int] = {}
        self.containers: list[Any] = []
        self.slots: list[Slot] = []
        self.slot_values: list[Any] = []
        self.watched: list[tuple] = []
        self.refs: list[ParamRefs] = []

    def _first_visit(self, obj: Any, index: dict[int, int], seen: list[Any], kind: str) -> bool:
        """Register `obj` in `seen`; a second visit records ``("shared <kind>", position)`` instead and is False."""
        found = index.get(id(obj))
        if found is not None:
            self.signature.append((f"shared {kind}", found))
            return False
        index[id(obj)] = len(seen)
        seen.append(obj)
        return True

    def module(self, module: Module, path: str) -> None:
        if not self._first_visit(module, self.module_index, self.modules, "module"):
            return
        self.signature.append(("module", type(module)))
        attributes = module.__dict__
        for name, value in attributes.items():
            if is_dynamic(value):
                self.signature.append(("attribute", name))
                self.value(value, f"{path}.{name}", attributes, name)
            else:
                self.signature.append(("static", name, self.static(value, attributes, name)))

    def value(self, value: Any, path: str, owner: Any = None, key: Any = None) -> None:
        """Walk one dynamic value; `owner[key]` is where it is stored, when that can be set in place."""
        if isinstance(value, Param):
            self.param(value, path)
        elif isinstance(value, Module):
            self.module(value, path)
        elif isinstance(value, ARRAYS):
            self.array(value, owner, key)
        elif isinstance(value, (TrackedList, TrackedDict)):
            self.containers.append(value)
            items = enumerate(value) if isinstance(value, list) else value.items()
            self.signature.append((type(value), len(value) if isinstance(value, list) else tuple(value)))
            for index, item in items:
                self.value(item, f"{path}[{index!r}]", value, index)
        elif isinstance(value, (list, tuple, dict)) or isinstance(value, eqx.Module):
            self.tree(value, path, owner, key)
        else:
            self.signature.append(("static leaf", freeze(value)))

    def static(self, value: Any, owner: dict, key: str) -> Any:
        """`freeze(value)`; a value that can be edited in place unseen (a list in a tuple, a dataclass) is watched.

        A `ParamRefs` stands for its `signature()` here, and for the positions of its parameters at the
        end of the walk (`close`).
        """
        if isinstance(value, ParamRefs):
            self.refs.append(value)
            return ("param refs", len(self.refs) - 1, freeze(value.signature()))
        frozen = freeze(value)
        if editable(value):
            self.watched.append((owner, key, frozen))
        return frozen

    def param(self, param: Param, path: str) -> None:
        if isinstance(param, StaticParam):
            self.signature.append(
                ("static param", type(param), self.static(param._value, param.__dict__, VALUE), metadata(param))
            )
            return
        if not self._first_visit(param, self.param_index, self.params, "param"):
            return
        self.paths.append(path)
        self.signature.append(("param", type(param), metadata(param)))

    def tree(self, value: Any, path: str, owner: Any, key: Any) -> None:
        """An immutable (or untracked) container: its arrays are data, swapped in by rebuilding it at `owner[key]`."""
        leaves, treedef = jax.tree_util.tree_flatten_with_path(value, is_leaf=is_stateful)
        if treedef.num_nodes == 1 and treedef.num_leaves == 1:  # JAX sees a leaf: a subclass it does not know
            raise TypeError(
                f"pcframe cannot track {path or 'a keyword argument'}: a {type(value).__name__} is a "
                f"{type(value).__mro__[1].__name__} subclass that JAX does not know as a pytree. Use a plain "
                f"{type(value).__mro__[1].__name__}, or register the class with jax.tree_util.register_pytree_node."
            )
        self.signature.append(("tree", treedef))
        kept = []
        for where, leaf in leaves:
            if isinstance(leaf, ARRAYS) and owner is not None:
                self.signature.append(("data",))
                self.slot_values.append(leaf)
                kept.append(DATA)
            else:
                self.value(leaf, path + path_text(where))
                kept.append(leaf)
        count = sum(leaf is DATA for leaf in kept) if owner is not None else 0
        if count:
            self.slots.append(Slot(owner, key, treedef, kept, count))

    def close(self) -> None:
        """Record, for each `ParamRefs` met, where its parameters are among those walked (by identity if not walked)."""
        for refs in self.refs:
            places = tuple(self.param_index.get(id(p), ById(p)) for p in refs.params)
            self.signature.append(("param refs at", places))

    def array(self, array: Any, owner: Any, key: Any) -> None:
        if owner is None:  # only under a container that has no owner itself: a constant of the trace
            self.signature.append(("constant", ById(array) if isinstance(array, jax.Array) else freeze(array)))
            return
        self.signature.append(("data",))
        self.slots.append(Slot(owner, key, None, None, 1))
        self.slot_values.append(array)


def editable(value: Any) -> bool:
    """Whether an in-place edit can change `freeze(value)` without telling pcframe.

    Tracked lists and dicts (what a `Module` makes of its plain list and dict attributes)
    report their edits; a list inside a tuple, a set, a NumPy array, a namespace or a
    mutable dataclass do not.
    """
    if isinstance(value, (TrackedList, TrackedDict)):
        return any(map(editable, value.values() if isinstance(value, dict) else value))
    if isinstance(value, (list, dict, set, np.ndarray, types.SimpleNamespace)):
        return True
    if isinstance(value, tuple):
        return any(map(editable, value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return not value.__dataclass_params__.frozen or any(
            editable(getattr(value, f.name)) for f in dataclasses.fields(value)
        )
    return False


def path_text(path: tuple) -> str:
    text = keystr(path)
    return text if text.startswith("[") or not text else "." + text


def is_stateful(x: Any) -> bool:
    return isinstance(x, (Module, Param))


def metadata(param: Param) -> tuple:
    return tuple((name, freeze(value)) for name, value in param.__dict__.items() if name != VALUE)
