"""Stateful `jit`: compile a function of a model, update the model in place."""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ..core._module import Module
from ..core._random import RKG
from ..core._structure import STRUCTURE
from ._tracking import check_positional, collect, run_installed, static_state_restored

_TOKENS: dict[tuple, int] = {}
_VALUE_OF = operator.attrgetter("_value")
_SET = object.__setattr__
_MAX_CACHED_STRUCTURES = 64
_RETRACES_BEFORE_WARNING = 8


class _StatefulJit:
    """A jitted function whose keyword arguments' parameters are read and written in place."""

    def __init__(self, fn: Callable, static_argnums: Sequence[int], donate_params: bool) -> None:
        self.fn = fn
        self.static_argnums = tuple(static_argnums)
        self._structures: dict[tuple, tuple] = {}
        self._calls: list[tuple] = []
        self._traces: dict[int, int] = {}
        self._compiled = jax.jit(
            self._pure,
            static_argnums=(0,) + tuple(i + 2 for i in self.static_argnums),
            donate_argnums=(1,) if donate_params else (),
        )
        functools.update_wrapper(self, fn)

    def _pure(self, token: int, values: list, *args: Any) -> tuple[Any, dict]:
        self._count_trace(token)
        params, kwargs = self._calls[-1]
        with static_state_restored((kwargs, RKG)):
            return run_installed(self.fn, params, values, args, kwargs)

    def _count_trace(self, token: int) -> None:
        """Warn once when one model structure keeps being traced: something changes on every call."""
        self._traces[token] = count = self._traces.get(token, 0) + 1
        if count == _RETRACES_BEFORE_WARNING:
            warnings.warn(
                f"pcframe.functional.jit: {getattr(self.fn, '__qualname__', self.fn)!r} has been traced and "
                f"compiled {count} times for the same model structure. Its static arguments or the shapes of "
                "its arguments keep changing: e.g. a new optax optimiser or DiscreteInference built inside the "
                "training loop (create them once, before the loop), or a smaller last batch (drop or pad it).",
                RuntimeWarning,
                stacklevel=2,
            )

    def _structure(self, kwargs: dict[str, Any]) -> tuple:
        objects = tuple(kwargs.values())
        key = (STRUCTURE.value, tuple(kwargs), tuple(map(id, objects)))
        found = self._structures.get(key)
        if found is not None:
            return found
        tracked = collect(kwargs)
        found = (tracked.params, _TOKENS.setdefault(tracked.signature, len(_TOKENS)))
        if all(isinstance(obj, Module) for obj in objects):
            if len(self._structures) >= _MAX_CACHED_STRUCTURES:
                self._structures.clear()
            self._structures[key] = found
        return found

    def lower(self, *args: Any, **kwargs: Any) -> jax.stages.Lowered:
        """Trace and lower the function for these arguments without running it or changing the model.

        **Arguments:** as for a call.

        **Returns:** the `jax.stages.Lowered` computation; ``.compile()`` gives XLA's
        ``cost_analysis()`` and ``memory_analysis()`` (argument, output and temporary bytes).

        **Example:** ``train.lower(x, y, model=model).compile().memory_analysis().temp_size_in_bytes``
        """
        check_positional(args, "jit")
        params, token = self._structure(kwargs)
        self._calls.append((params, kwargs))
        try:
            return self._compiled.lower(token, list(map(_VALUE_OF, params)), *args)
        finally:
            self._calls.pop()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        check_positional(args, "jit")
        params, token = self._structure(kwargs)
        values = list(map(_VALUE_OF, params))
        self._calls.append((params, kwargs))
        try:
            out, changed = self._compiled(token, values, *args)
        finally:
            self._calls.pop()
        for i, value in changed.items():
            _SET(params[i], "_value", value)
        return out


def jit(fn: Callable | None = None, *, static_argnums: int | Sequence[int] = (), donate_params: bool = False):
    """Compile a function with `jax.jit`, tracking the parameters of its keyword arguments.

    Positional arguments are ordinary JAX inputs. Keyword arguments (models,
    optimisers, dicts or lists of `Param`s) are tracked: their parameter values
    enter the compiled function as inputs, and every parameter the function
    changes is written back after the call, so the model is updated in place.
    The global `RKG` is tracked too.

    The parameter index of a model is cached per model structure, so a repeated
    call costs little more than a plain `jax.jit` call, and the call never waits
    for the result. A changed static value (e.g. a `static(...)` hyperparameter,
    the train/eval mode) or a changed set of parameters triggers a new trace.
    Static changes made *inside* the function (e.g. ``model.eval()``) are undone
    at the end of tracing, because later calls skip the Python body.

    **Arguments:**

    - `fn`: the function, ``fn(*args, **kwargs)``.
    - `static_argnums`: positions of positional arguments that are static.
    - `donate_params`: donate the parameter buffers to the computation (saves
      memory on accelerators; old arrays of the model become invalid).

    **Returns:** the compiled, stateful function.

    **Example:**

    ```python
    @jit(static_argnums=0)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        ...
    train_on_batch(8, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
    ```
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    if fn is None:
        return lambda f: _StatefulJit(f, static_argnums, donate_params)
    return _StatefulJit(fn, static_argnums, donate_params)
