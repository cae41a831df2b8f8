"""`Module`: the base class of every pcframe model, layer and optimiser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._containers import TrackedDict, TrackedList, track
from ._identity import hashable, unwrap
from ._param import Param, StaticParam, _describe
from ._selection import as_predicate
from ._structure import bump_structure

_STATIC_SCALARS = (str, bytes, int, float, complex, bool, type(None))


def is_dynamic(value: Any) -> bool:
    """Whether `value` holds (or contains) state JAX must see: params, modules, arrays."""
    if isinstance(value, (Param, Module, eqx.Module, jax.Array, np.ndarray)):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_dynamic(v) for v in value)
    if isinstance(value, dict):
        return any(is_dynamic(v) for v in value.values())
    return False


class Module:
    """Base class for stateful models: an ordinary Python object that is also a pytree.

    Subclass it and assign layers, `Vode`s, `Param`s and hyperparameters as
    attributes, exactly as in PyTorch. Attributes holding parameters, modules or
    arrays are the pytree's children; everything else (ints, functions, strings)
    is static structure. Lists and dicts assigned to a module are tracked, so
    mutating them later is noticed by pcframe's transforms.

    A module carries a training mode (`train()` / `eval()`, applied recursively)
    and a status used by `Vode` rules (set with `pcframe.utils.step`).

    **Example:**

    ```python
    class Affine(Module):
        def __init__(self):
            self.w = Param(jnp.ones(3))
            self.scale = 2.0          # static
        def __call__(self, x):
            return self.scale * self.w * x
    ```
    """

    _mode = "train"
    _status = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        bump_structure()
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(cls, _flatten_with_keys, _unflatten(cls), flatten_func=_flatten)

    def __setattr__(self, name: str, value: Any) -> None:
        value = track(value)
        if self.__dict__.get(name, _MISSING) is not value:
            bump_structure()
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        bump_structure()
        object.__delattr__(self, name)

    @property
    def is_training(self) -> bool:
        """`True` in training mode (the default), `False` after `eval()`."""
        return self._mode == "train"

    @property
    def status(self) -> Any:
        """The status set by `pcframe.utils.step` (`None` outside any step)."""
        return self._status

    def train(self) -> Module:
        """Put this module and every submodule in training mode. Returns `self`."""
        self._set_everywhere("_mode", "train")
        return self

    def eval(self) -> Module:
        """Put this module and every submodule in evaluation mode. Returns `self`."""
        self._set_everywhere("_mode", "eval")
        return self

    def set_status(self, status: Any) -> None:
        """Set the status of this module and every submodule (see `pcframe.utils.step`)."""
        self._set_everywhere("_status", status)

    def _set_everywhere(self, name: str, value: Any) -> None:
        """Set `name` on every module; the class default is restored by removing the instance's own value.

        So a module after ``step(...)`` or ``eval()``/``train()`` has the structure it had before
        (a compiled function is not traced again for an attribute that only came back to its default).
        """
        default = getattr(type(self), name)
        for module in self.modules():
            if value == default and getattr(type(module), name) == default:
                if name in module.__dict__:
                    delattr(module, name)
            else:
                setattr(module, name, value)

    def modules(self) -> Iterator[Module]:
        """Yield this module and every module nested in it (depth first, each once)."""
        yield from iter_modules(self)

    def parameters(self, filter: Any = None) -> list[Param]:
        """The dynamic `Param`s of this module (each once), optionally filtered.

        **Arguments:**

        - `filter`: a type, a union of types, or a predicate ``Param -> bool``
          (for example ``pcframe.utils.m(LayerParam).has(frozen=True)``).
        """
        from ._tree import collect_params

        params = collect_params(self)
        if filter is None:
            return params
        predicate = as_predicate(filter)
        return [p for p in params if predicate(p)]

    def clear_params(self, filter: Any) -> None:
        """Set the value of every parameter selected by `filter` to `None`.

        Clearing `VodeParam` values lets the next forward pass start with a new
        batch size; clearing `VodeParam.Cache` drops cached predictions and energies.
        """
        for param in self.parameters(filter):
            param.value = None

    def __repr__(self) -> str:
        return _repr(self, 0)


_MISSING = object()


def _split(module: Module):
    children, names, statics = [], [], []
    for name, value in module.__dict__.items():
        if is_dynamic(value):
            names.append(name)
            children.append(value)
        else:
            statics.append((name, hashable(value)))
    return children, (tuple(names), tuple(statics))


def _flatten(module: Module):
    return _split(module)


def _flatten_with_keys(module: Module):
    children, aux = _split(module)
    keys = [jax.tree_util.GetAttrKey(n) for n in aux[0]]
    return list(zip(keys, children)), aux


def _unflatten(cls: type):
    def unflatten(aux, children):
        names, statics = aux
        module = object.__new__(cls)
        module.__dict__.update((name, unwrap(value)) for name, value in statics)
        module.__dict__.update(zip(names, children))
        bump_structure()
        return module

    return unflatten


def iter_modules(tree: Any) -> Iterator[Module]:
    """Yield every `Module` reachable from `tree` (through containers and equinox modules), once."""
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Module):
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(reversed([v for v in node.__dict__.values() if is_dynamic(v)]))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, eqx.Module):
            stack.extend(reversed(jax.tree_util.tree_leaves(node, is_leaf=lambda x: isinstance(x, (Module, Param)))))


def _repr(node: Any, depth: int) -> str:
    pad = "  " * (depth + 1)
    if isinstance(node, Module):
        fields = [(k, v) for k, v in node.__dict__.items() if not k.startswith("_")]
        if not fields:
            return f"{type(node).__name__}()"
        body = ",\n".join(f"{pad}{k}={_repr(v, depth + 1)}" for k, v in fields)
        return f"{type(node).__name__}(\n{body}\n{'  ' * depth})"
    if isinstance(node, (TrackedList, list, tuple)) and is_dynamic(node):
        open_, close = ("[", "]") if isinstance(node, list) else ("(", ")")
        body = ",\n".join(f"{pad}{_repr(v, depth + 1)}" for v in node)
        return f"{open_}\n{body}\n{'  ' * depth}{close}"
    if isinstance(node, (TrackedDict, dict)) and is_dynamic(node):
        body = ",\n".join(f"{pad}{k!r}: {_repr(v, depth + 1)}" for k, v in node.items())
        return f"{{\n{body}\n{'  ' * depth}}}"
    if isinstance(node, eqx.Module):
        return _repr_eqx(node, depth)
    if isinstance(node, StaticParam):
        return f"static({node.value!r})"
    if isinstance(node, Param):
        return repr(node)
    return _describe(node)


def _repr_eqx(node: eqx.Module, depth: int) -> str:
    pad = "  " * (depth + 1)
    import dataclasses

    fields = [(f.name, getattr(node, f.name)) for f in dataclasses.fields(node)]
    body = ",\n".join(f"{pad}{k}={_repr(v, depth + 1)}" for k, v in fields)
    return f"{type(node).__name__}(\n{body}\n{'  ' * depth})"
