"""Selecting parameters: the `m` filter combinator and `Mask`."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import jax

from ._param import Param
from ._tree import is_param

_MISSING = object()


class m:
    """A composable predicate over parameters.

    ``m(T1, T2, ...)`` selects parameters that are instances of any of the given
    types; ``m(fn)`` uses a predicate ``fn(param) -> bool``. Combine with ``|``,
    ``&`` and ``~``, and refine with `has` / `has_not` on static attributes.

    **Arguments:**

    - `*filters`: `Param` types, or predicates ``fn(param) -> bool``; a parameter is selected when it matches any of them.

    **Example:**

    ```python
    free_activities = m(VodeParam).has_not(frozen=True)
    weights_or_caches = m(LayerParam) | m(VodeParam.Cache)
    ```
    """

    def __init__(self, *filters: Any) -> None:
        if not filters:
            raise TypeError("m(...) needs at least one type or predicate, e.g. m(LayerParam).")
        self._predicates = tuple(as_predicate(f) for f in filters)
        self._text = f"m({', '.join(filter_text(f) for f in filters)})"

    @classmethod
    def _combined(cls, predicate: Callable[[Any], bool], text: str) -> m:
        combined = cls(predicate)
        combined._text = text
        return combined

    def __repr__(self) -> str:
        return self._text

    def __call__(self, param: Any) -> bool:
        return any(p(param) for p in self._predicates)

    def __or__(self, other: Any) -> m:
        return _both(self, other, "|")

    def __ror__(self, other: Any) -> m:
        return _both(other, self, "|")

    def __and__(self, other: Any) -> m:
        return _both(self, other, "&")

    def __rand__(self, other: Any) -> m:
        return _both(other, self, "&")

    def __invert__(self) -> m:
        return m._combined(lambda p: not self(p), f"~{self!r}")

    def has(self, **attributes: Any) -> m:
        """Also require every given static attribute to exist with the given value."""
        selected = m._combined(lambda p: all(_attribute(p, k) == v for k, v in attributes.items()), "")
        return m._combined(lambda p: self(p) and selected(p), f"{self!r}.has({_keywords(attributes)})")

    def has_not(self, **attributes: Any) -> m:
        """Also require that no given attribute is set to the given value (missing counts as "not")."""
        excluded = m._combined(lambda p: any(_attribute(p, k) == v for k, v in attributes.items()), "")
        return m._combined(lambda p: self(p) and not excluded(p), f"{self!r}.has_not({_keywords(attributes)})")


def _both(left: Any, right: Any, operator: str) -> m:
    """``left | right`` or ``left & right`` as an `m`, evaluated left first, with a readable repr."""
    text, first, second = (
        f"({filter_text(left)} {operator} {filter_text(right)})",
        as_predicate(left),
        as_predicate(right),
    )
    if operator == "|":
        return m._combined(lambda p: first(p) or second(p), text)
    return m._combined(lambda p: first(p) and second(p), text)


def filter_text(filter: Any) -> str:
    """Readable text for a filter: ``VodeParam``, ``VodeParam | Cache``, ``m(...)``, a function's name."""
    if isinstance(filter, m):
        return repr(filter)
    if isinstance(filter, type):
        return filter.__qualname__
    if isinstance(filter, tuple):
        return " | ".join(map(filter_text, filter))
    if isinstance(filter, types.UnionType) or typing.get_origin(filter) is typing.Union:
        return " | ".join(map(filter_text, typing.get_args(filter)))
    return getattr(filter, "__qualname__", repr(filter))


def _keywords(attributes: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in attributes.items())


def _attribute(param: Any, name: str) -> Any:
    """A static attribute of a parameter, or a sentinel when it has none."""
    return getattr(param, "__dict__", {}).get(name, _MISSING)


def as_predicate(filter: Any) -> Callable[[Any], bool]:
    """Turn a type, a union of types, a tuple of types, an `m` or a callable into ``param -> bool``.

    **Arguments:**

    - `filter`: what to select, e.g. ``VodeParam | VodeParam.Cache`` or ``m(LayerParam).has(frozen=True)``.

    **Returns:** a predicate ``param -> bool``.

    **Example:** ``as_predicate(LayerParam)(layer.nn.weight)  # True``
    """
    if isinstance(filter, m):
        return filter
    if typing.get_origin(filter) is typing.Union:
        filter = typing.get_args(filter)
    if isinstance(filter, (type, types.UnionType)) or (
        isinstance(filter, tuple) and all(isinstance(f, (type, types.UnionType)) for f in filter)
    ):
        return lambda p: isinstance(p, filter)
    if callable(filter):
        return filter
    raise TypeError(
        f"Cannot use {filter!r} as a parameter filter: give a Param type (e.g. LayerParam), "
        "a union of types (VodeParam | VodeParam.Cache), an m(...) filter or a function param -> bool."
    )


class Mask:
    """Maps every parameter of a pytree to one of two values, depending on a filter.

    ``Mask(filter, map_to=(if_false, if_true))`` is what pcframe's transforms
    take to know how to treat each parameter: ``(None, 0)`` for `vmap` (batched
    along axis 0 or not), ``(False, True)`` for `grad` (differentiated or not).
    Called on a pytree without `map_to`, it returns the same tree with
    non-matching parameters replaced by `None`: the selection to give `Optim`.

    **Arguments:**

    - `filter`: a type, union of types, `m(...)` or predicate ``Param -> bool``.
    - `map_to`: a pair ``(value_if_false, value_if_true)``, or `None`.

    **Example:**

    ```python
    Mask(VodeParam | VodeParam.Cache, (None, 0))     # vmap: batch the activities
    Mask(m(VodeParam).has_not(frozen=True), [False, True])   # grad: free activities
    Optim(optax.adam(1e-3), Mask(LayerParam)(model))   # the weights of `model`
    ```
    """

    def __init__(self, filter: Any, map_to: Any = None) -> None:
        self.predicate = as_predicate(filter)
        self._filter_text = filter_text(filter)
        if map_to is not None:
            if not isinstance(map_to, (tuple, list)) or len(map_to) != 2:
                raise TypeError(f"Mask map_to must be a pair (value_if_false, value_if_true), got {map_to!r}.")
            map_to = tuple(map_to)
        self.map_to = map_to

    def value_for(self, param: Param) -> Any:
        """The value this mask assigns to one parameter."""
        selected = bool(self.predicate(param))
        if self.map_to is None:
            return param if selected else None
        return self.map_to[selected]

    def __call__(self, tree: Any) -> Any:
        """Apply the mask to every parameter of `tree` (non-parameter leaves map to `None` / `if_false`)."""
        default = None if self.map_to is None else self.map_to[0]
        return jax.tree_util.tree_map(
            lambda leaf: self.value_for(leaf) if isinstance(leaf, Param) else default, tree, is_leaf=is_param
        )

    def __repr__(self) -> str:
        return f"Mask({self._filter_text}, map_to={self.map_to!r})"
