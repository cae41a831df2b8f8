"""Stateful `vmap`: vectorise a function of a model over a batch axis."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ..core._random import RandomKeyParam
from ..core._state import Structure, merge, split
from ..core._tracing import serialised
from ._lift import check_positional, specs


def _batch_size(args: tuple, in_axes: Any, values: list, axes: list, axis_size: int | None) -> int | None:
    if axis_size is not None:
        return axis_size
    arg_axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    for arg, axis in zip(args, arg_axes):
        if axis is None:
            continue
        for leaf in jax.tree_util.tree_leaves(arg):
            if hasattr(leaf, "shape") and leaf.ndim > 0:
                return leaf.shape[axis]
    for value, axis in zip(values, axes):
        if axis is not None:
            for leaf in jax.tree_util.tree_leaves(value):
                return leaf.shape[axis]
    return None


def _check_batch_sizes(structure: Structure, values: list, axes: list, size: int | None) -> None:
    """Refuse batched parameters whose batch size differs from the inputs' (checked when traced)."""
    for i, (value, axis) in enumerate(zip(values, axes)):
        if axis is None or value is None or size is None:
            continue
        for leaf in jax.tree_util.tree_leaves(value):
            if jnp.ndim(leaf) > axis and jnp.shape(leaf)[axis] != size:
                raise ValueError(
                    f"vmap: the parameter {structure.paths[i]} has size {jnp.shape(leaf)[axis]} along its batch axis "
                    f"{axis} but the batch has size {size}. Its value comes from a batch of another size: clear the "
                    "Vodes before the new batch with model.clear_params(pxc.VodeParam) (pcframe.pc.VodeParam)."
                )


def vmap(
    kwargs_mask: Any = None,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: Any = None,
    axis_size: int | None = None,
):
    """Vectorise a function over a batch axis with `jax.vmap`, tracking keyword-argument parameters.

    `in_axes` / `out_axes` / `axis_name` have their `jax.vmap` meaning for the
    positional arguments and outputs. `kwargs_mask` says, for each tracked
    parameter, its batch axis (e.g. ``Mask(VodeParam | VodeParam.Cache, (None, 0))``:
    activities batched along axis 0, weights shared); the same axis is used for
    its value after the call. Random key generators are split so every batch
    element draws its own keys; the generator advances once per call.

    **Arguments:**

    - `kwargs_mask`: a `Mask` or a pytree prefix of the keyword arguments giving
      each parameter's batch axis (`None` = not batched, the default).
    - `in_axes`, `out_axes`, `axis_name`, `axis_size`: as in `jax.vmap`.

    **Returns:** a decorator.

    **Example:**

    ```python
    @vmap(Mask(VodeParam | VodeParam.Cache, (None, 0)), in_axes=(0,), out_axes=(None, 0), axis_name="batch")
    def energy(x, *, model):
        y = model(x, None)
        return jax.lax.pmean(model.energy(), "batch"), y
    ```
    """

    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        @serialised
        def vectorised(*args: Any, **kwargs: Any) -> Any:
            check_positional(args, "vmap")
            structure, values = split(kwargs)
            params = structure.params
            n = len(params)
            axes = specs(kwargs_mask, kwargs, structure, None, "vmap") + [None] * (len(values) - n)
            size = _batch_size(args, in_axes, values[:n], axes[:n], axis_size)
            _check_batch_sizes(structure, values[:n], axes[:n], size)
            advanced: dict[int, Any] = {}
            if size is not None:
                for i, param in enumerate(params):
                    if isinstance(param, RandomKeyParam) and axes[i] is None and values[i] is not None:
                        keys = jax.random.split(values[i], size + 1)
                        advanced[i], values[i], axes[i] = keys[0], keys[1:], 0
            changed: list[int] = []

            def traced(values: list, *args: Any) -> tuple[Any, list]:
                out, updates = structure.call(fn, values, *args)
                changed.extend(sorted(updates))
                return out, [updates.get(i, v) for i, v in enumerate(values[:n])]

            arg_axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
            out, new_values = jax.vmap(
                traced,
                in_axes=(axes, *arg_axes),
                out_axes=(out_axes, axes[:n]),
                axis_name=axis_name,
                axis_size=axis_size,
            )(values, *args)
            merge(structure, {i: advanced.get(i, new_values[i]) for i in changed})
            return out

        return vectorised

    return decorator
