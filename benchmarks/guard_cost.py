"""What a finiteness guard costs a hand-written pure-JAX step on XLA's CPU backend (no pcframe).

The packaged steps keep a weight update only if the energy, every gradient and every new
weight are finite (`pcframe.inference.train_step`'s guard, `pcframe.inference._guard`). This script adds the same
guard to the hand-written reference step of W0 and W1 and times the variants against the
unguarded reference, in interleaved rounds:

- **guard: energy, gradients, new weights**: what the packaged step does: one sum per array,
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

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parent))
from timing import time_interleaved  # noqa: E402
from workloads import WORKLOADS, Variant, batches, initial_weights, reference_energy, reference_equilibrium  # noqa: E402

VARIANTS = {
    "reference (pure JAX, no guard)": None,
    "guard: energy, gradients, new weights": "Egw",
    "guard: energy only": "E",
    "guard: gradients only": "g",
    "guard: new weights only": "w",
    "selects on a predicate ready at the start": "x",
    "selects on one gradient element": "1",
}


def _all_finite(tree) -> jax.Array:
    return jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def guarded_step(w, parts: str | None, layers, state, x, y):
    """The reference training step, its update kept only where the predicate built from `parts` holds."""
    hs = reference_equilibrium(w, layers, x, y)
    energy, grads = jax.value_and_grad(lambda layers: reference_energy(w, layers, hs, x, y))(layers)
    updates, new_state = w.w_optimiser().update(grads, state, layers)
    new_layers = optax.apply_updates(layers, updates)
    if parts is None:
        return new_layers, new_state, energy
    tests = {
        "E": lambda: jnp.isfinite(energy),
        "g": lambda: _all_finite(grads),
        "w": lambda: _all_finite(new_layers),
        "x": lambda: jnp.isfinite(x[0, 0]),
        "1": lambda: jnp.isfinite(grads[0][0][0, 0]),
    }
    keep = jnp.logical_and.reduce(jnp.stack([tests[part]() for part in parts]))
    select = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, old)  # noqa: E731
    return select(new_layers, layers), select(new_state, state), energy


def build(w, weights, name: str, parts: str | None) -> Variant:
    layers = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
    held = {"layers": layers, "state": w.w_optimiser().init(layers)}
    step = jax.jit(lambda layers, state, x, y: guarded_step(w, parts, layers, state, x, y))

    def call(x, y):
        held["layers"], held["state"], _ = step(held["layers"], held["state"], x, y)
        return held["layers"]

    return Variant(name, call, lambda: held["layers"])


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
        variants = [build(w, weights, name, parts) for name, parts in VARIANTS.items()]
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
