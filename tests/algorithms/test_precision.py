"""Precision-weighted relaxation against hand-written references."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import weights, x64
from tests.inference.compiles import count_compilations

SIZES = [5, 7, 6, 4, 3]
PRECISIONS = (0.25, 0.5, 2.0, 4.0)  # one per node: three hidden, the clamped output


def weighted_energy(ws, hs, x, y, precisions):
    """Sum over samples of sum_l pi_l 0.5 ||z_l - f(W_l z_{l-1} + b_l)||^2 (tanh hidden, linear output)."""
    zs = [x, *hs, y]
    total = 0.0
    for layer, ((w, b), below, above, pi) in enumerate(zip(ws, zs[:-1], zs[1:], precisions)):
        pre = below @ w.T + b
        u = pre if layer == len(ws) - 1 else jnp.tanh(pre)
        total = total + pi * 0.5 * jnp.sum((above - u) ** 2)
    return total


def _data(batch):
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    return jax.random.normal(kx, (batch, SIZES[0])), jax.random.normal(ky, (batch, SIZES[-1]))


def _hand_relaxation(model, x, y, precisions, eta, steps, batch_mean=False):
    ws = weights(model)
    hs = [v.h.value for v in model.vodes[:-1]]
    scale = 1.0 / x.shape[0] if batch_mean else 1.0
    for _ in range(steps):
        grads = jax.grad(lambda hs: scale * weighted_energy(ws, hs, x, y, precisions))(hs)
        hs = [h - eta * g for h, g in zip(hs, grads)]
    return hs


@pytest.mark.parametrize("batch_mean", [False, True])
def test_relaxation_descends_the_weighted_energy(batch_mean):
    with x64():
        x, y = _data(64)
        x, y = x.astype(jnp.float64), y.astype(jnp.float64)
        model = PCMLP(SIZES)
        pxi.init_forward(model, x, y)
        expected = _hand_relaxation(model, x, y, PRECISIONS, 0.2, 12, batch_mean)
        plain = _hand_relaxation(model, x, y, (1.0,) * 4, 0.2, 12, batch_mean)
        assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(expected, plain)) > 1e-3  # weighting matters
        inner = pxi.DiscreteInference(optax.sgd(0.2), steps=12, batch_mean=batch_mean)
        pxi.PrecisionWeighted(inner, PRECISIONS).run(model, x)
        for vode, h in zip(model.vodes[:-1], expected):
            np.testing.assert_allclose(vode.h.value, h, rtol=1e-10, atol=1e-12)


def test_unit_precisions_are_the_inner_strategy():
    x, y = _data(16)
    inner = pxi.DiscreteInference(step_size=0.1, steps=10)
    results = []
    for inference in (inner, pxi.PrecisionWeighted(inner, (1.0,) * 4)):
        px.RKG.seed(0)
        model = PCMLP(SIZES)
        pxi.init_forward(model, x, y)
        inference.run(model, x)
        results.append([v.h.value for v in model.vodes])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_sample_relaxes_alike_in_any_batch():
    x, y = _data(64)
    inference = pxi.PrecisionWeighted(pxi.DiscreteInference(step_size=0.1, steps=10), PRECISIONS)
    model = PCMLP(SIZES)
    pxi.init_forward(model, x, y)
    inference.run(model, x)
    batch = [v.h.value[:3] for v in model.vodes[:-1]]
    pxi.init_forward(model, x[:3], y[:3])
    inference.run(model, x[:3])
    for vode, expected in zip(model.vodes[:-1], batch):
        np.testing.assert_allclose(vode.h.value, expected, rtol=1e-5, atol=1e-6)


def test_ode_inner_strategy_reaches_the_weighted_equilibrium():
    with x64():
        x, y = _data(8)
        x, y = x.astype(jnp.float64), y.astype(jnp.float64)
        model = PCMLP(SIZES)
        pxi.init_forward(model, x, y)
        tight = diffrax.PIDController(rtol=1e-8, atol=1e-8)
        ode = pxi.ODEInference(stepsize_controller=tight, max_t1=200.0, steady_rtol=1e-7, steady_atol=1e-7)
        stats = pxi.PrecisionWeighted(ode, PRECISIONS).run(model, x)
        assert bool(stats["steady"])
        hs = [v.h.value for v in model.vodes[:-1]]
        grads = jax.grad(lambda hs: weighted_energy(weights(model), hs, x, y, PRECISIONS))(hs)
        assert max(float(jnp.max(jnp.abs(g))) for g in grads) < 1e-5


def test_the_weight_step_learns_from_the_unweighted_energy_and_sweeps_compile_once():
    x, y = _data(32)
    model = PCMLP(SIZES)
    optim_w = pxu.Optim(optax.sgd(0.05), pxu.Mask(pxnn.LayerParam)(model))
    ws = weights(model)
    pxi.init_forward(model, x, y)
    hs = _hand_relaxation(model, x, y, PRECISIONS, 0.1, 8)
    expected = jax.grad(lambda ws: weighted_energy(ws, hs, x, y, (1.0,) * 4) / x.shape[0])(ws)
    inner = pxi.DiscreteInference(step_size=0.1, steps=8)
    pxi.train_supervised(model, optim_w, x, y, inference=pxi.PrecisionWeighted(inner, PRECISIONS))
    for layer, (w, b), (gw, gb) in zip(model.layers, ws, expected):
        np.testing.assert_allclose(layer.nn.weight.value, w - 0.05 * gw, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.nn.bias.value, b - 0.05 * gb, rtol=1e-4, atol=1e-6)
    with count_compilations() as compiled:
        for r in (1.5, 2.0, 3.0):
            precisions = tuple(r ** (3 - l) for l in range(4))
            pxi.train_supervised(model, optim_w, x, y, inference=pxi.PrecisionWeighted(inner, precisions))
    assert compiled == [0]


def test_bad_precisions_are_refused():
    inner = pxi.DiscreteInference(step_size=0.1, steps=3)
    with pytest.raises(TypeError, match="tuple of numbers, one per node"):
        pxi.PrecisionWeighted(inner, 2.0)
    with pytest.raises(ValueError, match=r"precisions\[1\] must be a positive number"):
        pxi.PrecisionWeighted(inner, (1.0, 0.0))
    with pytest.raises(TypeError, match="needs the strategy"):
        pxi.PrecisionWeighted("sgd", (1.0,))
    model = PCMLP(SIZES)
    x, y = _data(4)
    pxi.init_forward(model, x, y)
    with pytest.raises(ValueError, match="3 precisions but PCMLP has 4 nodes"):
        pxi.PrecisionWeighted(inner, (1.0, 1.0, 1.0)).run(model, x)
