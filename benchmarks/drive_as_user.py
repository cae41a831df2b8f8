"""Drive the packaged step as a user would: batch 64, outside jit, twice in a row, evaluation in between, Ctrl-C.

For each default strategy it prints the solver steps taken, the energy after inference against the
feedforward loss, how far every layer's weights moved, how many compilations ten more steps with
evaluations in between caused, and whether Ctrl-C at 40 random moments ever left a model with some
weights (or the optimiser's step count) updated and others not.

    python benchmarks/drive_as_user.py
"""

import random
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP

compiles = [0]


def _count(event: str, duration: float, **kwargs) -> None:
    compiles[0] += event == "/jax/core/compile/backend_compile_duration"


jax.monitoring.register_event_duration_secs_listener(_count)
digits, labels = load_digits(return_X_y=True)
X, Y = jnp.asarray(digits / 16.0, jnp.float32), jax.nn.one_hot(labels, 10)
for name, inference in [
    ("ODEInference()", pxi.ODEInference()),
    ("DiscreteInference(step_size=0.1, steps=20)", pxi.DiscreteInference(step_size=0.1, steps=20)),
]:
    model = PCMLP([64, 128, 128, 10])
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    first = [np.asarray(l.nn.weight.value) for l in model.layers]
    out1 = pxi.train_supervised(model, optim, X[:64], Y[:64], inference=inference)
    acc = float(pxi.evaluate_accuracy(model, X[1000:], Y[1000:]))
    before = compiles[0]
    out2 = pxi.train_supervised(model, optim, X[64:128], Y[64:128], inference=inference)
    acc = float(pxi.evaluate_accuracy(model, X[1000:], Y[1000:]))
    for i in range(2, 12):
        pxi.train_supervised(model, optim, X[64 * i : 64 * i + 64], Y[64 * i : 64 * i + 64], inference=inference)
        pxi.evaluate_accuracy(model, X[1000:], Y[1000:])
    moved = [float(np.abs(np.asarray(l.nn.weight.value) - f).max()) for l, f in zip(model.layers, first)]
    steady = "" if "steady" not in out1 else f" (steady: {bool(out1['steady'])}, {bool(out2['steady'])})"
    print(
        f"{name}: steps {int(out1['steps'])}, {int(out2['steps'])}{steady}; energy after inference {float(out2['energy']):.4f} < feedforward loss {float(out2['loss']):.4f}: {float(out2['energy']) < float(out2['loss'])}"
    )
    print(
        f"  largest weight change per layer after 12 steps: {[f'{m:.2e}' for m in moved]}; compilations in steps 2-12 with evaluations between: {compiles[0] - before}; accuracy {float(pxi.evaluate_accuracy(model, X[1000:], Y[1000:])):.3f}"
    )

    # the strategy's own eager run, outside any jit: compiled once per batch shape
    pxi.init_forward(model, X[:64], Y[:64])
    inference.run(model, X[:64])
    before = compiles[0]
    for i in (1, 2):
        pxi.init_forward(model, X[64 * i : 64 * i + 64], Y[64 * i : 64 * i + 64])
        stats = inference.run(model, X[64 * i : 64 * i + 64])
    print(f"  eager inference.run on 2 more batches: compilations {compiles[0] - before}; steps {int(stats['steps'])}")

    # Ctrl-C at random moments of a training loop: the model holds a whole step or none of it
    def state(optim=optim):
        return [np.asarray(p.value) for p in optim.params], int(optim.state.value[0].count)

    interrupted = mixed = 0
    before = compiles[0]
    rng = random.Random(0)
    signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
    for _ in range(40):
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00005, 0.004))
        try:
            for _ in range(3):
                weights, count = state()
                jax.block_until_ready(pxi.train_supervised(model, optim, X[:64], Y[:64], inference=inference))
        except KeyboardInterrupt:
            interrupted += 1
            now, count_now = state()
            changed = {not np.array_equal(a, b) for a, b in zip(now, weights)}
            # every weight array and the optimiser's step count moved together, or nothing moved
            if len(changed) > 1 or (True in changed) != (count_now == count + 1):
                mixed += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    print(
        f"  Ctrl-C at 40 random moments: {interrupted} interrupted a step; half-written models: {mixed}; "
        f"compilations meanwhile: {compiles[0] - before}"
    )
    pxi.train_supervised(model, optim, X[:64], Y[:64], inference=inference)
    print(
        f"  training continues after the interrupts; accuracy {float(pxi.evaluate_accuracy(model, X[1000:], Y[1000:])):.3f}"
    )
