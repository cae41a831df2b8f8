"""Default ODE inference against JPC's `make_pc_step` defaults: solver steps and the accuracy they buy.

Both train W1's network (784-128-128-10, tanh, squared error, batch 64, Adam 1e-3) on
MNIST-5k (4,000 / 1,000) from the same initial weights for a few epochs:

- **pcframe `ODEInference()`**: its defaults (Heun, PID rtol = atol = 1e-3, max_t1 = 20,
  stop when every sample is steady), per-sample inference.
- **JPC's defaults, hand-written**: what `jpc.make_pc_step` does with its defaults, in
  pure JAX + diffrax: the vector field of the *batch-mean* energy, Heun, PID
  rtol = atol = 1e-3, max_t1 = 20, stop when the RMS of the whole batch's vector field is
  under atol + rtol RMS(z) (diffrax's steady-state test).
- **JPC, tolerances / 64**: the same with rtol = atol = 1e-3 / 64, what a JPC user must set
  for the batch-mean field (1/64 of a sample's) to be integrated as far as a sample's own.

It prints the mean number of solver steps per batch and the test accuracy after each epoch.

    python benchmarks/ode_defaults.py --epochs 3
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parent))
from time_to_accuracy import _accuracy, _feedforward, mnist_5k  # noqa: E402
from workloads import W1, initial_weights, reference_energy  # noqa: E402

import pcframe.inference as pxi  # noqa: E402
import pcframe.nn as pxnn  # noqa: E402
import pcframe.utils as pxu  # noqa: E402
from pcframe.models import PCMLP  # noqa: E402


def jpc_defaults_step(layers, opt_state, x, y, tol=1e-3):
    """JPC's `make_pc_step` defaults, hand-written: batch-mean vector field, Heun + PID, steady-state stop."""
    hs = []
    for W, b in layers[:-1]:
        hs.append(W1.act_fn((hs[-1] if hs else x) @ W.T + b))

    def field(t, hs, args):
        return jax.tree_util.tree_map(jnp.negative, jax.grad(lambda h: reference_energy(W1, layers, h, x, y))(hs))

    def rms(tree):
        leaves = jax.tree_util.tree_leaves(tree)
        return jnp.sqrt(sum(jnp.sum(a**2) for a in leaves) / sum(a.size for a in leaves))

    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Heun(),
        0.0,
        20.0,
        None,
        hs,
        stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
        event=diffrax.Event(lambda t, hs, args, **kw: rms(field(t, hs, args)) < tol + tol * rms(hs)),
        max_steps=4096,
        throw=False,
    )
    hs = [z[-1] for z in solution.ys]
    grads = jax.grad(lambda layers: reference_energy(W1, layers, hs, x, y))(layers)
    updates, opt_state = optax.adam(1e-3).update(grads, opt_state, layers)
    return optax.apply_updates(layers, updates), opt_state, solution.stats["num_steps"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = mnist_5k()
    weights = initial_weights(W1.sizes)
    tolerances = {"JPC defaults": 1e-3, "JPC, tolerances / 64": 1e-3 / 64}
    jpc = {
        name: ([(jnp.asarray(W), jnp.asarray(b)) for W, b in weights], jax.jit(functools.partial(jpc_defaults_step, tol=tol)))
        for name, tol in tolerances.items()
    }
    states = {name: optax.adam(1e-3).init(layers) for name, (layers, _) in jpc.items()}
    model = PCMLP(list(W1.sizes), jnp.tanh)
    for layer, (W, b) in zip(model.layers, weights):
        layer.nn.weight.value, layer.nn.bias.value = jnp.asarray(W), jnp.asarray(b)
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.ODEInference()
    names = ["pcframe ODEInference()", *tolerances]
    print("| epoch | " + " | ".join(f"{n}: steps per batch | accuracy" for n in names) + " |")
    print("|---:|" + "---:|---:|" * len(names))
    for epoch in range(1, args.epochs + 1):
        steps = {name: [] for name in names}
        for i in range(len(x_train) // 64):
            x, y = x_train[i * 64 : (i + 1) * 64], y_train[i * 64 : (i + 1) * 64]
            steps[names[0]].append(pxi.train_supervised(model, optim, x, y, inference=inference)["steps"])
            for name, (layers, step) in jpc.items():
                layers, states[name], taken = step(layers, states[name], x, y)
                jpc[name] = (layers, step)
                steps[name].append(taken)
        accuracy = {names[0]: float(pxi.evaluate_accuracy(model, x_test, jnp.asarray(y_test)))}
        accuracy.update({name: _accuracy(_feedforward(W1, layers, x_test), y_test) for name, (layers, _) in jpc.items()})
        cells = " | ".join(f"{np.mean([int(s) for s in steps[n]]):.1f} | {accuracy[n]:.3f}" for n in names)
        print(f"| {epoch} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
