"""Stateful control flow: `scan`, `while_loop`, `cond` and `switch`.

Every body (and branch) is traced once, on abstract values: that trace tells which
parameters of the keyword arguments it changes, and is then replayed by the JAX
loop, so nested loops trace each body once. Only the changed parameters are
threaded through the loop carry (or the branch outputs) and written back; the
others, and the arrays of the keyword arguments, enter as constants, so a loop
over inference steps carries the activities and optimiser state but not the weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import jaxpr_as_fun

from ..core._state import Structure, merge, split
from ..core._tracing import serialised
from ._lift import check_positional


def _check_same_type(structure: Structure, positions: Sequence[int], old: list, new: list, what: str) -> None:
    for i in positions:
        before, after = old[i], new[i]
        same = jax.tree_util.tree_structure(before) == jax.tree_util.tree_structure(after) and all(
            jnp.shape(a) == jnp.shape(b) and jnp.result_type(a) == jnp.result_type(b)
            for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after))
        )
        if not same:
            raise TypeError(
                f"{what}: the parameter {structure.paths[i]} changes structure, shape or dtype inside the body "
                f"({_shapes(before)} -> {_shapes(after)}). "
                "Loop bodies and branches must keep every parameter's shape; clear Vode caches at "
                "the start and end of the body (use pcframe.utils.step(..., clear_params=VodeParam.Cache))."
            )


def _shapes(value: Any) -> list[str]:
    return [f"{jnp.result_type(a)}{list(jnp.shape(a))}" for a in jax.tree_util.tree_leaves(value)]


def _lifted(fn: Callable, structure: Structure, values: list, what: str) -> tuple[Callable, set[int]]:
    """``fn(*args)`` as ``(param values, *args) -> (out, new param values)``, and the positions it changes.

    The arrays of the keyword arguments enter as constants.
    """
    data = values[len(structure.params) :]
    changed: set[int] = set()

    def wrapped(carried: list, *args: Any) -> tuple[Any, list]:
        out, updates = structure.call(fn, list(carried) + data, *args)
        changed.update(updates)
        new = [updates.get(i, v) for i, v in enumerate(carried)]
        _check_same_type(structure, sorted(updates), list(carried), new, what)
        return out, new

    return wrapped, changed


def _traced_once(fn: Callable, *example: Any) -> Callable:
    """Trace `fn` once (its Python runs now, on abstract `example` arguments) and return a replay of the trace.

    The replay evaluates the recorded computation on arguments of the same structure
    without running the Python body again, so a loop can first learn what its body
    changes and then carry only that, and nested loops trace each body once.
    """
    closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*example)
    evaluate = jaxpr_as_fun(closed)
    out_tree = jax.tree_util.tree_structure(shapes)

    def replay(*args: Any) -> Any:
        return jax.tree_util.tree_unflatten(out_tree, evaluate(*jax.tree_util.tree_leaves(args)))

    return replay


def _with(values: list, positions: list[int], carried: list) -> list:
    full = list(values)
    for i, v in zip(positions, carried):
        full[i] = v
    return full


def _write(structure: Structure, positions: list[int], new: list) -> None:
    merge(structure, dict(zip(positions, new)))


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

    @serialised
    def run(*carry: Any, **kwargs: Any) -> tuple[Any, Any]:
        check_positional(carry, "scan")
        structure, values = split(kwargs)
        single = len(carry) == 1

        def body(x: Any, *carry_in: Any, **kw: Any) -> tuple[tuple, Any]:
            new_carry, y = fn(x, *carry_in, **kw)
            return ((new_carry,) if single else tuple(new_carry)), y

        step, changed = _lifted(body, structure, values, "scan")
        params = values[: len(structure.params)]
        x0 = None if xs is None else jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), xs)
        replay = _traced_once(step, params, x0, *carry)
        positions = sorted(changed)

        def scan_body(state: tuple, x: Any) -> tuple[tuple, Any]:
            carried, carry_in = state
            (carry_out, y), new = replay(_with(params, positions, carried), x, *carry_in)
            return ([new[i] for i in positions], carry_out), y

        (new, carry_out), ys = jax.lax.scan(
            scan_body, ([params[i] for i in positions], tuple(carry)), xs, length=length, reverse=reverse, unroll=unroll
        )
        _write(structure, positions, new)
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

    @serialised
    def run(*carry: Any, **kwargs: Any) -> Any:
        check_positional(carry, "while_loop")
        structure, values = split(kwargs)
        n = len(structure.params)
        single = len(carry) == 1

        def body(*carry_in: Any, **kw: Any) -> tuple:
            out = body_fn(*carry_in, **kw)
            return (out,) if single else tuple(out)

        step, changed = _lifted(body, structure, values, "while_loop")
        params = values[:n]
        replay = _traced_once(step, params, *carry)
        positions = sorted(changed)

        def loop_cond(state: tuple) -> Any:
            carried, carry_in = state
            return structure.call(cond_fn, _with(params, positions, carried) + values[n:], *carry_in)[0]

        def loop_body(state: tuple) -> tuple:
            carried, carry_in = state
            carry_out, new = replay(_with(params, positions, carried), *carry_in)
            return [new[i] for i in positions], carry_out

        new, carry_out = jax.lax.while_loop(loop_cond, loop_body, ([params[i] for i in positions], tuple(carry)))
        _write(structure, positions, new)
        return carry_out[0] if single else carry_out

    return run


def _branches(fns: Sequence[Callable], select: Callable, what: str):
    @serialised
    def run(selector: Any, *args: Any, **kwargs: Any) -> Any:
        check_positional(args, what)
        structure, values = split(kwargs)
        params = values[: len(structure.params)]
        lifted = [_lifted(fn, structure, values, what) for fn in fns]
        replays = [_traced_once(branch, params, *args) for branch, _ in lifted]
        positions = sorted(set().union(*(changed for _, changed in lifted)))

        def branch(replay: Callable, *args: Any) -> tuple[Any, list]:
            out, new = replay(params, *args)
            return out, [new[i] for i in positions]

        out, new = select(selector, [functools.partial(branch, replay) for replay in replays], *args)
        _write(structure, positions, new)
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
