"""Hybrid PC: default node pairs, and the amortiser trained on its own feedforward guesses with JPC's objective.

JPC's ``hpc_energy_fn`` (jpc/_core/_energies.py) is ``sum(err ** 2) / batch_size`` summed over the layers: no 1/2.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP, ResidualPCMLP
from tests.conftest import weights

Y = jax.random.normal(jax.random.PRNGKey(0), (16, 6))
LR = 0.5


def _amortiser_loss(ws, guesses, targets, y, c):
    """(1/N) sum_i sum_l c ||z*_l - g_l(a_{l-1})||^2, a_0 = y, written from the formula."""
    inputs = [y] + guesses[:-1]
    total = 0.0
    for layer, ((w, b), below, target) in enumerate(zip(ws, inputs, targets)):
        pre = below @ w.T + b
        u = pre if layer == len(ws) - 1 else jnp.tanh(pre)
        total = total + c * jnp.sum((target - u) ** 2)
    return total / y.shape[0]


def _feedforward(ws, y):
    guesses, z = [], y
    for layer, (w, b) in enumerate(ws):
        z = z @ w.T + b
        z = z if layer == len(ws) - 1 else jnp.tanh(z)
        guesses.append(z)
    return guesses


@pytest.mark.parametrize("inputs", list(pxi.AmortiserInputs))
def test_amortiser_update_equals_the_hand_written_objective(inputs):
    generator = PCMLP([3, 5, 6], free_input=True)
    amortiser = PCMLP([6, 5, 3])
    optim_g = pxu.Optim(optax.sgd(0.0), pxu.Mask(pxnn.LayerParam)(generator))
    optim_a = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(amortiser))
    ws = weights(amortiser)
    pxi.train_hybrid(
        generator,
        amortiser,
        optim_g,
        optim_a,
        Y,
        inference=pxi.DiscreteInference(step_size=0.2, steps=30),
        amortiser_inputs=inputs,
    )
    equilibrium = [generator.vodes[0].h.value, generator.input_vode.h.value]  # z*_1, z*_0: the amortiser's targets
    guesses = _feedforward(ws, Y)
    c = 1.0  # JPC's objective: no 1/2
    if inputs is pxi.AmortiserInputs.EQUILIBRIUM:
        guesses, c = equilibrium + guesses[2:], 0.5  # the amortiser's PC energy
    grads = jax.grad(_amortiser_loss)(ws, guesses, equilibrium, Y, c)
    for (w, b), (gw, gb), (w_new, b_new) in zip(ws, grads, weights(amortiser)):
        np.testing.assert_allclose(w_new, w - LR * gw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b_new, b - LR * gb, rtol=1e-5, atol=1e-6)


X = jax.random.normal(jax.random.PRNGKey(1), (16, 4))
ETA, STEPS = 0.1, 8
MODELS = {  # generator, amortiser (its sizes reversed), prior
    "PCMLP prior": lambda: (PCMLP([4, 3, 5, 6]), PCMLP([6, 5, 3, 4]), X),
    "ResidualPCMLP prior": lambda: (
        ResidualPCMLP(4, 5, 3, 6, act_fn="tanh", bias=True),
        ResidualPCMLP(6, 5, 3, 4, act_fn="tanh", bias=True),
        X,
    ),
    "PCMLP free input": lambda: (PCMLP([4, 3, 5, 6], free_input=True), PCMLP([6, 5, 3, 4]), None),
}


def _predict(model, ws, k, z):
    """Layer k of a PCMLP (tanh) or a ResidualPCMLP (tanh, bias inside the multiplier), from the formula."""
    w, b = ws[k]
    last = k == len(ws) - 1
    if isinstance(model, ResidualPCMLP):
        a = model.scales[k]
        if k == 0:
            return a * (z @ w.T + b)
        branch = a * (jnp.tanh(z) @ w.T + b)
        return branch if last else z + branch
    pre = z @ w.T + b
    return pre if last else jnp.tanh(pre)


def _hand_hybrid_step(generator, amortiser, y, x):
    """The equilibrium and both weight gradients of one hybrid step, written from the definitions.

    Amortiser a_0 = y, a_k = g_k(a_{k-1}); generator latents z_l (z_0 too without a prior) start at a_{L-l};
    inference: z -= eta dE/dz per sample, E = sum_l 1/2 ||z_l - f_l(z_{l-1})||^2 (z_0 = x, z_L = y);
    generator gradient: d(E / N)/d theta at z*; amortiser gradient: JPC's hpc_energy_fn,
    (1/N) sum_i sum_k ||t_k - g_k(a_{k-1})||^2 with t_k = z*_{L-k} (t_L = x with a prior).
    """
    wg, wa = weights(generator), weights(amortiser)
    depth, n = len(wg), y.shape[0]
    a = [y]
    for k in range(len(wa)):
        a.append(_predict(amortiser, wa, k, a[-1]))
    prior = [] if x is None else [x]
    z = [a[depth - layer] for layer in range(len(prior), depth)]

    def energy(ws, z):
        zs = prior + list(z) + [y]
        return sum(0.5 * jnp.sum((zs[i + 1] - _predict(generator, ws, i, zs[i])) ** 2) for i in range(depth))

    for _ in range(STEPS):
        z = [zi - ETA * gi for zi, gi in zip(z, jax.grad(energy, argnums=1)(wg, z))]
    grads_g = jax.grad(lambda ws: energy(ws, z) / n)(wg)
    targets = prior + z

    def jpc_hpc_energy(ws):
        return (
            sum(
                jnp.sum((targets[depth - k] - _predict(amortiser, ws, k - 1, a[k - 1])) ** 2)
                for k in range(1, depth + 1)
            )
            / n
        )

    return z, grads_g, jax.grad(jpc_hpc_energy)(wa)


@pytest.mark.parametrize("case", list(MODELS))
def test_hybrid_step_with_default_pairs_equals_the_hand_written_step(case):
    """With a prior the generator's hidden nodes are guessed by the amortiser's hidden nodes (not its clamped
    output); both SGD updates equal the hand-written ones, the amortiser's at JPC's rate."""
    generator, amortiser, x = MODELS[case]()
    optim_g = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(generator))
    optim_a = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(amortiser))
    wg, wa = weights(generator), weights(amortiser)
    equilibrium, grads_g, grads_a = _hand_hybrid_step(generator, amortiser, Y, x)
    pxi.train_hybrid(
        generator, amortiser, optim_g, optim_a, Y, x, inference=pxi.DiscreteInference(step_size=ETA, steps=STEPS)
    )
    latents = ([] if x is not None else [generator.input_vode]) + generator.vodes[:-1]
    for latent, z in zip(latents, equilibrium, strict=True):
        np.testing.assert_allclose(latent.h.value, z, rtol=1e-5, atol=1e-6)
    for before, grads, model in ((wg, grads_g, generator), (wa, grads_a, amortiser)):
        for (w, b), (gw, gb), (w_new, b_new) in zip(before, grads, weights(model), strict=True):
            np.testing.assert_allclose(w_new, w - LR * gw, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(b_new, b - LR * gb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", list(MODELS))
def test_default_pairs_mirror_the_generator(case):
    """The generator's node l steps above its input is guessed by the amortiser's node l steps below its output:
    with a prior the amortiser's output is clamped to it and guesses nothing; with a free input it guesses the
    generator's input node."""
    generator, amortiser, x = MODELS[case]()
    latents, guesses = pxi.default_pairs(generator, amortiser)
    g, a = generator.vodes, amortiser.vodes
    if x is None:
        expected = [(generator.input_vode, a[2]), (g[0], a[1]), (g[1], a[0])]
    else:
        expected = [(g[0], a[1]), (g[1], a[0])]
    assert [(id(u), id(v)) for u, v in zip(latents, guesses, strict=True)] == [(id(u), id(v)) for u, v in expected]
    assert [v.shape for v in guesses] == [v.shape for v in latents]


def test_default_pairs_name_both_models_when_the_layouts_differ():
    with pytest.raises(ValueError, match=r"the generator PCMLP has 3 nodes but the amortiser ResidualPCMLP has 2"):
        pxi.default_pairs(PCMLP([4, 3, 5, 6]), ResidualPCMLP(6, 5, 2, 4))
