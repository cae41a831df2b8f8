"""W4 conv: the packaged step with its inference loop rolled and written out, timed in one process.

Workload W4 (VGG-5's shape at a quarter of its width: channels 3-32-64-128-128, 3x3 kernels,
GELU, 2x2 max-pool, linear head to 10 classes, cross-entropy output; 32x32x3 inputs, batch 32,
T = 7 SGD steps of 0.1 per sample, Adam 1e-3 on the weights). Prints the median time per step
and the first call's time (compile included) of `train_supervised` with
``DiscreteInference(unroll=1)`` (a rolled `scan`), ``unroll=True`` (written out) and the default
``unroll=None`` (the backend's choice), and the largest weight difference between them.

    python benchmarks/conv_loop.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
import optax

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.core import RKG
from pcframe.models import PCVGG


def run(unroll, x, y, repeats: int) -> tuple[float, float, list[np.ndarray]]:
    RKG.seed(0)
    model = PCVGG(channels=(3, 32, 64, 128, 128))
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.DiscreteInference(optax.sgd(0.1), 7, unroll=unroll)
    start = time.perf_counter()
    jax.block_until_ready(pxi.train_supervised(model, optim, x, y, inference=inference))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(pxi.train_supervised(model, optim, x, y, inference=inference))
        times.append(time.perf_counter() - start)
    return statistics.median(times), first, [np.asarray(p.value) for p in optim.params]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    results = {
        name: run(unroll, x, y, args.repeats)
        for name, unroll in (
            ("rolled (unroll=1)", 1),
            ("written out (unroll=True)", True),
            ("default (unroll=None)", None),
        )
    }
    base = results["rolled (unroll=1)"][0]
    print(f"W4 conv on {jax.default_backend()}, {args.repeats} steps after the first")
    print("| loop | median per step | ratio to rolled | first call (s, compile included) | max abs dw to rolled |")
    print("|---|---:|---:|---:|---:|")
    for name, (median, first, weights) in results.items():
        dw = max(float(np.abs(a - b).max()) for a, b in zip(weights, results["rolled (unroll=1)"][2]))
        print(f"| {name} | {median * 1e3:.0f} ms | {median / base:.2f}x | {first:.1f} | {dw:.1e} |")


if __name__ == "__main__":
    main()
