"""μPC and the energy regularisers: pcframe's packaged step against a hand-written pure-JAX step, same run.

W1-sized: ``ResidualPCMLP(784, 128, 3, 10, tanh, MuPC())`` (784-128-128-10, one residual block), batch 64,
T=20 per-sample gradient steps of 0.1 on the activities, one Adam 1e-3 weight step. The reference is the same
step written in JAX + optax with the whole inference loop inside one ``jax.jit`` (``lax.scan``). Rows: μPC alone,
and μPC with ``WeightDecay(1e-4)``, ``SpectralPenalty(1e-4)`` and ``ActivityDecay(1e-3)`` in the energy. Each
prints the median step time of both and their ratio (pcframe / reference, target <= 1.1), and the largest weight
difference after the first step (the two compute the same thing).

    python benchmarks/mupc.py [--reps 200]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import MuPC, ResidualPCMLP

BATCH, T, ETA, LR = 64, 20, 0.1, 1e-3
WD, SP, AD = 1e-4, 1e-4, 1e-3


def reference_step(scales, regularised):
    """A jitted pure-JAX μPC training step on a list of weight matrices."""
    a = scales
    tx = optax.adam(LR)

    def predictions(ws, x, zs):
        us = [a[0] * x @ ws[0].T]
        for l in range(1, len(ws) - 1):
            us.append(zs[l - 1] + a[l] * jnp.tanh(zs[l - 1]) @ ws[l].T)
        return us, a[-1] * jnp.tanh(zs[-1]) @ ws[-1].T

    def energy_sum(ws, zs, x, y):
        us, out = predictions(ws, x, zs)
        e = sum(0.5 * jnp.sum((z - u) ** 2) for z, u in zip(zs, us)) + 0.5 * jnp.sum((y - out) ** 2)
        if regularised:
            e += 0.5 * AD * sum(jnp.sum(z**2) for z in zs)
        return e

    def weight_terms(ws):
        spectral = sum(jnp.sum((w.T @ w - jnp.eye(w.shape[1])) ** 2) for w in ws)
        return 0.5 * WD * sum(jnp.sum(w**2) for w in ws) + 0.5 * SP * spectral

    @jax.jit
    def step(ws, state, x, y):
        zs = [a[0] * x @ ws[0].T]
        for l in range(1, len(ws) - 1):
            zs.append(zs[-1] + a[l] * jnp.tanh(zs[-1]) @ ws[l].T)
        zs = jax.lax.scan(
            lambda z, _: ([u - ETA * g for u, g in zip(z, jax.grad(energy_sum, 1)(ws, z, x, y))], None), zs, None, T
        )[0]

        def loss(ws):
            mean = energy_sum(ws, zs, x, y) / x.shape[0]
            return mean + weight_terms(ws) if regularised else mean

        updates, state = tx.update(jax.grad(loss)(ws), state, ws)
        return optax.apply_updates(ws, updates), state

    return tx, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batches = [
        (jnp.asarray(rng.normal(size=(BATCH, 784)), jnp.float32), jax.nn.one_hot(rng.integers(0, 10, BATCH), 10))
        for _ in range(4)
    ]
    print(f"{'workload':34s} {'pcframe':>10s} {'reference':>10s} {'ratio':>6s} {'max |dW|':>9s}")
    for name, regularised in (("W1 μPC", False), ("W1 μPC + WD + spectral + act. decay", True)):
        px.RKG.seed(0)
        regs = (pxc.WeightDecay(WD), pxc.SpectralPenalty(SP), pxc.ActivityDecay(AD)) if regularised else ()
        model = ResidualPCMLP(784, 128, 3, 10, act_fn="tanh", parametrisation=MuPC(), regularisers=regs)
        ws = [layer.nn.weight.value for layer in model.layers]
        optim = pxu.Optim(optax.adam(LR), pxu.Mask(pxnn.LayerParam)(model))
        inference = pxi.DiscreteInference(step_size=ETA, steps=T)
        tx, ref = reference_step(model.scales, regularised)
        state = tx.init(ws)

        x, y = batches[0]
        pxi.train_supervised(model, optim, x, y, inference=inference)
        ws, state = ref(ws, state, x, y)
        diff = max(float(jnp.max(jnp.abs(layer.nn.weight.value - w))) for layer, w in zip(model.layers, ws))

        times = {"pcframe": [], "reference": []}
        for i in range(args.reps + 10):
            x, y = batches[i % len(batches)]
            start = time.perf_counter()
            jax.block_until_ready(pxi.train_supervised(model, optim, x, y, inference=inference)["energy"])
            mid = time.perf_counter()
            ws, state = jax.block_until_ready(ref(ws, state, x, y))
            end = time.perf_counter()
            if i >= 10:
                times["pcframe"].append(mid - start)
                times["reference"].append(end - mid)
        ours, theirs = np.median(times["pcframe"]), np.median(times["reference"])
        print(f"{name:34s} {ours * 1e3:8.2f}ms {theirs * 1e3:8.2f}ms {ours / theirs:6.2f} {diff:9.1e}")


if __name__ == "__main__":
    main()
