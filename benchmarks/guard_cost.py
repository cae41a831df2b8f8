"""What a finiteness guard costs a hand-written pure-JAX step on XLA's CPU backend (no pcframe).

The packaged steps keep a weight update only if the energy, every gradient and every new
weight and optimiser-state value are finite (`pcframe.inference.train_step`'s guard). This script adds the same
guard to the hand-written reference step of W0 and W1 and times the variants against the
unguarded reference, in interleaved rounds:

- **guard: energy, gradients, new weights and optimiser state**: what the packaged step does: one sum per array,
  ``isfinite`` of the total, a `jnp.where` per weight and optimiser-state array;
- **guard: energy only** / **gradients only** / **new weights only**: one part of the test;
- **selects on a predicate ready at the start**: the same `jnp.where`s, their predicate
  computed from the input batch, so nothing waits for the backward pass;
- **selects on one gradient element**: the same `jnp.where`s, their predicate computed from a
  single element of the first layer's gradient (the last one the backward pass produces).

The last two separate the cost of selecting, and of waiting for the backward pass, from the
cost of computing the predicate by reductions (see benchmarks/README.md for what was measured).

    python benchmarks/guard_cost.py                  # W0 (2000 rounds) and W1 (400 rounds)
    python benchmarks/guard_cost.py --workloads W1 --rounds 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from timing import time_interleaved  # noqa: E402
from workloads import WORKLOADS, batches, build_reference_guarded, initial_weights  # noqa: E402

VARIANTS = {
    "reference (pure JAX, no guard)": "",
    "guard: energy, gradients, new weights and optimiser state": "Egws",
    "guard: energy only": "E",
    "guard: gradients only": "g",
    "guard: new weights only": "w",
    "selects on a predicate ready at the start": "x",
    "selects on one gradient element": "1",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W0,W1")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default: W0 2000, W1 400)")
    args = parser.parse_args(argv)
    print("| workload | variant | median per call | ratio to the reference | extra per call |")
    print("|---|---|---:|---:|---:|")
    for key in args.workloads.split(","):
        w = WORKLOADS[key]
        weights = initial_weights(w.sizes)
        variants = [build_reference_guarded(w, weights, parts, name) for name, parts in VARIANTS.items()]
        rounds = args.rounds or (2000 if key == "W0" else 400)
        times = time_interleaved(variants, batches(w), warmup=20, reps=rounds)
        base = np.asarray(times[variants[0].name])
        for v in variants:
            t = np.asarray(times[v.name])
            print(
                f"| {key} | {v.name} | {np.median(t) * 1e3:.3f} ms | {np.median(t / base):.2f}x "
                f"| {np.median(t - base) * 1e6:.0f} µs |",
                flush=True,
            )


if __name__ == "__main__":
    main()
