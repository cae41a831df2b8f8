"""Which parameters may hold traced values: the guard against tracers leaking into a model.

A pcframe transform installs traced values into the parameters it tracks while
JAX traces, and takes them out again before it returns. Any *other* parameter
that receives a traced value has escaped pcframe's tracking: the model was
captured by closure inside a transform, or the code runs under `jax.jit`,
`eqx.filter_jit` or `jax.vmap` without a pcframe transform around the model.
Left alone, such a parameter keeps a dead tracer (and every later use fails far
from the cause) or, worse, the update is silently baked into the compiled code.
`check_write` refuses it at the point it happens.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from jax.core import Tracer

_F = TypeVar("_F", bound=Callable[..., Any])

STATE_LOCK = threading.RLock()
"""Held by every stateful transform from reading its parameters to writing them back (and by `RKG` draws).

Models can share state that no thread owns (the global `RKG`, structure keys of equal
models), and a transform installs traced values into the very `Param` objects it tracks
while it traces. Two threads that each train their own model therefore run their calls one
at a time, each call whole: the result is what the calls give one after the other, and no
thread ever sees another's traced values. Re-entrant, so nested transforms take it again.
"""


def serialised(fn: _F) -> _F:
    """Run `fn` holding `STATE_LOCK` (see there): the wrapper of every stateful transform's call."""

    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with STATE_LOCK:
            return fn(*args, **kwargs)

    return locked  # type: ignore[return-value]


class _Tracking(threading.local):
    """The ids each enclosing transform of *this thread* tracks, innermost last."""

    def __init__(self) -> None:
        self.active: list[set[int]] = []


_TRACKING = _Tracking()


class LeakedTracerError(RuntimeError):
    """A traced value was written into a `Param` that no enclosing pcframe transform tracks."""


@contextmanager
def tracked(ids: set[int]) -> Iterator[None]:
    """Allow the parameters with these ids (and parameters created in the block) to hold traced values."""
    active = _TRACKING.active
    active.append(set(ids))
    try:
        yield
    finally:
        active.pop()


def adopt(param: Any) -> None:
    """A parameter created inside a transform may hold that transform's traced values."""
    active = _TRACKING.active
    if active:
        active[-1].add(id(param))


def is_tracked(param: Any) -> bool:
    """Whether an enclosing pcframe transform tracks `param`."""
    key = id(param)
    return any(key in ids for ids in _TRACKING.active)


def leak_message(name: str) -> str:
    """The explanation given when `name` would be left holding a traced value."""
    return (
        f"{name} would be left holding a traced value (a JAX tracer): no enclosing pcframe transform tracks it. "
        "This happens when a model or optimiser is captured by closure inside pcframe.functional.jit (or "
        "another pcframe transform), or when a step runs under jax.jit, eqx.filter_jit or jax.vmap, which trace "
        "or copy the model without pcframe. Pass every model and optimiser as a keyword argument of a "
        "pcframe.functional.jit function instead: `@pxf.jit def step(x, y, *, model, optim): ...` called as "
        "`step(x, y, model=model, optim=optim)`; the packaged steps (train_supervised, ...) need no jit around them."
    )


def check_write(param: Any, value: Any, name: str | None = None) -> None:
    """Refuse to store a traced `value` in an untracked `param` (raises `LeakedTracerError` naming it, or its type)."""
    if isinstance(value, Tracer) and not is_tracked(param):
        raise LeakedTracerError(leak_message(f"The parameter {name or type(param).__name__}"))
