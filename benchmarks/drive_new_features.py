"""The features of the second session of 2026-12-07 driven as a user would (not timed).

A batch-normalised MLP trained by `train_supervised` with two optimiser groups, the same network by
`train_backprop`, and Monte Carlo PC (`LangevinInference`): batches of 64, outside jit, twice in a
row, an evaluation at another batch size between steps, Ctrl-C (a real SIGINT) at 40 random moments,
and two threads training two models at once. It prints whether every layer learns, how many
compilations happen after the first step, and whether any interrupt left a half-written model.

    python benchmarks/drive_new_features.py
"""

from __future__ import annotations

import random
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu

compiles = [0]
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: compiles.__setitem__(
        0, compiles[0] + (event == "/jax/core/compile/backend_compile_duration")
    )
)
digits, labels = load_digits(return_X_y=True)
X, Y = jnp.asarray(digits / 16.0, jnp.float32), jax.nn.one_hot(labels, 10)
X_TEST, Y_TEST = X[1500:1700], Y[1500:1700]


class NormMLP(pxc.EnergyModule):
    """64 -> [Linear, BatchNorm, tanh, node] x 2 -> Linear -> clamped output."""

    def __init__(self):
        self.layers = [pxnn.Linear(64, 64), pxnn.Linear(64, 64), pxnn.Linear(64, 10)]
        self.norms = [pxnn.BatchNorm(64), pxnn.BatchNorm(64)]
        self.vodes = [pxc.Vode(), pxc.Vode(), pxc.Vode((10,), pxc.ce_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y=None):
        for layer, norm, vode in zip(self.layers, self.norms, self.vodes):
            x = vode(jnp.tanh(norm(layer(x))))
        self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


HIDDEN, HEAD = optax.adam(3e-3), optax.sgd(0.1)  # created once: every new Optim over them compiles nothing


def build(seed: int):
    px.RKG.seed(seed)
    model = NormMLP()
    optim = pxu.Optim(
        {"hidden": HIDDEN, "head": HEAD},
        {
            "hidden": pxu.Mask(pxnn.LayerParam)(model.layers[:-1] + model.norms),
            "head": pxu.Mask(pxnn.LayerParam)(model.layers[-1]),
        },
    )
    return model, optim


def snapshot(model) -> list[np.ndarray]:
    return [np.asarray(p.value) for p in pxu.Mask(pxnn.LayerParam | pxnn.RunningStat)(model).parameters()]


def drive(name: str, step) -> None:
    model, optim = build(0)
    first = snapshot(model)
    out = step(model, optim, 0)
    out2 = step(model, optim, 1)  # twice in a row
    pxi.evaluate_accuracy(model, X_TEST, Y_TEST)  # the evaluation's own first compilation
    before = compiles[0]
    for i in range(2, 12):
        pxi.evaluate_accuracy(model, X_TEST, Y_TEST)  # another batch size, evaluation mode
        out = step(model, optim, i)
    after = compiles[0] - before
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(snapshot(model), first)]
    print(
        f"{name}: finite {bool(out['finite'])} {bool(out2['finite'])}; feedforward loss {float(out['loss']):.3f}, "
        f"energy after inference {float(out['energy']):.3f}; "
        f"compilations in steps 3-12 with evaluations between: {after}; smallest change over the weights and "
        f"running statistics: {min(moved):.1e} ({len(moved)} arrays); accuracy {float(pxi.evaluate_accuracy(model, X_TEST, Y_TEST)):.3f}"
    )
    interrupted, mixed = interrupt_at_random(lambda i: step(model, optim, i), model)
    print(
        f"  Ctrl-C at 40 random moments: {interrupted} interrupted a step; half-written models: {mixed}; "
        f"training goes on: {bool(step(model, optim, 0)['finite'])}"
    )


def interrupt_at_random(train_once, model) -> tuple[int, int]:
    """A real SIGINT from a timer at 40 random moments; counts steps that left some arrays moved and others not."""
    interrupted = mixed = 0
    rng = random.Random(0)
    signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
    for k in range(40):
        state = snapshot(model)
        try:
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00005, 0.004))
            try:
                for i in range(3):
                    state = snapshot(model)
                    jax.block_until_ready(train_once(k + i))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except KeyboardInterrupt:  # wherever it lands, the last step wrote all of its update or none of it
            interrupted += 1
            changed = {not np.array_equal(a, b) for a, b in zip(snapshot(model), state)}
            mixed += len(changed) > 1
    return interrupted, mixed


INFERENCE = pxi.DiscreteInference(optax.sgd(0.1), 8)
LANGEVIN = pxi.LangevinInference(step_size=0.05, steps=20, beta=100.0)


def batch(i: int):
    j = (i * 64) % 1408
    return X[j : j + 64], Y[j : j + 64]


def supervised(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=INFERENCE)


def backprop(model, optim, i):
    return pxi.train_backprop(model, optim, *batch(i))


def monte_carlo(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=LANGEVIN)


drive("BatchNorm MLP, two optimiser groups, train_supervised", supervised)
drive("the same network, train_backprop", backprop)
drive("Monte Carlo PC (LangevinInference), train_supervised", monte_carlo)

alone = {}
for seed in (1, 2):
    model, optim = build(seed)
    for i in range(6):
        supervised(model, optim, i)
    alone[seed] = snapshot(model)
together = {}


def in_thread(seed: int, model, optim) -> None:
    for i in range(6):
        supervised(model, optim, i)
        pxi.evaluate_accuracy(model, X_TEST, Y_TEST)
    together[seed] = snapshot(model)


before = compiles[0]
built = {seed: build(seed) for seed in (1, 2)}  # models are built first, then trained at once
threads = [threading.Thread(target=in_thread, args=(seed, *built[seed])) for seed in (1, 2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
same = all(np.array_equal(a, b) for seed in (1, 2) for a, b in zip(alone[seed], together[seed]))
tracer = isinstance(px.RKG.key.value, jax.core.Tracer)
print(
    f"two threads, two BatchNorm models: weights and running statistics equal to each trained alone: {same}; "
    f"compilations: {compiles[0] - before}; RKG holds a tracer: {tracer}"
)
