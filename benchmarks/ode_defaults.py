"""Default ODE inference against JPC's `make_pc_step` defaults: solver steps and the accuracy they buy.

Both train W1's network (784-128-128-10, tanh, squared error, batch 64, Adam 1e-3) on
MNIST-5k (4,000 / 1,000) from the same initial weights for a few epochs:

- **pcframe `ODEInference()`**: its defaults (Tsit5, PID rtol = atol = 1e-4 on the worst
  sample's error, max_t1 = 20, stop when every sample is steady at ten times the controller's
  tolerances), per-sample inference.
- **pcframe, the earlier defaults**: Heun, PID rtol = atol = 1e-3 on the worst sample's
  error, the steady-state test at the controller's own tolerances.
- **JPC's defaults, hand-written**: what `jpc.make_pc_step` does with its defaults, in
  pure JAX + diffrax: the vector field of the *batch-mean* energy, Heun, PID
  rtol = atol = 1e-3, max_t1 = 20, stop when the RMS of the whole batch's vector field is
  under atol + rtol RMS(z) (diffrax's steady-state test).
- **JPC, tolerances / 64**: the same with rtol = atol = 1e-3 / 64, what a JPC user must set
  for the batch-mean field (1/64 of a sample's) to be integrated as far as a sample's own.

It prints, after each epoch, the mean number of solver steps per batch, the fraction of
batches whose inference ended at a steady state, the test accuracy and the seconds the epoch
took (the first includes compilation). Then, on 64 test digits with the trained weights of
each variant, how far the weight gradient at the point where inference stopped is from the
gradient at the exact equilibrium (Tsit5, tolerances 1e-7, steady test 1e-6, t1 up to 1000):
the relative error and the cosine, both gradients computed by `jax.grad` of the hand-written
energy.

    python benchmarks/ode_defaults.py --epochs 3
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parent))
from ode import solve  # noqa: E402
from time_to_accuracy import _accuracy, _feedforward, mnist_5k  # noqa: E402
from workloads import W1, initial_weights, reference_energy  # noqa: E402

import pcframe.inference as pxi  # noqa: E402
import pcframe.nn as pxnn  # noqa: E402
import pcframe.utils as pxu  # noqa: E402
from pcframe.models import PCMLP  # noqa: E402


def jpc_defaults_step(layers, opt_state, x, y, tol=1e-3):
    """JPC's `make_pc_step` defaults, hand-written: batch-mean vector field, Heun + PID, steady-state stop."""
    hs, (steps, steady) = solve(W1, layers, x, y, diffrax.Heun(), None, 20.0, tol=tol, steady_tol=tol)
    grads = jax.grad(lambda layers: reference_energy(W1, layers, hs, x, y))(layers)
    updates, opt_state = optax.adam(1e-3).update(grads, opt_state, layers)
    return optax.apply_updates(layers, updates), opt_state, (steps, steady, hs)


def _pcframe_model(weights):
    model = PCMLP(list(W1.sizes), jnp.tanh)
    for layer, (W, b) in zip(model.layers, weights):
        layer.nn.weight.value, layer.nn.bias.value = jnp.asarray(W), jnp.asarray(b)
    return model, pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))


def _layers(model):
    return [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]


def _gradient(layers, hs, x, y):
    grads = jax.grad(lambda layers: reference_energy(W1, layers, hs, x, y))(layers)
    return jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(grads)])


def _activities_after(inference, layers, x, y):
    """The hidden activities where `inference` stops, from the feedforward start, for a model holding `layers`."""
    model, _ = _pcframe_model(layers)
    pxi.init_forward(model, x, y)
    inference.run(model, x)
    return [v.h.value for v in model.vodes[:-1]]


EXACT = pxi.ODEInference(
    solver=diffrax.Tsit5(),
    stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-7, norm=pxi.worst_sample_rms),
    max_t1=1000.0,
    steady_rtol=1e-6,
    steady_atol=1e-6,
    max_steps=100_000,
)


def fidelity(name, layers, stopped, x, y) -> str:
    """A table row: the weight gradient where inference stopped against the one at the exact equilibrium."""
    exact = _gradient(layers, _activities_after(EXACT, layers, x, y), x, y)
    mine = _gradient(layers, stopped, x, y)
    relative = float(jnp.linalg.norm(mine - exact) / jnp.linalg.norm(exact))
    cosine = float(mine @ exact / (jnp.linalg.norm(mine) * jnp.linalg.norm(exact)))
    return f"| {name} | {relative:.3f} | {cosine:.5f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = mnist_5k()
    weights = initial_weights(W1.sizes)
    tolerances = {"JPC defaults": 1e-3, "JPC, tolerances / 64": 1e-3 / 64}
    jpc = {
        name: (
            [(jnp.asarray(W), jnp.asarray(b)) for W, b in weights],
            jax.jit(functools.partial(jpc_defaults_step, tol=tol)),
        )
        for name, tol in tolerances.items()
    }
    states = {name: optax.adam(1e-3).init(layers) for name, (layers, _) in jpc.items()}
    heun = pxi.ODEInference(
        solver=diffrax.Heun(),
        stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-3, norm=pxi.worst_sample_rms),
        steady_rtol=1e-3,
        steady_atol=1e-3,
    )
    engines = {"pcframe ODEInference()": pxi.ODEInference(), "pcframe, earlier defaults (Heun, 1e-3)": heun}
    models = {name: _pcframe_model(weights) for name in engines}
    names = [*engines, *tolerances]
    print("| epoch | variant | steps per batch | steady | accuracy | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for epoch in range(1, args.epochs + 1):
        steps = {name: [] for name in names}
        steady = {name: [] for name in names}
        seconds = dict.fromkeys(names, 0.0)
        for i in range(len(x_train) // 64):
            x, y = x_train[i * 64 : (i + 1) * 64], y_train[i * 64 : (i + 1) * 64]
            for name, inference in engines.items():
                start = time.perf_counter()
                out = jax.block_until_ready(pxi.train_supervised(*models[name], x, y, inference=inference))
                seconds[name] += time.perf_counter() - start
                steps[name].append(out["steps"])
                steady[name].append(out["steady"])
            for name, (layers, step) in jpc.items():
                start = time.perf_counter()
                layers, states[name], (taken, reached, _) = jax.block_until_ready(step(layers, states[name], x, y))
                seconds[name] += time.perf_counter() - start
                jpc[name] = (layers, step)
                steps[name].append(taken)
                steady[name].append(reached)
        accuracy = {
            name: float(pxi.evaluate_accuracy(models[name][0], x_test, jnp.asarray(y_test))) for name in engines
        }
        accuracy.update(
            {name: _accuracy(_feedforward(W1, layers, x_test), y_test) for name, (layers, _) in jpc.items()}
        )
        for n in names:
            mean_steps = np.mean([int(s) for s in steps[n]])
            reached = np.mean([bool(s) for s in steady[n]])
            print(
                f"| {epoch} | {n} | {mean_steps:.1f} | {reached:.2f} | {accuracy[n]:.3f} | {seconds[n]:.2f} |",
                flush=True,
            )
    x, y = x_test[:64], jnp.asarray(y_test[:64])
    print()
    print(
        "| variant (trained weights, 64 test digits) | weight gradient: relative error to the exact equilibrium's | cosine |"
    )
    print("|---|---:|---:|")
    for name, inference in engines.items():
        layers = _layers(models[name][0])
        print(fidelity(name, layers, _activities_after(inference, layers, x, y), x, y))
    for name, (layers, step) in jpc.items():
        _, _, (_, _, stopped) = step(layers, states[name], x, y)
        print(fidelity(name, layers, stopped, x, y))


if __name__ == "__main__":
    main()
