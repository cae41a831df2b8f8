"""Hybrid PC trains the amortiser on its own feedforward guesses (the paper's code, JPC's objective)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import weights

Y = jax.random.normal(jax.random.PRNGKey(0), (16, 6))
LR = 0.5


def _amortiser_loss(ws, guesses, targets, y):
    """(1/N) sum_i sum_l 1/2 ||z*_l - g_l(a_{l-1})||^2, a_0 = y, written from the formula."""
    inputs = [y] + guesses[:-1]
    total = 0.0
    for layer, ((w, b), below, target) in enumerate(zip(ws, inputs, targets)):
        pre = below @ w.T + b
        u = pre if layer == len(ws) - 1 else jnp.tanh(pre)
        total = total + 0.5 * jnp.sum((target - u) ** 2)
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
    if inputs is pxi.AmortiserInputs.EQUILIBRIUM:
        guesses = equilibrium + guesses[2:]
    grads = jax.grad(_amortiser_loss)(ws, guesses, equilibrium, Y)
    for (w, b), (gw, gb), (w_new, b_new) in zip(ws, grads, weights(amortiser)):
        np.testing.assert_allclose(w_new, w - LR * gw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b_new, b - LR * gb, rtol=1e-5, atol=1e-6)
