"""How long a training-step call takes to *return* (JAX dispatches asynchronously), against the reference.

For each variant the device is idle before every call (the previous result is waited
for), and the clock stops when the call returns, before its result is ready: the time
the host spends in pcframe and in JAX's dispatch. Interleaved rounds, medians.

    python benchmarks/call_return.py --workloads W0,W1 --rounds 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from variants import build_packaged, build_pcframe  # noqa: E402
from workloads import WORKLOADS, batches, build_reference, initial_weights  # noqa: E402


def returns(workload: str, rounds: int) -> dict[str, float]:
    """Median seconds until the call returns, per variant."""
    w = WORKLOADS[workload]
    weights = initial_weights(w.sizes)
    x, y = batches(w)[0]
    variants = {
        "reference (pure JAX)": build_reference(w, weights),
        "pcframe (pxf.scan)": build_pcframe(w, weights, True),
        "pcframe train_supervised": build_packaged(w, weights),
    }
    for _ in range(10):
        for variant in variants.values():
            jax.block_until_ready(variant.step(x, y))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in variants.items():
            start = time.perf_counter()
            out = variant.step(x, y)
            times[name].append(time.perf_counter() - start)
            jax.block_until_ready(out)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W0,W1")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    print("| workload | variant | call returns in | ratio to reference |")
    print("|---|---|---:|---:|")
    for workload in args.workloads.split(","):
        medians = returns(workload, args.rounds)
        base = medians["reference (pure JAX)"]
        for name, seconds in medians.items():
            print(f"| {workload} | {name} | {seconds * 1e6:.0f} µs | {seconds / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
