"""Timing helpers that need only JAX (shared with the PCX comparison, which runs in its own environment)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import numpy as np
from workloads import Batch, Variant, Weights


def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by `fn()`, waiting for its result."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def max_abs_diff(a: Weights, b: Weights) -> float:
    """Largest absolute difference between two sets of weights."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


def time_interleaved(variants: list[Variant], batches: list[Batch], warmup: int, reps: int) -> dict[str, list[float]]:
    """Per-call seconds of each variant; every round calls each variant once, in a rotating order."""
    for i in range(warmup):
        for v in variants:
            jax.block_until_ready(v.step(*batches[i % len(batches)]))
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for i in range(reps):
        x, y = batches[i % len(batches)]
        shift = i % len(variants)
        for v in variants[shift:] + variants[:shift]:
            times[v.name].append(timed(lambda v=v, x=x, y=y: v.step(x, y)))
    return times
