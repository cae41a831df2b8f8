"""Compile time against the number of inference steps, and time per step against T, depth and batch size."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import jax
import numpy as np
from timing import time_interleaved, timed
from variants import build_packaged, build_pcframe
from workloads import W1, Variant, Workload, batches, build_reference, initial_weights

Builder = Callable[[Workload, list], Variant]

BUILDERS: dict[str, Builder] = {
    "reference (pure JAX)": build_reference,
    "pcframe (pxf.scan)": lambda w, weights: build_pcframe(w, weights, True),
    "pcframe train_supervised (DiscreteInference)": build_packaged,
}


def first_call(builder: Builder, w: Workload) -> float:
    """Seconds of the first training step (trace + compile + one run) with JAX's caches cleared first."""
    jax.clear_caches()
    data = batches(w, 1)[0]
    variant = builder(w, initial_weights(w.sizes))
    return timed(lambda: variant.step(*data))


def compile_vs_T(Ts: tuple[int, int], repeats: int) -> str:
    """Markdown table: first-call seconds of W1 at two values of T (median of `repeats`), and their ratios."""
    lines = [
        f"| variant | first call, T={Ts[0]} (s) | first call, T={Ts[1]} (s) | T={Ts[1]} / T={Ts[0]} "
        f"| ratio to reference at T={W1.T} |",
        "|---|---:|---:|---:|---:|",
    ]
    at_default = {n: statistics.median(first_call(b, W1) for _ in range(repeats)) for n, b in BUILDERS.items()}
    for name, builder in BUILDERS.items():
        small, large = (statistics.median(first_call(builder, W1.with_(T=T)) for _ in range(repeats)) for T in Ts)
        ratio = at_default[name] / at_default["reference (pure JAX)"]
        lines.append(f"| {name} | {small:.2f} | {large:.2f} | {large / small:.2f}x | {ratio:.2f}x |")
    return "\n".join(lines)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares line ``y = a + b x``: returns ``(b, a, R^2)``."""
    b, a = np.polyfit(xs, ys, 1)
    predicted = a + b * np.asarray(xs)
    residual = float(np.sum((np.asarray(ys) - predicted) ** 2))
    total = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2))
    return float(b), float(a), 1.0 - residual / total if total > 0 else 1.0


SWEEPS: dict[str, tuple[str, list[int], Callable[[int], Workload]]] = {
    "T": ("inference steps", [10, 20, 40], lambda n: W1.with_(T=n)),
    "depth": ("hidden layers of 128", [1, 2, 4], lambda n: W1.with_(sizes=(784, *([128] * n), 10))),
    "batch": ("batch size", [32, 64, 128], lambda n: W1.with_(batch=n)),
}


def scaling(warmup: int, reps: int) -> str:
    """Markdown table: per-call median time of W1 at three sizes along each axis, a linear fit and its R^2."""
    lines = [
        "| axis | sizes | variant | median per call (ms) | slope (ms per unit) | intercept (ms) | R^2 "
        "| pcframe / reference |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for axis, (label, sizes, make) in SWEEPS.items():
        medians: dict[str, list[float]] = {"reference (pure JAX)": [], "pcframe (pxf.scan)": []}
        ratios = []
        for n in sizes:
            w = make(n)
            weights = initial_weights(w.sizes)
            variants = [BUILDERS[name](w, weights) for name in medians]
            times = time_interleaved(variants, batches(w), warmup, reps)
            for name in medians:
                medians[name].append(statistics.median(times[name]) * 1e3)
            reference, pcframe = times["reference (pure JAX)"], times["pcframe (pxf.scan)"]
            ratios.append(statistics.median(p / r for p, r in zip(pcframe, reference)))
        for name, ys in medians.items():
            slope, intercept, r2 = linear_fit(sizes, ys)
            shown = ", ".join(f"{y:.3f}" for y in ys)
            ratio = ", ".join(f"{r:.2f}x" for r in ratios) if name != "reference (pure JAX)" else "-"
            lines.append(
                f"| {axis} ({label}) | {sizes} | {name} | {shown} | {slope:.4f} | {intercept:.3f} | {r2:.3f} | {ratio} |"
            )
    return "\n".join(lines)
