"""Drive the training steps as a user would: batch 64, outside jit, twice in a row, evaluation in between, Ctrl-C.

For each default strategy of the packaged step, and for the tutorial-style `pxf.jit` step (whose
evaluation clears the activities), it prints the energy after inference against the feedforward
loss, how far every layer's weights moved, how many compilations ten more steps with evaluations in
between caused, and whether Ctrl-C at 40 random moments ever left a model with some weights (or the
optimiser's step count) updated and others not. For the packaged step also the solver steps taken
and an eager `run`. Last, two threads train two models at once, compared with each trained alone.

    python benchmarks/drive_as_user.py
"""

import random
import signal
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.core import RKG, RandomKeyGenerator
from pcframe.models import PCMLP

sys.path.insert(0, str(Path(__file__).parent))
from soak import tutorial_accuracy, tutorial_step  # noqa: E402

compiles = [0]


def _count(event: str, duration: float, **kwargs) -> None:
    compiles[0] += event == "/jax/core/compile/backend_compile_duration"


jax.monitoring.register_event_duration_secs_listener(_count)
digits, labels = load_digits(return_X_y=True)
X, Y = jnp.asarray(digits / 16.0, jnp.float32), jax.nn.one_hot(labels, 10)


def interrupt_at_random(train_once, optim) -> tuple[int, int]:
    """Ctrl-C (a real SIGINT from a timer) at 40 random moments of a training loop.

    **Returns:** ``(interrupted, half_written)``: how many interrupts landed in a step, and after how
    many of them some weight arrays (or the optimiser's step count) had moved and others not.
    """

    def state():
        return [np.asarray(p.value) for p in optim.params], int(optim.state.value[0].count)

    interrupted = mixed = 0
    rng = random.Random(0)
    signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
    for _ in range(40):
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00005, 0.004))
        try:
            for _ in range(3):
                weights, count = state()
                jax.block_until_ready(train_once())
        except KeyboardInterrupt:
            interrupted += 1
            now, count_now = state()
            changed = {not np.array_equal(a, b) for a, b in zip(now, weights)}
            # every weight array and the optimiser's step count moved together, or nothing moved
            if len(changed) > 1 or (True in changed) != (count_now == count + 1):
                mixed += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return interrupted, mixed


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
    before = compiles[0]
    interrupted, mixed = interrupt_at_random(
        lambda m=model, o=optim, i=inference: pxi.train_supervised(m, o, X[:64], Y[:64], inference=i), optim
    )
    print(
        f"  Ctrl-C at 40 random moments: {interrupted} interrupted a step; half-written models: {mixed}; "
        f"compilations meanwhile: {compiles[0] - before}"
    )
    pxi.train_supervised(model, optim, X[:64], Y[:64], inference=inference)
    print(
        f"  training continues after the interrupts; accuracy {float(pxi.evaluate_accuracy(model, X[1000:], Y[1000:])):.3f}"
    )

# The tutorial-style step (two-moons tutorial's `train_on_batch`, a `pxf.jit` function): feedforward init,
# T = 20 activity steps, one Adam step, declared overwrites=VodeParam; the evaluation is a compiled forward pass.
model = PCMLP([64, 128, 128, 10])
optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
optim_h = pxu.Optim(optax.sgd(0.1))
pxi.init_forward(model, X[:64], Y[:64])
optim_h.init(pxu.Mask(pxc.VodeParam)(model))
first = [np.asarray(l.nn.weight.value) for l in model.layers]


def tutorial(i: int):
    return tutorial_step(
        20, X[64 * i : 64 * i + 64], Y[64 * i : 64 * i + 64], model=model, optim_w=optim, optim_h=optim_h
    )


def feedforward_energy(i: int) -> float:
    """The batch energy right after the feedforward initialisation, before the step on batch `i`."""
    pxi.init_forward(model, X[64 * i : 64 * i + 64], Y[64 * i : 64 * i + 64])
    return float(pxi.batch_energy(model, X[64 * i : 64 * i + 64])[0])


loss = feedforward_energy(0)
energy1 = float(tutorial(0))
acc = float(tutorial_accuracy(model, X[1000:], Y[1000:]))
before = compiles[0]
loss = feedforward_energy(1)
energy2 = float(tutorial(1))
acc = float(tutorial_accuracy(model, X[1000:], Y[1000:]))
for i in range(2, 12):
    tutorial(i)
    tutorial_accuracy(model, X[1000:], Y[1000:])
moved = [float(np.abs(np.asarray(l.nn.weight.value) - f).max()) for l, f in zip(model.layers, first)]
print(
    f"tutorial-style pxf.jit step (T=20): energy after inference {energy2:.4f} < feedforward energy {loss:.4f}: "
    f"{energy2 < loss}"
)
print(
    f"  largest weight change per layer after 12 steps: {[f'{m:.2e}' for m in moved]}; compilations in steps "
    f"2-12 with evaluations (another batch size) between: {compiles[0] - before}; accuracy "
    f"{float(tutorial_accuracy(model, X[1000:], Y[1000:])):.3f}"
)
before = compiles[0]
model.clear_params(pxc.VodeParam)
interrupted, mixed = interrupt_at_random(lambda: tutorial(0), optim)
print(
    f"  Ctrl-C at 40 random moments (activities cleared first): {interrupted} interrupted a step; "
    f"half-written models: {mixed}; compilations meanwhile: {compiles[0] - before}"
)
tutorial(1)
print(f"  training continues after the interrupts; accuracy {float(tutorial_accuracy(model, X[1000:], Y[1000:])):.3f}")


# Two threads at once, each training its own model (packaged step, evaluations in between), against
# the same training run alone; then the global RKG must hold a key, not a tracer.
def train_in_thread(seed: int, results: dict) -> None:
    net = PCMLP([64, 128, 128, 10], rkg=RandomKeyGenerator(seed))
    optim = pxu.Optim(ADAM, pxu.Mask(pxnn.LayerParam)(net))  # one optax object: a new one would compile anew
    first = [np.asarray(l.nn.weight.value) for l in net.layers]
    energies = []
    for i in range(12):
        out = pxi.train_supervised(
            net, optim, X[64 * i : 64 * i + 64], Y[64 * i : 64 * i + 64], inference=DISCRETE
        )
        energies.append((float(out["loss"]), float(out["energy"])))
        if i % 4 == 3:
            pxi.evaluate_accuracy(net, X[1000:], Y[1000:])
    results[seed] = ([np.asarray(p.value) for p in optim.params], first, energies)


DISCRETE = pxi.DiscreteInference(step_size=0.1, steps=20)
ADAM = optax.adam(1e-3)
alone: dict = {}
for seed in (1, 2):
    train_in_thread(seed, alone)
together: dict = {}
before = compiles[0]
threads = [threading.Thread(target=train_in_thread, args=(seed, together)) for seed in (1, 2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
same = all(np.array_equal(a, b) for seed in (1, 2) for a, b in zip(alone[seed][0], together[seed][0]))
moved = [
    min(float(np.abs(np.asarray(w) - f).max()) for w, f in zip(together[seed][0][0::2], together[seed][1]))
    for seed in (1, 2)
]
infers = all(energy < loss for seed in (1, 2) for loss, energy in together[seed][2])
print(
    f"two threads, two models (12 steps each, evaluations between): weights equal to each trained alone: {same}; "
    f"energy after inference < feedforward loss at every step: {infers}; smallest largest-weight-change over the "
    f"layers: {[f'{m:.2e}' for m in moved]}; compilations: {compiles[0] - before}; "
    f"RKG holds a tracer: {isinstance(RKG.key.value, jax.core.Tracer)}"
)
