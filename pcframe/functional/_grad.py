"""Stateful `grad` and `value_and_grad` with respect to masked parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import GRADIENT_OF, Param
from ..core._state import merge, split
from ..core._tracing import serialised
from ..core._tree import is_param
from ._lift import check_positional, specs


def _gradient_tree(kwargs: dict[str, Any], gradients: dict[int, Any]) -> dict[str, Any]:
    """The keyword arguments' structure with each differentiated `Param` holding its gradient, others `None`.

    Each gradient is a copy of its parameter (same type and metadata, pcax's layout)
    that also names the parameter it belongs to, so `Optim.step` finds it by identity.
    """

    def leaf(x: Any) -> Any:
        if isinstance(x, Param) and id(x) in gradients:
            copy = object.__new__(type(x))
            copy.__dict__.update(x.__dict__)
            copy.__dict__["_value"] = gradients[id(x)]
            copy.__dict__[GRADIENT_OF] = x
            return copy
        return None

    return jax.tree_util.tree_map(leaf, kwargs, is_leaf=is_param)


def _differentiate(fn: Callable, kwargs_mask: Any, argnums: int | Sequence[int] | None, has_aux: bool, name: str):
    single_argnum = isinstance(argnums, int)
    argnums = () if argnums is None else ((argnums,) if single_argnum else tuple(argnums))

    @functools.wraps(fn)
    @serialised
    def differentiated(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        check_positional(args, name)
        structure, values = split(kwargs)
        flags = specs(kwargs_mask, kwargs, structure, False, name)
        chosen = [i for i, flag in enumerate(flags) if flag]
        if not chosen and not argnums:
            raise ValueError(
                f"{name}: the mask {kwargs_mask!r} selects no parameter of the keyword arguments {sorted(kwargs)} "
                "and no positional argnums were given, so there is nothing to differentiate. "
                "Check the mask's filter (e.g. Mask(LayerParam, (False, True))) and that the parameters it "
                "should select are not frozen."
            )
        for i in chosen:
            if values[i] is None:
                raise ValueError(
                    f"{name}: the parameter {structure.paths[i]} ({type(structure.params[i]).__name__}) selected for "
                    "differentiation has no value yet. Run a forward pass (e.g. under STATUS.INIT) before "
                    "differentiating."
                )

        def pure(chosen_values: list, *args: Any) -> tuple[Any, tuple]:
            full = list(values)
            for i, v in zip(chosen, chosen_values):
                full[i] = v
            out, updates = structure.call(fn, full, *args)
            value, aux = out if has_aux else (out, None)
            if not (hasattr(value, "shape") and jnp.shape(value) == ()):
                raise TypeError(
                    f"{name}: the function must return a scalar JAX array (got "
                    f"{'shape ' + str(jnp.shape(value)) if hasattr(value, 'shape') else type(value).__name__}); "
                    "sum or average the energy, e.g. jax.lax.pmean(model.energy().sum(), 'batch'), and return "
                    "jnp.asarray(value) for a constant."
                )
            return value, (aux, updates)

        (value, (aux, updates)), grads = jax.value_and_grad(
            pure, argnums=(0,) + tuple(a + 1 for a in argnums), has_aux=True
        )([values[i] for i in chosen], *args)
        merge(structure, updates)
        tree = _gradient_tree(kwargs, {id(structure.params[i]): g for i, g in zip(chosen, grads[0])})
        if argnums:
            arg_grads = grads[1] if single_argnum else tuple(grads[1:])
            tree = (arg_grads, tree)
        return ((value, aux) if has_aux else value), tree

    return differentiated


def value_and_grad(kwargs_mask: Any, argnums: int | Sequence[int] | None = None, has_aux: bool = False):
    """Value and gradient of a scalar function w.r.t. the parameters a mask selects.

    The mask (e.g. ``Mask(LayerParam, (False, True))``) marks which tracked
    parameters of the keyword arguments are differentiated. The gradient has
    the structure of the keyword arguments: a dict ``{name: tree}`` where every
    differentiated `Param` is replaced by a `Param` of the same type holding its
    gradient and everything else by `None`; pass ``g["model"]`` to
    `Optim.step`. With `argnums`, the result is ``(positional_grads, kwargs_grads)``.
    Parameters the function changes (e.g. Vode caches) are written back.

    **Arguments:**

    - `kwargs_mask`: a `Mask` with ``map_to=(False, True)`` or a pytree prefix of booleans.
    - `argnums`: positional arguments to differentiate as well (optional).
    - `has_aux`: the function returns ``(value, aux)``.

    **Returns:** a decorator; the decorated function returns ``(value, grads)``
    or ``((value, aux), grads)``.

    **Example:**

    ```python
    (e, y), g = value_and_grad(Mask(LayerParam, (False, True)), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"])
    ```
    """
    return lambda fn: _differentiate(fn, kwargs_mask, argnums, has_aux, "value_and_grad")


def grad(kwargs_mask: Any, argnums: int | Sequence[int] | None = None, has_aux: bool = False):
    """Gradient of a scalar function w.r.t. the parameters a mask selects (see `value_and_grad`).

    **Arguments:**

    - `kwargs_mask`: a `Mask` selecting the parameters of the keyword arguments to differentiate.
    - `argnums`: positional arguments to differentiate as well (as in `jax.grad`).
    - `has_aux`: the function returns ``(value, aux)``.

    **Returns:** a decorator; the decorated function returns ``grads`` or ``(grads, aux)``.

    **Example:** ``g = grad(Mask(LayerParam, (False, True)))(loss)(x, model=model)``
    """

    def decorator(fn: Callable) -> Callable:
        inner = _differentiate(fn, kwargs_mask, argnums, has_aux, "grad")

        @functools.wraps(fn)
        def gradient(*args: Any, **kwargs: Any) -> Any:
            out, grads = inner(*args, **kwargs)
            return (grads, out[1]) if has_aux else grads

        return gradient

    return decorator
