"""The features of 2026-12-07's second and third sessions driven as a user would (not timed).

A batch-normalised MLP trained by `train_supervised` with two optimiser groups (PC, ePC and
`PrecisionWeighted` relaxation, `BatchNorm` differentiated in the weight step), the same network by
`train_backprop`, Monte Carlo PC (`LangevinInference`), and a 5-layer `PCVGG(norm=True, pools=...)`
trained by ePC: batches of 64, outside jit, twice in a row, an evaluation at another batch size
between steps, `prediction_errors` read twice (and refused after an evaluation), Ctrl-C (a real SIGINT) at 40
random moments, and two threads training two models at once (PC and ePC). It prints whether every
layer learns, how many compilations happen after the first step, and whether any interrupt left a
half-written or stale model.

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
from pcframe.models import PCVGG

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
    return model, grouped_optim(model)


def build_vgg(seed: int):
    px.RKG.seed(seed)
    model = PCVGG((1, 8, 8, 8, 8), 10, 8, act_fn=jax.nn.gelu, norm=True, pools=(True, False, True, False))
    return model, pxu.Optim(HIDDEN, pxu.Mask(pxnn.LayerParam)(model))


def grouped_optim(model):
    return pxu.Optim(
        {"hidden": HIDDEN, "head": HEAD},
        {
            "hidden": pxu.Mask(pxnn.LayerParam)(model.layers[:-1] + model.norms),
            "head": pxu.Mask(pxnn.LayerParam)(model.layers[-1]),
        },
    )


def snapshot(model) -> list[np.ndarray]:
    return [np.asarray(p.value) for p in pxu.Mask(pxnn.LayerParam | pxnn.RunningStat)(model).parameters()]


def drive(name: str, step, builder=build, images: bool = False) -> None:
    model, optim = builder(0)
    x_test = X_TEST.reshape(-1, 1, 8, 8) if images else X_TEST
    first = snapshot(model)
    out = step(model, optim, 0)
    out2 = step(model, optim, 1)  # twice in a row
    x = batch(1, images)[0]
    errors = pxi.prediction_errors(model, x)  # the errors of the last step's batch, its own first compilation
    again = pxi.prediction_errors(model, x)  # read twice: the same, and nothing of the model changes
    same_errors = all(np.array_equal(errors[k], again[k]) for k in errors)
    pxi.evaluate_accuracy(model, x_test, Y_TEST)  # the evaluation's own first compilation
    try:  # the activities are now the evaluation's: the training batch's errors are refused, not made up
        pxi.prediction_errors(model, x)
        refused = False
    except ValueError:
        refused = True
    before = compiles[0]
    for i in range(2, 12):
        pxi.evaluate_accuracy(model, x_test, Y_TEST)  # another batch size, evaluation mode
        out = step(model, optim, i)
    after = compiles[0] - before
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(snapshot(model), first)]
    print(
        f"{name}: finite {bool(out['finite'])} {bool(out2['finite'])}; feedforward loss {float(out['loss']):.3f}, "
        f"energy after inference {float(out['energy']):.3f}; "
        f"compilations in steps 3-12 with evaluations between: {after}; smallest change over the weights and "
        f"running statistics: {min(moved):.1e} ({len(moved)} arrays); accuracy "
        f"{float(pxi.evaluate_accuracy(model, x_test, Y_TEST)):.3f}; prediction_errors read twice equal: {same_errors}, "
        f"refused for the training batch after an evaluation: {refused}"
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
EPC = pxi.ErrorInference(pxi.DiscreteInference(optax.sgd(0.01), 8))
WEIGHTED = pxi.PrecisionWeighted(INFERENCE, (0.5, 1.0, 2.0))


def batch(i: int, images: bool = False):
    j = (i * 64) % 1408
    x = X[j : j + 64]
    return (x.reshape(-1, 1, 8, 8) if images else x), Y[j : j + 64]


def supervised(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=INFERENCE)


def backprop(model, optim, i):
    return pxi.train_backprop(model, optim, *batch(i))


def monte_carlo(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=LANGEVIN)


drive("BatchNorm MLP, two optimiser groups, train_supervised", supervised)
drive("the same network, train_backprop", backprop)
drive("Monte Carlo PC (LangevinInference), train_supervised", monte_carlo)


def epc(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=EPC)


def weighted(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i), inference=WEIGHTED)


def vgg_epc(model, optim, i):
    return pxi.train_supervised(model, optim, *batch(i, images=True), inference=EPC)


drive("the BatchNorm MLP, ePC (ErrorInference)", epc)
drive("the BatchNorm MLP, PrecisionWeighted relaxation", weighted)
drive("5-layer PCVGG(norm=True, pools=...), ePC", vgg_epc, build_vgg, images=True)

STEPS = {1: supervised, 2: epc}  # thread 1 trains by PC, thread 2 by ePC
alone = {}
for seed in (1, 2):
    model, optim = build(seed)
    for i in range(6):
        STEPS[seed](model, optim, i)
    alone[seed] = snapshot(model)
together = {}


def in_thread(seed: int, model, optim) -> None:
    for i in range(6):
        STEPS[seed](model, optim, i)
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
    f"two threads, two BatchNorm models (PC and ePC): weights and running statistics equal to each trained alone: {same}; "
    f"compilations: {compiles[0] - before}; RKG holds a tracer: {tracer}"
)
