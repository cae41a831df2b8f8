"""Stateful control flow: `scan`, `while_loop`, `cond` and `switch`.

Parameters of the keyword arguments are threaded through the loop carry (or
the branch outputs). Only parameters the body actually changes are carried;
the others enter as constants, so a loop over inference steps carries the
activities and optimiser state but not the weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ..core._param import Param
from ..core._tree import param_paths
from ._tracking import check_positional, collect, installed, run_installed


def _changed_by(
    fns: Sequence[Callable], params: tuple[Param, ...], values: list, kwargs: dict, args: Sequence[tuple]
) -> list[int]:
    """Positions of the parameters that any of `fns` changes (found by abstract evaluation)."""
    positions: set[int] = set()
    for fn, fn_args in zip(fns, args):
        changes = functools.partial(_changes, fn, params, kwargs)
        positions.update(jax.eval_shape(changes, values, fn_args))
    return sorted(positions)


def _changes(fn: Callable, params: tuple[Param, ...], kwargs: dict, values: list, args: tuple) -> dict:
    return run_installed(fn, params, values, args, kwargs)[1]


def _check_same_type(
    params: tuple[Param, ...], positions: list[int], old: list, new: list, kwargs: dict, what: str
) -> None:
    for i, before, after in zip(positions, old, new):
        same = jax.tree_util.tree_structure(before) == jax.tree_util.tree_structure(after) and all(
            jax.numpy.shape(a) == jax.numpy.shape(b) and jax.numpy.result_type(a) == jax.numpy.result_type(b)
            for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after))
        )
        if not same:
            path = param_paths(kwargs).get(id(params[i]), type(params[i]).__name__)
            raise TypeError(
                f"{what}: the parameter {path} changes structure, shape or dtype inside the body "
                f"({_shapes(before)} -> {_shapes(after)}). "
                "Loop bodies and branches must keep every parameter's shape; clear Vode caches at "
                "the start and end of the body (use pcframe.utils.step(..., clear_params=VodeParam.Cache))."
            )


def _shapes(value: Any) -> list[str]:
    return [f"{jax.numpy.result_type(a)}{list(jax.numpy.shape(a))}" for a in jax.tree_util.tree_leaves(value)]


def _carried(fn: Callable, params, positions: list[int], values: list, kwargs: dict, what: str):
    """Wrap `fn(*args)` into ``(carried_values, *args) -> (out, new carried values)``."""

    def wrapped(carried: list, *args: Any) -> tuple[Any, list]:
        current = list(values)
        for i, v in zip(positions, carried):
            current[i] = v
        out, changed = run_installed(fn, params, current, args, kwargs)
        new = [changed.get(i, current[i]) for i in positions]
        _check_same_type(params, positions, carried, new, kwargs, what)
        return out, new

    return wrapped


def _write(params, positions: list[int], values: list) -> None:
    for i, v in zip(positions, values):
        params[i].value = v


def scan(fn: Callable, xs: Any = None, length: int | None = None, reverse: bool = False, unroll: int | bool = 1):
    """`jax.lax.scan` over a function that may update the parameters of its keyword arguments.

    ``scan(fn, xs)(*carry, **kwargs)`` calls ``fn(x, *carry, **kwargs)`` for each
    slice ``x`` of `xs`; `fn` returns ``(carry, y)`` (the carry bare when there is
    one carry value, a tuple otherwise). Returns ``(carry, ys)``. Changes to the
    keyword arguments' parameters persist from one iteration to the next and
    are written back at the end. The loop is compiled once, whatever its length.

    **Arguments:**

    - `fn`: ``fn(x, *carry, **kwargs) -> (carry, y)``.
    - `xs`: the sequence scanned over (leading axis), or `None` with `length`.
    - `length`: number of iterations when `xs` is `None`.
    - `reverse`: scan from the end.
    - `unroll`: loop unrolling, as in `jax.lax.scan`.

    **Example:**

    ```python
    def inference_step(t, x, *, model, optim_h):
        ...
        return x, energy
    _, energies = scan(inference_step, xs=jnp.arange(T))(x, model=model, optim_h=optim_h)
    ```
    """

    def run(*carry: Any, **kwargs: Any) -> tuple[Any, Any]:
        check_positional(carry, "scan")
        params = collect(kwargs).params
        values = [p._value for p in params]
        single = len(carry) == 1

        def body(x: Any, *carry_in: Any, **kw: Any) -> tuple[tuple, Any]:
            new_carry, y = fn(x, *carry_in, **kw)
            return ((new_carry,) if single else tuple(new_carry)), y

        x0 = None if xs is None else jax.tree_util.tree_map(lambda a: a[0], xs)
        positions = _changed_by([body], params, values, kwargs, [(x0, *carry)])
        step = _carried(body, params, positions, values, kwargs, "scan")

        def scan_body(state: tuple, x: Any) -> tuple[tuple, Any]:
            carried, carry_in = state
            (carry_out, y), new = step(carried, x, *carry_in)
            return (new, carry_out), y

        (new, carry_out), ys = jax.lax.scan(
            scan_body, ([values[i] for i in positions], tuple(carry)), xs, length=length, reverse=reverse, unroll=unroll
        )
        _write(params, positions, new)
        return (carry_out[0] if single else carry_out), ys

    return run


def while_loop(body_fn: Callable, cond_fn: Callable):
    """`jax.lax.while_loop` that may update the parameters of its keyword arguments.

    ``while_loop(body_fn, cond_fn)(*carry, **kwargs)`` repeats
    ``carry = body_fn(*carry, **kwargs)`` while ``cond_fn(*carry, **kwargs)`` is
    true and returns the final carry (bare when there is one value).

    **Arguments:**

    - `body_fn`: ``body_fn(*carry, **kwargs) -> carry``.
    - `cond_fn`: ``cond_fn(*carry, **kwargs) -> bool`` (must not change parameters).

    **Example:**

    ```python
    def body(t, *, model, optim_h): ...; return t + 1
    while_loop(body, lambda t, **kw: t < T)(0, model=model, optim_h=optim_h)
    ```
    """

    def run(*carry: Any, **kwargs: Any) -> Any:
        check_positional(carry, "while_loop")
        params = collect(kwargs).params
        values = [p._value for p in params]
        single = len(carry) == 1

        def body(*carry_in: Any, **kw: Any) -> tuple:
            out = body_fn(*carry_in, **kw)
            return (out,) if single else tuple(out)

        positions = _changed_by([body], params, values, kwargs, [carry])
        step = _carried(body, params, positions, values, kwargs, "while_loop")

        def loop_cond(state: tuple) -> Any:
            carried, carry_in = state
            current = list(values)
            for i, v in zip(positions, carried):
                current[i] = v
            with installed(params, current):
                return cond_fn(*carry_in, **kwargs)

        def loop_body(state: tuple) -> tuple:
            carried, carry_in = state
            carry_out, new = step(carried, *carry_in)
            return new, carry_out

        new, carry_out = jax.lax.while_loop(loop_cond, loop_body, ([values[i] for i in positions], tuple(carry)))
        _write(params, positions, new)
        return carry_out[0] if single else carry_out

    return run


def _branches(fns: Sequence[Callable], select: Callable, what: str):
    def run(selector: Any, *args: Any, **kwargs: Any) -> Any:
        check_positional(args, what)
        params = collect(kwargs).params
        values = [p._value for p in params]
        positions = _changed_by(fns, params, values, kwargs, [args] * len(fns))
        wrapped = [
            functools.partial(_carried(fn, params, positions, values, kwargs, what), [values[i] for i in positions])
            for fn in fns
        ]
        out, new = select(selector, wrapped, *args)
        _write(params, positions, new)
        return out

    return run


def cond(true_fn: Callable, false_fn: Callable):
    """`jax.lax.cond` whose branches may update the parameters of the keyword arguments.

    ``cond(true_fn, false_fn)(pred, *args, **kwargs)`` runs one branch, both
    called as ``fn(*args, **kwargs)``; both must return the same structure.

    **Arguments:**

    - `true_fn`: the branch run when the predicate is true.
    - `false_fn`: the branch run otherwise.

    **Example:** ``y = cond(lambda x, *, model: model(x), lambda x, *, model: x)(flag, x, model=model)``
    """
    return _branches([true_fn, false_fn], lambda pred, fns, *args: jax.lax.cond(pred, fns[0], fns[1], *args), "cond")


def switch(index: Any, fns: Sequence[Callable]):
    """`jax.lax.switch` whose branches may update the parameters of the keyword arguments.

    ``switch(index, fns)(*args, **kwargs)`` runs ``fns[index](*args, **kwargs)``
    (`index` is clamped to the valid range, as in JAX).

    **Arguments:**

    - `index`: the branch index (an int or an integer scalar array).
    - `fns`: the branches, each called as ``fn(*args, **kwargs)``.

    **Example:** ``y = switch(i, [f0, f1, f2])(x, model=model)``
    """
    run = _branches(list(fns), lambda i, branches, *args: jax.lax.switch(i, branches, *args), "switch")
    return lambda *args, **kwargs: run(index, *args, **kwargs)
