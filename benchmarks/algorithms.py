"""ePC and bidirectional PC: pcframe's packaged step against a hand-written pure-JAX step, same run.

W1-sized networks (784-128-128-10, tanh, batch 64, T=20 steps of 0.1 per sample, Adam 1e-3 on the batch-mean
weight gradient, squared errors). The reference holds the whole step in one `jax.jit`. Prints the median time of
each and the ratio, and the largest weight difference after the first step (both start from the same weights).

    python benchmarks/algorithms.py [--reps 200]
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
import pcframe.utils as pxu
from pcframe.models import PCMLP, BidirectionalPCMLP

SIZES, BATCH, T, ETA, LR, ALPHA_G = [784, 128, 128, 10], 64, 20, 0.1, 1e-3, 1e-3


def weights(layers):
    return [(layer.nn.weight.value, layer.nn.bias.value) for layer in layers]


def f(params, z, last):
    W, b = params
    a = z @ W.T + b
    return a if last else jnp.tanh(a)


def epc_reference(ws):
    tx = optax.adam(LR)
    n = len(ws)

    def states(ws, x, errors):
        z, zs = x, []
        for i, e in enumerate(errors):
            z = f(ws[i], z, False) + e
            zs.append(z)
        return zs

    def energy(errors, ws, x, y):
        zs = states(ws, x, errors)
        return sum(0.5 * jnp.sum(e**2) for e in errors) + 0.5 * jnp.sum((y - f(ws[-1], zs[-1], True)) ** 2)

    def pc_energy(ws, zs, x, y):
        nodes = [x, *zs, y]
        return sum(0.5 * jnp.sum((nodes[i + 1] - f(ws[i], nodes[i], i == n - 1)) ** 2) for i in range(n)) / len(x)

    @jax.jit
    def step(ws, state, x, y):
        errors = [jnp.zeros((len(x), s)) for s in SIZES[1:-1]]
        grad = jax.grad(energy)
        errors = jax.lax.fori_loop(0, T, lambda _, e: [a - ETA * g for a, g in zip(e, grad(e, ws, x, y))], errors)
        zs = states(ws, x, errors)
        grads = jax.grad(pc_energy)(ws, zs, x, y)
        updates, state = tx.update(grads, state, ws)
        return optax.apply_updates(ws, updates), state

    return step, tx.init(ws)


def bpc_reference(ws, vs):
    tx = optax.adam(LR)
    n = len(ws)

    def energy(zs, params, x, y):
        ws, vs = params
        nodes = [x, *zs, y]
        disc = sum(0.5 * jnp.sum((nodes[i + 1] - f(ws[i], nodes[i], i == n - 1)) ** 2) for i in range(n))
        gen = sum(0.5 * ALPHA_G * jnp.sum((nodes[i] - f(vs[i], nodes[i + 1], i == 0)) ** 2) for i in range(n))
        return disc + gen

    @jax.jit
    def step(params, state, x, y):
        ws, _ = params
        zs, z = [], x
        for i in range(n - 1):
            z = f(ws[i], z, False)
            zs.append(z)
        grad = jax.grad(energy)
        zs = jax.lax.fori_loop(0, T, lambda _, z: [a - ETA * g for a, g in zip(z, grad(z, params, x, y))], zs)
        grads = jax.grad(lambda p: energy(zs, p, x, y) / len(x))(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step, tx.init((ws, vs))


def time_pair(ours, reference, reps):
    for _ in range(5):
        jax.block_until_ready(ours())
        jax.block_until_ready(reference())
    a, b = [], []
    for _ in range(reps):
        for fn, out in ((ours, a), (reference, b)):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            out.append(time.perf_counter() - start)
    return float(np.median(a)), float(np.median(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    reps = parser.parse_args().reps
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(BATCH, SIZES[0])), jnp.float32)
    y = jax.nn.one_hot(rng.integers(0, 10, BATCH), 10)
    inference = pxi.DiscreteInference(step_size=ETA, steps=T)

    model = PCMLP(SIZES, rkg=px.RandomKeyGenerator(0))
    ref_step, ref_state = epc_reference(weights(model.layers))
    ref_ws = weights(model.layers)
    optim = pxu.Optim(optax.adam(LR), pxu.Mask(pxnn.LayerParam)(model))
    epc = pxi.ErrorInference(inference)
    pxi.train_supervised(model, optim, x, y, inference=epc)
    ref_ws, _ = ref_step(ref_ws, ref_state, x, y)
    diff = max(float(jnp.max(jnp.abs(a - b))) for p, q in zip(weights(model.layers), ref_ws) for a, b in zip(p, q))
    state = [ref_ws, ref_state]
    ours, theirs = time_pair(
        lambda: pxi.train_supervised(model, optim, x, y, inference=epc)["energy"],
        lambda: ref_step(state[0], state[1], x, y)[0],
        reps,
    )
    print(
        f"ePC  W1: pcframe {ours * 1e3:.2f} ms, pure JAX {theirs * 1e3:.2f} ms, ratio {ours / theirs:.2f}x "
        f"(weights after one step differ by {diff:.1e})"
    )

    model = BidirectionalPCMLP(SIZES, generative_weight=ALPHA_G, rkg=px.RandomKeyGenerator(0))
    params = (weights(model.layers), weights(model.generative_layers))
    ref_step, ref_state = bpc_reference(*params)
    optim = pxu.Optim(optax.adam(LR), pxu.Mask(pxnn.LayerParam)(model))
    pxi.train_supervised(model, optim, x, y, inference=inference)
    params, _ = ref_step(params, ref_state, x, y)
    ours_params = (weights(model.layers), weights(model.generative_layers))
    leaves = zip(jax.tree_util.tree_leaves(ours_params), jax.tree_util.tree_leaves(params))
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in leaves)
    ours, theirs = time_pair(
        lambda: pxi.train_supervised(model, optim, x, y, inference=inference)["energy"],
        lambda: ref_step(params, ref_state, x, y)[0],
        reps,
    )
    print(
        f"bPC  W1: pcframe {ours * 1e3:.2f} ms, pure JAX {theirs * 1e3:.2f} ms, ratio {ours / theirs:.2f}x "
        f"(weights after one step differ by {diff:.1e})"
    )


if __name__ == "__main__":
    main()
