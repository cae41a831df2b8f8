"""Reuse a compiled function when only parameters it overwrites before reading them have changed.

A training step that starts with a feedforward initialisation overwrites every activity
before reading it. Its compiled program therefore does not depend on the activities it
is given, yet JAX compiles it again whenever they arrive in another form: `None` after
``model.clear_params(VodeParam)``, or of another batch size after an evaluation. A
training loop with an evaluation every few steps then compiles its step twice.

`WriteFirst` learns, from the program JAX traced, which parameters are *write-first*:
written by the function, and read by no operation of it. When a later call differs from
a compiled one only in such parameters, their values are replaced by zeros of the compiled
form, so the call runs the program already compiled. The zeros are read by nothing, so
the result is the one the program computes for any value there.

The one case where this differs from tracing again is a function whose Python code
branches on whether the parameter is `None` (not on its value) and then overwrites it
differently in each branch without reading it; the compiled program is then the one of
the branch taken when it was first traced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.core import Tracer
from jax.extend.core import Var

from ..core._walk import ARRAYS

_MAX_PLANS_PER_KEY = 8


@dataclass(frozen=True)
class Plan:
    """One compiled signature of a structure: its write-first positions and the form of everything else.

    - `positions`: indices into the values list of the write-first parameters;
    - `templates`: their shapes and dtypes in the compiled signature;
    - `rest`: the abstract values and tree structures of all other inputs.
    """

    positions: tuple[int, ...]
    templates: tuple[tuple[tuple[int, ...], Any], ...]
    rest: tuple

    def fits(self, values: Sequence[Any]) -> bool:
        """Whether the write-first values already have the compiled form (nothing to replace)."""
        return all(_has_form(values[i], form) for i, form in zip(self.positions, self.templates))

    def filled(self, values: Sequence[Any]) -> list[Any]:
        """`values` with every write-first entry replaced by zeros of its compiled form (put, not computed: no compilation)."""
        out = list(values)
        for i, (shape, dtype) in zip(self.positions, self.templates):
            out[i] = jax.device_put(np.zeros(shape, dtype))
        return out


class WriteFirst:
    """The write-first plans of one jitted function, per structure key.

    **Example** (inside `pcframe.functional.jit`):

    ```python
    values = write_first.fill(key, values, lambda: dynamic_args)
    out = compiled(key, values, *args)
    if traced_now:
        write_first.learn(key, values, dynamic_args, lambda: compiled.trace(key, values, *args))
    ```
    """

    def __init__(self) -> None:
        self._plans: dict[Any, list[Plan]] = {}

    def clear(self) -> None:
        self._plans.clear()

    def fill(self, key: Any, values: list[Any], dynamic_args: Callable[[], Sequence[Any]]) -> list[Any]:
        """The values to call with: the given ones, or ones that reach a compiled signature of `key`.

        `dynamic_args()` gives the call's traced positional arguments (asked for only when needed).
        A replacement is made only when the call matches a learnt signature exactly outside its
        write-first positions, so the program run is the one whose positions were learnt.
        """
        plans = self._plans.get(key)
        if not plans or any(plan.fits(values) for plan in plans):
            return values
        args = dynamic_args()
        for plan in plans:
            if plan.rest == _rest(values, args, plan.positions):
                return plan.filled(values)
        return values

    def learn(self, key: Any, values: list[Any], dynamic_args: Sequence[Any], trace: Callable[[], Any]) -> None:
        """Record the write-first positions of the signature just compiled for `key`.

        `trace()` returns JAX's `Traced` for the call (cached by JAX: the function is not run again).
        Nothing is learnt for a call inside another transform (its values are tracers).
        """
        if any(isinstance(leaf, Tracer) for leaf in jax.tree_util.tree_leaves((values, list(dynamic_args)))):
            return
        traced = trace()
        jaxpr = traced.jaxpr.jaxpr
        read = {v for eqn in jaxpr.eqns for v in eqn.invars if isinstance(v, Var)}
        read.update(v for v in jaxpr.outvars if isinstance(v, Var))
        written = set(traced.out_info[1])
        invars = iter(jaxpr.invars)
        positions = []
        for i, value in enumerate(values):
            leaves = [next(invars) for _ in jax.tree_util.tree_leaves(value)]
            if i in written and isinstance(value, ARRAYS) and leaves[0] not in read:
                positions.append(i)
        if not positions:
            return
        plan = Plan(
            tuple(positions),
            tuple((values[i].shape, values[i].dtype) for i in positions),
            _rest(values, dynamic_args, positions),
        )
        plans = [p for p in self._plans.get(key, []) if p != plan]
        self._plans[key] = [plan, *plans][:_MAX_PLANS_PER_KEY]


def _has_form(value: Any, form: tuple[tuple[int, ...], Any]) -> bool:
    return isinstance(value, ARRAYS) and value.shape == form[0] and value.dtype == form[1]


def _rest(values: Sequence[Any], dynamic_args: Sequence[Any], skip: Sequence[int]) -> tuple:
    """The abstract form (tree structure, abstract value of each leaf) of every input but `skip`."""
    skipped = set(skip)
    kept = [v for i, v in enumerate(values) if i not in skipped]
    leaves, treedef = jax.tree_util.tree_flatten((kept, list(dynamic_args)))
    return (treedef, tuple(jax.typeof(leaf) for leaf in leaves))
