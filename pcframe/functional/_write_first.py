"""Reuse a compiled function when only parameters it overwrites before reading them have changed.

A training step that starts with a feedforward initialisation overwrites every activity
before reading it. Its compiled program therefore does not depend on the activities it
is given, yet JAX compiles it again whenever they arrive in another form: `None` after
``model.clear_params(VodeParam)``, or of another batch size. A training loop that
clears the activities for an evaluation every few steps then compiles its step twice.

`WriteFirst` learns, from the program JAX traced, which parameters are *write-first*:
written by the function and read by none of its operations. When a later call differs from
a compiled one only in such parameters, the function is traced (not compiled) for the
call's own values, and if that gives the very program already compiled (the same lowered
module: the write-first inputs are dropped from both), the call runs it, their values
replaced by zeros of the compiled form, which nothing reads. So the result is exactly the
one a new compilation would give. The comparison is made once per form of those inputs
(`None`, or a shape and dtype); a function whose program does depend on it (e.g. on the
shape of the value it overwrites, as ``p.value = jnp.zeros_like(p.value)`` does) is
compiled again as usual.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.core import Tracer
from jax.extend.core import Var

from ..core._walk import ARRAYS

_MAX_PLANS_PER_KEY = 8
_MAX_FORMS_PER_PLAN = 16


class Plan:
    """One compiled signature of a structure: its write-first positions and the form of everything else.

    **Arguments:**

    - `positions`: indices into the values list of the write-first parameters;
    - `templates`: their shapes and dtypes in the compiled signature;
    - `rest`: the abstract values and tree structures of all other inputs;
    - `traced`: JAX's `Traced` of the compiled signature (lowered when first compared).
    """

    def __init__(self, positions: tuple[int, ...], templates: tuple, rest: tuple, traced: Any) -> None:
        self.positions = positions
        self.templates = templates
        self.rest = rest
        self._traced = traced
        self._program: bytes | None = None
        self._verdicts: dict[tuple, bool] = {}

    def same_signature(self, other: Plan) -> bool:
        return (self.positions, self.templates, self.rest) == (other.positions, other.templates, other.rest)

    def fits(self, values: Sequence[Any]) -> bool:
        """Whether the write-first values already have the compiled form (nothing to replace)."""
        return all(_form(values[i]) == form for i, form in zip(self.positions, self.templates))

    def runs(self, values: Sequence[Any], trace: Callable[[list[Any]], Any]) -> bool:
        """Whether a call with `values` gives the compiled program (checked once per form of the write-first values).

        `trace(values)` returns JAX's `Traced` for the call; a trace that fails means no.
        """
        form = tuple(_form(values[i]) for i in self.positions)
        verdict = self._verdicts.get(form)
        if verdict is None:
            try:
                verdict = _digest(trace(list(values))) == self._program_digest()
            except Exception:  # the call itself will raise it, or compile its own program
                verdict = False
            if len(self._verdicts) >= _MAX_FORMS_PER_PLAN:
                self._verdicts.clear()
            self._verdicts[form] = verdict
        return verdict

    def filled(self, values: Sequence[Any]) -> list[Any]:
        """`values` with every write-first entry replaced by zeros of its compiled form (put, not computed: no compilation)."""
        out = list(values)
        for i, (shape, dtype) in zip(self.positions, self.templates):
            out[i] = jax.device_put(np.zeros(shape, dtype))
        return out

    def _program_digest(self) -> bytes:
        if self._program is None:
            self._program = _digest(self._traced)
            self._traced = None
        return self._program


class WriteFirst:
    """The write-first plans of one jitted function, per structure key.

    **Example** (inside `pcframe.functional.jit`):

    ```python
    values = write_first.fill(key, values, lambda: dynamic_args, lambda v: compiled.trace(key, v, *args))
    out = compiled(key, values, *args)
    if traced_now:
        write_first.learn(key, values, dynamic_args, lambda: compiled.trace(key, values, *args))
    ```
    """

    def __init__(self) -> None:
        self._plans: dict[Any, list[Plan]] = {}

    def clear(self) -> None:
        self._plans.clear()

    def fill(
        self,
        key: Any,
        values: list[Any],
        dynamic_args: Callable[[], Sequence[Any]],
        trace: Callable[[list[Any]], Any],
    ) -> list[Any]:
        """The values to call with: the given ones, or ones that run a program already compiled for `key`.

        `dynamic_args()` gives the call's traced positional arguments and `trace(values)` JAX's
        `Traced` for a call (both asked for only when the write-first values have another form).
        Values are replaced only for a compiled signature that the call matches exactly outside
        its write-first positions, and whose program tracing this call gives again.
        """
        plans = self._plans.get(key)
        if not plans or any(plan.fits(values) for plan in plans):
            return values
        args = dynamic_args()
        for plan in plans:
            if plan.rest == _rest(values, args, plan.positions) and plan.runs(values, trace):
                return plan.filled(values)
        return values

    def learn(self, key: Any, values: list[Any], dynamic_args: Sequence[Any], trace: Callable[[], Any]) -> None:
        """Record the write-first positions of the signature just compiled for `key`.

        `trace()` returns JAX's `Traced` for the call (cached by JAX: the function is not run again).
        Nothing is learnt for a call inside another transform (its values are tracers), nor when
        JAX cannot give the trace.
        """
        if any(isinstance(leaf, Tracer) for leaf in jax.tree_util.tree_leaves((values, list(dynamic_args)))):
            return
        try:
            traced = trace()
        except Exception:  # learning is an optimisation: the call itself has succeeded and been written
            return
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
            traced,
        )
        others = [p for p in self._plans.get(key, []) if not p.same_signature(plan)]
        self._plans[key] = [plan, *others][:_MAX_PLANS_PER_KEY]


def _digest(traced: Any) -> bytes:
    """A digest of what JAX's `Traced` computes: its lowered module (what XLA compiles) and the structure of its outputs."""
    structure = str(jax.tree_util.tree_structure(traced.out_info))
    return hashlib.sha256((structure + traced.lower().as_text()).encode()).digest()


def _form(value: Any) -> Any:
    """What a trace can see of a value it does not read: `None`, or its shape and dtype (else its type)."""
    if value is None:
        return None
    if isinstance(value, ARRAYS):
        return (value.shape, value.dtype)
    return type(value)


def _rest(values: Sequence[Any], dynamic_args: Sequence[Any], skip: Sequence[int]) -> tuple:
    """The abstract form (tree structure, abstract value of each leaf) of every input but `skip`."""
    skipped = set(skip)
    kept = [v for i, v in enumerate(values) if i not in skipped]
    leaves, treedef = jax.tree_util.tree_flatten((kept, list(dynamic_args)))
    return (treedef, tuple(jax.typeof(leaf) for leaf in leaves))
