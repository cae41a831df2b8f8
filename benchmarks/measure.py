"""Timing, agreement checks and the results table of the benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from timing import max_abs_diff, timed
from workloads import Batch, Variant, Weights

import pcframe as px
import pcframe.functional as pxf

ATOL, RTOL = 1e-5, 1e-4
DISPATCH_PARAMS = 20


@dataclass
class Row:
    """One line of the results table (times in seconds); the first row of a workload is its baseline."""

    workload: str
    variant: str
    times: list[float]
    first_call: float
    max_diff: float | None
    unit: str = "ms"


def check_agreement(other: Variant, ref_after: Weights, atol: float = ATOL) -> float:
    """Assert that `other`'s weights after its first step match the reference's; return the max abs difference."""
    other_after = other.weights()
    for (W, b), (W_ref, b_ref) in zip(other_after, ref_after):
        np.testing.assert_allclose(W, W_ref, rtol=RTOL, atol=atol, err_msg=f"{other.name}: weights differ")
        np.testing.assert_allclose(b, b_ref, rtol=RTOL, atol=atol, err_msg=f"{other.name}: biases differ")
    return max_abs_diff(other_after, ref_after)


def first_steps(
    variants: list[Variant], batch: Batch, weights: Weights, name: str, atol: float = ATOL
) -> tuple[dict, dict]:
    """Time every variant's first call (trace + compile + run) and check agreement with the first (the reference).

    `atol` is the agreement tolerance (`ATOL` unless a long integration needs more).

    **Returns:** ``(first_call_seconds, max_abs_dw)`` keyed by variant name.
    """
    first = {v.name: timed(lambda v=v: v.step(*batch)) for v in variants}
    ref_after = variants[0].weights()
    moved = max_abs_diff(ref_after, weights)
    assert moved > 10 * atol, f"{name}: one step barely changed the weights ({moved:.1e}); the check would be void"
    diffs: dict[str, float | None] = {variants[0].name: None}
    for v in variants[1:]:
        diffs[v.name] = check_agreement(v, ref_after, atol)
        print(f"  {v.name} agrees with the reference after one step: max |dw| = {diffs[v.name]:.1e}")
    print(f"  (one step moved the weights by up to {moved:.1e}; tolerance atol={atol}, rtol={RTOL})")
    return first, diffs


def paired(times: list[float], base: list[float]) -> tuple[float, float]:
    """Median over rounds of this variant's time divided by, and minus, the baseline's time in the same round."""
    return statistics.median(t / b for t, b in zip(times, base)), statistics.median(t - b for t, b in zip(times, base))


def compiled_bytes(variant: Variant, batch: Batch) -> dict[str, int]:
    """XLA's memory analysis of the compiled step: argument, output and temporary bytes (deterministic)."""
    stats = variant.lower(*batch).compile().memory_analysis()
    return {
        "argument": stats.argument_size_in_bytes,
        "output": stats.output_size_in_bytes,
        "temp": stats.temp_size_in_bytes,
        "alias": stats.alias_size_in_bytes,
    }


def memory_table(workload: str, variants: list[Variant], batch: Batch) -> str:
    """Markdown table of the compiled steps' memory, with the total's ratio to the first variant's."""
    lines = [
        "| workload | variant | arguments (MiB) | outputs (MiB) | temporaries (MiB) | total (MiB) | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = None
    for v in variants:
        b = compiled_bytes(v, batch)
        total = b["argument"] + b["output"] + b["temp"] - b["alias"]
        base = base or total
        mib = [f"{b[k] / 2**20:.2f}" for k in ("argument", "output", "temp")]
        lines.append(f"| {workload} | {v.name} | {' | '.join(mib)} | {total / 2**20:.2f} | {total / base:.2f}x |")
    return "\n".join(lines)


class ParamBag(px.Module):
    """A module holding one parameter per array, for the dispatch benchmark."""

    def __init__(self, arrays: list[jax.Array]) -> None:
        self.params = [px.Param(a) for a in arrays]


@pxf.jit()
def bump_params(*, bag):
    """Add one to every parameter of `bag`, in place."""
    for p in bag.params:
        p.value = p.value + 1.0


@jax.jit
def bump_arrays(arrays):
    """Add one to every array (the functional twin of `bump_params`)."""
    return [a + 1.0 for a in arrays]


def repeat(fn: Callable[[], object], n: int) -> object:
    """Call `fn` `n` times without waiting in between; return the last result."""
    for _ in range(n - 1):
        fn()
    return fn()


def measure_dispatch(calls: int, rounds: int) -> list[Row]:
    """Per-call time of a pcframe-jitted stateful no-op-ish function vs plain ``jax.jit`` on the same arrays."""
    arrays = [jnp.full((16,), float(i)) for i in range(DISPATCH_PARAMS)]
    bag = ParamBag(arrays)
    state = {"arrays": arrays}

    def plain():
        state["arrays"] = bump_arrays(state["arrays"])
        return state["arrays"]

    def stateful():
        bump_params(bag=bag)
        return bag

    first = {"jax.jit": timed(plain), "pxf.jit": timed(stateful)}
    per_call: dict[str, list[float]] = {"jax.jit": [], "pxf.jit": []}
    for i in range(rounds):
        order = [("jax.jit", plain), ("pxf.jit", stateful)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            per_call[name].append(timed(lambda fn=fn: repeat(fn, calls)) / calls)
    workload = f"dispatch ({DISPATCH_PARAMS} params)"
    return [Row(workload, name, per_call[name], first[name], None, unit="us") for name in per_call]


def format_time(seconds: float, unit: str) -> str:
    """`seconds` in milliseconds or microseconds."""
    return f"{seconds * 1e3:.3f} ms" if unit == "ms" else f"{seconds * 1e6:.1f} µs"


def guarded_table(rows: list[Row]) -> str:
    """The packaged step against the reference that keeps the same promise (its update guarded), per workload."""
    lines = [
        "| workload | packaged / guarded reference | packaged / reference | guarded reference / reference "
        "| first call: packaged / guarded reference |",
        "|---|---:|---:|---:|---:|",
    ]
    by_workload: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_workload.setdefault(row.workload, {})[row.variant] = row
    for workload, found in by_workload.items():
        plain = found.get("reference (pure JAX)")
        guarded = found.get("reference (pure JAX, guarded)")
        packaged = next((r for name, r in found.items() if name.startswith("pcframe train_supervised")), None)
        if plain is None or guarded is None or packaged is None:
            continue
        lines.append(
            f"| {workload} | {paired(packaged.times, guarded.times)[0]:.2f}x | {paired(packaged.times, plain.times)[0]:.2f}x "
            f"| {paired(guarded.times, plain.times)[0]:.2f}x | {packaged.first_call / guarded.first_call:.2f}x |"
        )
    return "\n".join(lines)


def table(rows: list[Row]) -> str:
    """The timing results as a markdown table (ratio and extra time paired within rounds, see `paired`)."""
    lines = [
        "| workload | variant | median per call | min - max | ratio to baseline | extra per call "
        "| first call (s) | max abs dw |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    baselines: dict[str, Row] = {}
    for row in rows:
        ratio, extra = paired(row.times, baselines.setdefault(row.workload, row).times)
        diff = "-" if row.max_diff is None else f"{row.max_diff:.1e}"
        lines.append(
            f"| {row.workload} | {row.variant} | {format_time(statistics.median(row.times), row.unit)} | "
            f"{format_time(min(row.times), row.unit)} - {format_time(max(row.times), row.unit)} | "
            f"{ratio:.2f}x | {format_time(extra, row.unit)} | {row.first_call:.2f} | {diff} |"
        )
    return "\n".join(lines)
