"""What every stateful transform shares: splitting its keyword arguments, reading masks, guarding the call.

Each transform in this package is `pcframe.core.split` / `Structure.call` /
`pcframe.core.merge` lifted over one JAX transform; this module holds the pieces
around that primitive that are the same for all of them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax

from ..core._config import Config
from ..core._module import Module
from ..core._param import Param
from ..core._selection import Mask
from ..core._state import Structure
from ..core._structure import STRUCTURE
from ..core._tree import is_param
from ..core._walk import ARRAYS


class _RuntimeChecks:
    """Counts run-time checks (`equinox.error_if`) placed by pcframe while tracing."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


RUNTIME_CHECKS = _RuntimeChecks()


def note_runtime_check() -> None:
    """Record that the computation being traced can fail at run time (see `jit(donate_params=True)`)."""
    RUNTIME_CHECKS.count += 1


def structure_cache_key(kwargs: dict[str, Any]) -> tuple | None:
    """A key under which the structure of `kwargs` may be reused, or `None` when it must be split again.

    Valid while no module changes structurally (the global structure version) for
    keyword arguments that are modules or `Config`s (by identity: a `Config` is
    immutable, and the structure holds it) or bare arrays (their values are read
    afresh on every call).
    """
    parts = []
    for name, value in kwargs.items():
        if isinstance(value, (Module, Config)):
            parts.append((name, id(value)))
        elif isinstance(value, ARRAYS):
            parts.append((name, None))
        else:
            return None
    return (STRUCTURE.value, *parts)


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


def specs(mask: Any, kwargs: dict[str, Any], structure: Structure, default: Any, transform: str) -> list[Any]:
    """The mask's value for each of the structure's parameters (`default` for those it does not cover).

    `mask` is a `Mask` (evaluated on each parameter of the keyword arguments; the
    implicit `RKG` gets `default`) or a pytree prefix of the keyword arguments
    whose leaves are the values to use.
    """
    params = structure.params
    if mask is None:
        return [default] * len(params)
    if isinstance(mask, Mask):
        if mask.map_to is None:
            raise TypeError(
                f"{transform}: the Mask needs map_to=(value_if_false, value_if_true), e.g. "
                "Mask(VodeParam, (None, 0)) for vmap or Mask(VodeParam, (False, True)) for grad."
            )
        n = structure.n_kwargs_params
        return [mask.value_for(p) for p in params[:n]] + [default] * (len(params) - n)
    position = {id(p): i for i, p in enumerate(params)}
    result: list[Any] = [default] * len(params)
    assigned: dict[int, Any] = {}

    def assign(spec: Any, subtree: Any) -> None:
        for leaf in jax.tree_util.tree_leaves(subtree, is_leaf=is_param):
            i = position.get(id(leaf)) if isinstance(leaf, Param) else None
            if i is None:
                continue
            if i in assigned and assigned[i] != spec:
                raise ValueError(
                    f"{transform}: the mask gives two different values ({assigned[i]!r}, {spec!r}) to the "
                    f"same shared parameter {structure.paths[i]}."
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


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is over, then raise `KeyboardInterrupt`.

    Guards sections that cannot be rolled back, such as a call that donated the
    old parameter buffers and the write-back of its results. Outside the main
    thread (where Python delivers no signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
