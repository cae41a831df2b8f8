"""Stateful `jit`: compile a function of a model, update the model in place."""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax

from ..core._module import Module
from ..core._selection import as_predicate, filter_text
from ..core._state import Structure, StructureKey, merge, split
from ..core._tracing import serialised
from ._lift import RUNTIME_CHECKS, check_positional, deferred_interrupts, structure_cache_key

_MAX_CACHED_STRUCTURES = 64
_RETRACES_BEFORE_WARNING = 8
_INSTANCES: weakref.WeakSet = weakref.WeakSet()


def reset_retrace_counts() -> None:
    """Forget how often each live jitted function was traced (tests start each case from zero)."""
    for instance in list(_INSTANCES):
        instance._traces.clear()


class _StatefulJit:
    """A jitted function whose keyword arguments' parameters are read and written in place.

    The compiled function is pure: ``(key, values, *args) -> (out, updates)``, with the
    structure's hashable key as its static argument (see `pcframe.core.split`).
    """

    def __init__(self, fn: Callable, static_argnums: Sequence[int], donate_params: bool, overwrites: Any) -> None:
        self.fn = fn
        self.static_argnums = tuple(static_argnums)
        self.donate_params = donate_params
        self.overwrites = None if overwrites is None else as_predicate(overwrites)
        self._overwrites_text = filter_text(overwrites)
        self._structures: dict[tuple, tuple[Structure, tuple[int, ...]]] = {}
        self._keys_of: dict[int, set[tuple]] = {}  # id of a live keyword module -> the cache keys that hold it
        self._traces: dict[StructureKey, int] = {}
        self._compiled = jax.jit(
            self._pure,
            static_argnums=(0,) + tuple(i + 2 for i in self.static_argnums),
            donate_argnums=(1,) if donate_params else (),
        )
        functools.update_wrapper(self, fn)
        _INSTANCES.add(self)

    def _pure(self, key: StructureKey, values: list, *args: Any) -> tuple[Any, dict[int, Any]]:
        self._count_trace(key)
        checks = RUNTIME_CHECKS.count
        out = key.structure().call(self.fn, values, *args, restore_static=True)
        if self.donate_params and RUNTIME_CHECKS.count != checks:
            raise ValueError(
                f"jit(donate_params=True): {getattr(self.fn, '__qualname__', self.fn)!r} contains run-time checks "
                "(check_finite=True). A check that fails after the parameters were donated would delete every "
                "weight of the model. Use donate_params=False while checking, or check_finite=False while donating."
            )
        return out

    def _count_trace(self, key: StructureKey) -> None:
        """Warn once when one model structure keeps being traced: something changes on every call."""
        if len(self._traces) >= _MAX_CACHED_STRUCTURES and key not in self._traces:
            self._traces.clear()
        self._traces[key] = count = self._traces.get(key, 0) + 1
        if count == _RETRACES_BEFORE_WARNING:
            warnings.warn(
                f"pcframe.functional.jit: {getattr(self.fn, '__qualname__', self.fn)!r} has been traced and "
                f"compiled {count} times for the same model structure. Its static arguments or the shapes of "
                "its arguments keep changing: e.g. a new optax optimiser or DiscreteInference built inside the "
                "training loop (create them once, before the loop), or a smaller last batch (drop or pad it).",
                RuntimeWarning,
                stacklevel=4,
            )

    def _structure(self, kwargs: dict[str, Any]) -> tuple[Structure, list[Any]]:
        """The structure of `kwargs` (cached while it holds) and the values to call with.

        The values of the parameters declared in `overwrites` are replaced by `None`.
        """
        cache_key = structure_cache_key(kwargs)
        found = self._structures.get(cache_key) if cache_key is not None else None
        if found is not None and found[0].is_current():  # e.g. a list inside a tuple attribute edited in place
            structure, overwritten = found
            structure.key.bind(structure)  # another structure with the same signature may have been split since
            values = structure.read(kwargs)
        else:
            structure, values = split(kwargs)
            overwritten = self._overwritten(structure)
            if cache_key is not None:
                self._remember(cache_key, (structure, overwritten), kwargs)
        for i in overwritten:
            values[i] = None
        return structure, values

    def _remember(self, cache_key: tuple, entry: tuple, kwargs: dict[str, Any]) -> None:
        """Cache `entry` under `cache_key` (which holds the ids of the keyword modules) while those modules live.

        The structure holds the modules weakly; when one is collected, its entries go (before its
        id can be given to another object), so the cache keeps no model alive. One finalizer per
        module and jitted function, however often the module's structure is split again.
        """
        if len(self._structures) >= _MAX_CACHED_STRUCTURES:
            self._structures.clear()
            for keys in self._keys_of.values():
                keys.clear()
        self._structures[cache_key] = entry
        for value in kwargs.values():
            if isinstance(value, Module):
                keys = self._keys_of.get(id(value))
                if keys is None:
                    keys = self._keys_of[id(value)] = set()
                    weakref.finalize(value, self._forget, id(value))
                keys.add(cache_key)

    def _forget(self, module_id: int) -> None:
        """Drop every cached structure that holds the collected module `module_id`."""
        for key in self._keys_of.pop(module_id, ()):
            self._structures.pop(key, None)
            for keys in self._keys_of.values():
                keys.discard(key)

    def _overwritten(self, structure: Structure) -> tuple[int, ...]:
        """Positions of the parameters the function declares it overwrites (refused when the filter matches none)."""
        if self.overwrites is None:
            return ()
        n = structure.n_kwargs_params
        positions = tuple(i for i, p in enumerate(structure.params[:n]) if self.overwrites(p))
        if not positions:
            raise ValueError(
                f"jit(overwrites=...): {getattr(self.fn, '__qualname__', self.fn)!r} declares that it overwrites "
                f"parameters matching {self._overwrites_text}, but its keyword arguments hold none. Check the filter "
                "(e.g. overwrites=VodeParam for the activities of a model passed by keyword)."
            )
        return positions

    @serialised
    def lower(self, *args: Any, **kwargs: Any) -> jax.stages.Lowered:
        """Trace and lower the function for these arguments without running it or changing the model.

        **Arguments:** as for a call.

        **Returns:** the `jax.stages.Lowered` computation; ``.compile()`` gives XLA's
        ``cost_analysis()`` and ``memory_analysis()`` (argument, output and temporary bytes).

        **Example:** ``train.lower(x, y, model=model).compile().memory_analysis().temp_size_in_bytes``
        """
        check_positional(args, "jit")
        structure, values = self._structure(kwargs)
        return self._compiled.lower(structure.key, values, *args)

    @serialised
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        check_positional(args, "jit")
        structure, values = self._structure(kwargs)
        if not self.donate_params:
            out, updates = self._run(structure, values, args)
            merge(structure, updates)
            return out
        with deferred_interrupts():  # once donated, the old values are gone: the new ones must land
            out, updates = self._run(structure, values, args)
            merge(structure, updates)
        return out

    def _run(self, structure: Structure, values: list, args: tuple) -> tuple[Any, dict[int, Any]]:
        """Call the compiled function; a Ctrl-C is raised as `KeyboardInterrupt`, whenever it lands.

        JAX compares its arguments' pytree metadata with Python code before it runs anything;
        a Ctrl-C landing there comes out as a `ValueError` raised from the `KeyboardInterrupt`.
        Nothing has run or been written by then, so the interrupt itself is raised instead.
        """
        try:
            return self._compiled(structure.key, values, *args)
        except ValueError as error:
            if isinstance(error.__cause__, KeyboardInterrupt):
                raise error.__cause__ from None
            raise


def jit(
    fn: Callable | None = None,
    *,
    static_argnums: int | Sequence[int] = (),
    donate_params: bool = False,
    overwrites: Any = None,
):
    """Compile a function with `jax.jit`, tracking the parameters of its keyword arguments.

    Positional arguments are ordinary JAX inputs. Keyword arguments (models,
    optimisers, dicts or lists of `Param`s, arrays) are split with
    `pcframe.core.split`: their parameter values and arrays enter the compiled
    function as traced inputs, and every parameter the function changes is
    written back after the call, all or nothing, so the model is updated in
    place. The global `RKG` is tracked too.

    The compiled function is cached under the structure of the keyword
    arguments, compared by value: a changed static value (a `static(...)`
    hyperparameter, a dict or list attribute edited in place, the train/eval
    mode) or a changed set of parameters triggers a new trace; new values or new
    batches of the same shapes do not. A repeated call costs little more than a
    plain `jax.jit` call and never waits for the result.

    Parameters the function sets before it reads them (the activities of a step
    that starts with a feedforward initialisation) are declared with `overwrites`:
    they enter the compiled function as `None`, whatever they hold outside, so
    activities cleared or left at another batch size by an evaluation in between
    compile nothing new. A declared parameter the function reads before setting
    it holds `None` there (a `Vode` then says that ``h`` has no value). Static changes made *inside* the function (e.g.
    ``model.eval()``) are undone at the end of tracing, because later calls skip
    the Python body.

    **Arguments:**

    - `fn`: the function, ``fn(*args, **kwargs)``.
    - `static_argnums`: positions of positional arguments that are static.
    - `donate_params`: donate the parameter buffers to the computation (saves
      memory on accelerators; old arrays of the model become invalid). Refused
      for functions with run-time checks (``check_finite=True``), which could fail
      after donating; Ctrl-C during a donating call is held until the new values
      are written.
    - `overwrites`: a filter (a `Param` type such as `VodeParam`, or ``m(...)``) of
      the parameters the function sets before reading them; they enter as `None`.
      Refused when it matches none of the keyword arguments' parameters.

    **Returns:** the compiled, stateful function.

    **Example:**

    ```python
    @jit(static_argnums=0, overwrites=VodeParam)  # activities start from a feedforward pass
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        with step(model, STATUS.INIT, clear_params=VodeParam.Cache):
            forward(x, y, model=model)
        ...
    train_on_batch(8, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
    ```
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    if fn is None:
        return lambda f: _StatefulJit(f, static_argnums, donate_params, overwrites)
    return _StatefulJit(fn, static_argnums, donate_params, overwrites)
