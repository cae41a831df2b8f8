"""W4 conv: the packaged step, its inference loop rolled and written out, against hand-written steps in one process.

Workload W4 (VGG-5's shape at a quarter of its width: channels 3-32-64-128-128, 3x3 kernels,
GELU, 2x2 max-pool, linear head to 10 classes, cross-entropy output; 32x32x3 inputs, batch 32,
T = 7 SGD steps of 0.1 per sample, Adam 1e-3 on the weights). Prints the median time per step
and the first call's time (compile included) of a hand-written pure-JAX step (the whole step in
one `jax.jit`, NCHW as `PCVGG`, its inference loop written out or a `lax.fori_loop`), of backprop
on the same network, and of `train_supervised` with ``DiscreteInference(unroll=1)`` (a rolled
`scan`), ``unroll=True`` (written out) and the default ``unroll=None`` (the backend's choice);
ratios are to the fastest hand-written PC step, and the weights after the first step are
compared with the hand-written ones.

    python benchmarks/conv_loop.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.core import RKG
from pcframe.models import PCVGG

CHANNELS = (3, 32, 64, 128, 128)
T, STEP, LR = 7, 0.1, 1e-3


def _model() -> tuple[PCVGG, pxu.Optim]:
    RKG.seed(0)
    model = PCVGG(channels=CHANNELS)
    return model, pxu.Optim(optax.adam(LR), pxu.Mask(pxnn.LayerParam)(model))


def _weights(model: PCVGG) -> list:
    layers = [*model.convs, model.head]
    return [(jnp.asarray(layer.nn.weight.value), jnp.asarray(layer.nn.bias.value)) for layer in layers]


def _predict(w, z):
    """One block's prediction from the activity below (NCHW): ``maxpool(gelu(conv(z) + b))``."""
    W, b = w
    pre = jax.lax.conv_general_dilated(z, W, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")) + b
    return jax.lax.reduce_window(jax.nn.gelu(pre), -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def _energy_sum(ws, hs, x, y):
    """$\\sum_i F_i$: squared errors of the conv nodes, cross-entropy at the clamped output."""
    total, below = 0.0, x
    for w, h in zip(ws[:-1], hs):
        total = total + 0.5 * jnp.sum((h - _predict(w, below)) ** 2)
        below = h
    W, b = ws[-1]
    logits = below.reshape(below.shape[0], -1) @ W.T + b
    return total - jnp.sum(y * jax.nn.log_softmax(logits))


def _feedforward(ws, x):
    hs, z = [], x
    for w in ws[:-1]:
        z = _predict(w, z)
        hs.append(z)
    return hs


def make_reference(unrolled: bool):
    """The hand-written PC step: feedforward start, T per-sample SGD steps on the activities, one Adam step."""
    tx = optax.adam(LR)

    def step(ws, state, x, y):
        hs = _feedforward(ws, x)
        relax = lambda hs: [h - STEP * g for h, g in zip(hs, jax.grad(_energy_sum, 1)(ws, hs, x, y))]  # noqa: E731
        if unrolled:
            for _ in range(T):
                hs = relax(hs)
        else:
            hs = jax.lax.fori_loop(0, T, lambda _, hs: relax(hs), hs)
        grads = jax.grad(lambda ws: _energy_sum(ws, hs, x, y) / x.shape[0])(ws)
        updates, state = tx.update(grads, state, ws)
        return optax.apply_updates(ws, updates), state

    return jax.jit(step), tx


def make_backprop():
    """Backprop on the same network: cross-entropy of the feedforward prediction, one Adam step."""
    tx = optax.adam(LR)

    def loss(ws, x, y):
        z = x
        for w in ws[:-1]:
            z = _predict(w, z)
        W, b = ws[-1]
        return -jnp.sum(y * jax.nn.log_softmax(z.reshape(z.shape[0], -1) @ W.T + b)) / x.shape[0]

    def step(ws, state, x, y):
        updates, state = tx.update(jax.grad(loss)(ws, x, y), state, ws)
        return optax.apply_updates(ws, updates), state

    return jax.jit(step), tx


def timed(call, repeats: int) -> tuple[float, float, object]:
    start = time.perf_counter()
    out = jax.block_until_ready(call())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return (statistics.median(times) if times else first), first, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    results, after = {}, {}
    for name, build in (
        ("hand-written, loop written out", lambda: make_reference(True)),
        ("hand-written, lax.fori_loop", lambda: make_reference(False)),
        ("backprop (same network)", make_backprop),
    ):
        step, tx = build()
        held = {"ws": _weights(_model()[0])}
        held["state"] = tx.init(held["ws"])

        def call(step=step, held=held):
            held["ws"], held["state"] = step(held["ws"], held["state"], x, y)
            return held["ws"]

        median, first, _ = timed(call, 0)
        after[name] = [np.asarray(a) for pair in held["ws"] for a in pair]
        results[name] = (timed(call, args.repeats)[0], first)
    for name, unroll in (
        ("pcframe, rolled (unroll=1)", 1),
        ("pcframe, written out (unroll=True)", True),
        ("pcframe, default (unroll=None)", None),
    ):
        model, optim = _model()
        inference = pxi.DiscreteInference(optax.sgd(STEP), T, unroll=unroll)
        call = lambda model=model, optim=optim, inference=inference: pxi.train_supervised(  # noqa: E731
            model, optim, x, y, inference=inference
        )
        median, first, _ = timed(call, 0)
        after[name] = [np.asarray(a) for pair in _weights(model) for a in pair]
        results[name] = (timed(call, args.repeats)[0], first)
    reference = "hand-written, loop written out"
    fastest = min(results[reference][0], results["hand-written, lax.fori_loop"][0])
    print(f"W4 conv on {jax.default_backend()}, median of {args.repeats} steps after the first")
    print("| variant | median per step | ratio to the fastest hand-written PC step | first call (s) | max abs dw |")
    print("|---|---:|---:|---:|---:|")
    for name, (median, first) in results.items():
        dw = (
            "-"
            if name == reference
            else f"{max(float(np.abs(a - b).max()) for a, b in zip(after[name], after[reference])):.1e}"
        )
        print(f"| {name} | {median * 1e3:.0f} ms | {median / fastest:.2f}x | {first:.1f} | {dw} |")


if __name__ == "__main__":
    main()
