"""Counting XLA compilations with `jax.monitoring` (never with timers)."""

import contextlib

import jax

_EVENT = "/jax/core/compile/backend_compile_duration"
_COUNT = [0]


def _listener(event, duration, **kwargs):
    if event == _EVENT:
        _COUNT[0] += 1


jax.monitoring.register_event_duration_secs_listener(_listener)


@contextlib.contextmanager
def count_compilations():
    """Yields a list whose single element is, after the block, the number of XLA compilations in it."""
    found = [0]
    start = _COUNT[0]
    try:
        yield found
    finally:
        found[0] = _COUNT[0] - start
