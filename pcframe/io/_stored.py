"""Which parameters a file holds: the selected dynamic parameters, one entry per array, keyed by path."""

from __future__ import annotations

from typing import Any

import jax

from ..core._param import Param, StaticParam
from ..core._selection import as_predicate
from ..core._tree import is_param, keystr


def saved_by_default(param: Param) -> bool:
    """The files' default filter: parameters whose type declares ``saved_by_default`` (weights, running statistics)."""
    return type(param).saved_by_default


def selected(module: Any, filter: Any) -> dict[str, Param]:
    """``{path: param}`` for every selected dynamic parameter (a shared one under its first path)."""
    predicate = as_predicate(saved_by_default if filter is None else filter)
    seen: set[int] = set()
    chosen = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(module, is_leaf=is_param)[0]:
        if isinstance(leaf, Param) and not isinstance(leaf, StaticParam) and id(leaf) not in seen and predicate(leaf):
            seen.add(id(leaf))
            chosen[keystr(path) or "value"] = leaf
    return chosen


def entries(name: str, value: Any) -> dict[str, Any]:
    """The arrays stored for one parameter value (a pytree value gets one entry per leaf, in leaf order)."""
    if value is None:
        return {}
    leaves = jax.tree_util.tree_flatten_with_path(value)[0]
    if len(leaves) == 1 and leaves[0][0] == ():
        return {name: leaves[0][1]}
    return {f"{name}::{keystr(p)}": leaf for p, leaf in leaves}


def nothing_selected(where: str, module: Any, filter: Any) -> ValueError:
    """The error for a filter that selects no parameter with a value."""
    return ValueError(
        f"{where}: the filter {'of the weights (the default)' if filter is None else repr(filter)} selects no parameter with a value "
        f"in {type(module).__name__}. Pass the model itself, built (run a forward pass) first, and filter= a type "
        "it holds (e.g. LayerParam)."
    )
