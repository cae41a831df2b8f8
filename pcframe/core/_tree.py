"""Finding the `Param`s in an arbitrary pytree of modules, lists and dicts."""

from __future__ import annotations

from typing import Any

import jax

from ._param import Param, StaticParam


def is_param(x: Any) -> bool:
    """`True` for `Param` objects (used as ``is_leaf`` when flattening models).

    **Arguments:**

    - `x`: any object.
    """
    return isinstance(x, Param)


def collect_params(tree: Any) -> list[Param]:
    """Every dynamic `Param` in `tree`, each object once, in depth-first order.

    **Arguments:**

    - `tree`: any pytree of modules, params and containers (e.g. a model, or a dict of models).
    """
    seen: set[int] = set()
    params = []
    for leaf in jax.tree_util.tree_leaves(tree, is_leaf=is_param):
        if isinstance(leaf, Param) and not isinstance(leaf, StaticParam) and id(leaf) not in seen:
            seen.add(id(leaf))
            params.append(leaf)
    return params


def param_paths(tree: Any) -> dict[int, str]:
    """Map ``id(param)`` to a readable path such as ``model.layers[0].nn.weight`` (first path wins)."""
    paths: dict[int, str] = {}
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_param)
    for path, leaf in leaves:
        if isinstance(leaf, Param) and id(leaf) not in paths:
            paths[id(leaf)] = keystr(path)
    return paths


def keystr(path: tuple) -> str:
    """``('model', .layers, [0])`` -> ``model.layers[0]``."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(f".{key.key}" if isinstance(key.key, str) else f"[{key.key!r}]")
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(f"[{key.idx}]")
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(f".{key.name}")
        else:
            parts.append(str(key))
    return "".join(parts).lstrip(".")
