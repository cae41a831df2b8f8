"""The one mechanism behind every stateful transform.

1. *Collect* the `Param`s reachable from a call's keyword arguments (plus the
   global `RKG`), each object once so shared parameters stay shared, together
   with a hashable *signature* of everything static about them.
2. *Call* a JAX transform on a pure function of the parameter values: it
   installs the (traced) values into the very same `Param` objects, runs the
   user's function, reads the values back and restores the originals in a
   `finally`, so an exception leaves the model exactly as it was.
3. *Write back* the returned values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import jax

from ..core._identity import hashable
from ..core._module import Module, iter_modules
from ..core._param import Param, StaticParam
from ..core._random import RKG
from ..core._tree import is_param, param_paths


class Tracked(NamedTuple):
    """The parameters of a call's keyword arguments and the signature of their structure."""

    params: tuple[Param, ...]
    signature: tuple
    n_user: int  # params[:n_user] come from the keyword arguments, the rest from the implicit RKG


def collect(kwargs: dict[str, Any]) -> Tracked:
    """Find the dynamic parameters of `kwargs` (and `RKG`) and their structure signature."""
    n_kwargs_leaves = len(jax.tree_util.tree_leaves(kwargs, is_leaf=is_param))
    leaves, treedef = jax.tree_util.tree_flatten((kwargs, RKG), is_leaf=is_param)
    params: list[Param] = []
    index: dict[int, int] = {}
    signature: list[Any] = [treedef]
    n_user = 0
    for position, leaf in enumerate(leaves):
        if isinstance(leaf, StaticParam):
            signature.append(("static", hashable(leaf.value)))
        elif isinstance(leaf, Param):
            found = index.get(id(leaf))
            if found is None:
                index[id(leaf)] = len(params)
                meta = tuple((k, hashable(v)) for k, v in leaf.metadata().items())
                signature.append(("param", len(params), type(leaf), meta))
                params.append(leaf)
            else:
                signature.append(("shared", found))
        else:
            signature.append(("const", hashable(leaf)))
        if position < n_kwargs_leaves:
            n_user = len(params)
    return Tracked(tuple(params), tuple(signature), n_user)


def read(params: Sequence[Param]) -> list[Any]:
    """The current values of `params`."""
    return [p._value for p in params]


def write(params: Sequence[Param], values: Sequence[Any]) -> None:
    """Set the value of each parameter."""
    for param, value in zip(params, values):
        param.value = value


@contextlib.contextmanager
def installed(params: Sequence[Param], values: Sequence[Any]) -> Iterator[None]:
    """Temporarily give `params` the given values; always restore the originals.

    If the block raises, the parameters' metadata is restored too, so a failed
    call leaves every parameter exactly as it was (runs at trace time only).
    """
    originals = [dict(p.__dict__) for p in params]
    write(params, values)
    try:
        yield
    except BaseException:
        for param, state in zip(params, originals):
            param.__dict__.clear()
            param.__dict__.update(state)
        raise
    finally:
        write(params, [state["_value"] for state in originals])


def run_installed(fn, params: Sequence[Param], values: Sequence[Any], args: tuple, kwargs: dict) -> tuple[Any, dict]:
    """Run ``fn(*args, **kwargs)`` with `values` installed; return its output and the changed values.

    The second result maps a parameter's position to its new value, for the
    parameters the function changed (compared by identity).
    """
    with installed(params, values):
        out = fn(*args, **kwargs)
        changed = {i: p._value for i, p in enumerate(params) if p._value is not values[i]}
    return out, changed


def specs(mask: Any, kwargs: dict[str, Any], tracked: Tracked, default: Any, transform: str) -> list[Any]:
    """The mask's value for each tracked parameter (`default` for those it does not cover).

    `mask` is a `Mask` (evaluated on each parameter) or a pytree prefix of the
    keyword arguments whose leaves are the values to use.
    """
    from ..utils._mask import Mask

    implicit = [default] * (len(tracked.params) - tracked.n_user)
    if mask is None:
        return [default] * len(tracked.params)
    if isinstance(mask, Mask):
        if mask.map_to is None:
            raise TypeError(
                f"{transform}: the Mask needs map_to=(value_if_false, value_if_true), e.g. "
                "Mask(VodeParam, (None, 0)) for vmap or Mask(VodeParam, (False, True)) for grad."
            )
        return [mask.value_for(p) for p in tracked.params[: tracked.n_user]] + implicit
    position = {id(p): i for i, p in enumerate(tracked.params)}
    result: list[Any] = [default] * len(tracked.params)
    assigned: dict[int, Any] = {}

    def assign(spec: Any, subtree: Any) -> None:
        for leaf in jax.tree_util.tree_leaves(subtree, is_leaf=is_param):
            i = position.get(id(leaf)) if isinstance(leaf, Param) else None
            if i is None:
                continue
            if i in assigned and assigned[i] != spec:
                raise ValueError(
                    f"{transform}: the mask gives two different values ({assigned[i]!r}, {spec!r}) to the "
                    f"same shared parameter {param_paths(kwargs).get(id(leaf), leaf)!r}."
                )
            assigned[i] = result[i] = spec

    try:
        jax.tree_util.tree_map(assign, mask, kwargs, is_leaf=lambda x: x is None)
    except ValueError as error:
        if "mask gives two" in str(error):
            raise
        raise ValueError(
            f"{transform}: the mask's structure does not fit the keyword arguments {sorted(kwargs)}. "
            "Give a Mask(filter, map_to) object, or a pytree prefix of the keyword arguments "
            f"(for example {{name: value}} per argument). JAX said: {error}"
        ) from None
    return result


def check_positional(args: tuple, transform: str) -> None:
    """Refuse models passed positionally: only keyword arguments are tracked."""
    for i, arg in enumerate(args):
        if isinstance(arg, (Module, Param)) or (isinstance(arg, (list, tuple, dict)) and _holds_state(arg)):
            raise TypeError(
                f"{transform}: positional argument {i} is a {type(arg).__name__} holding parameters. "
                "Positional arguments are plain JAX values; pass models and optimisers as keyword "
                "arguments (e.g. f(x, model=model)) so their parameters are tracked and updated."
            )


def _holds_state(tree: Any) -> bool:
    return any(isinstance(x, Param) for x in jax.tree_util.tree_leaves(tree, is_leaf=is_param))


@contextlib.contextmanager
def static_state_restored(tree: Any) -> Iterator[None]:
    """Undo, on exit, every change to the static state of the modules and params in `tree`.

    Used while `jit` traces: on later (cached) calls the Python body does not run,
    so static changes made while tracing must not outlive the trace either.
    """
    modules = list(iter_modules(tree))
    module_state = [(module, dict(module.__dict__)) for module in modules]
    containers = [
        (value, list(value) if isinstance(value, list) else dict(value))
        for module in modules
        for value in module.__dict__.values()
        if isinstance(value, (list, dict))
    ]
    params = [leaf for leaf in jax.tree_util.tree_leaves(tree, is_leaf=is_param) if isinstance(leaf, Param)]
    param_state = [(p, {k: v for k, v in p.__dict__.items() if k != "_value"}) for p in params]
    try:
        yield
    finally:
        for module, state in module_state:
            module.__dict__.clear()
            module.__dict__.update(state)
        for container, state in containers:
            if isinstance(container, list):
                list.__setitem__(container, slice(None), state)
            else:
                dict.clear(container)
                dict.update(container, state)
        for param, state in param_state:
            value = param.__dict__["_value"]
            param.__dict__.clear()
            param.__dict__.update(state)
            param.__dict__["_value"] = value
