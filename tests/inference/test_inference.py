"""Discrete and ODE inference: convergence, agreement, steady-state stop, recording."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.core import RandomKeyGenerator
from pcframe.models import PCMLP, PCVGG
from tests.conftest import hand_energy, weights


def _model(batch=4):
    model = PCMLP([3, 6, 5, 2])
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 3))
    y = jax.random.normal(jax.random.PRNGKey(1), (batch, 2))
    return model, x, y


@pxf.jit(static_argnums=0)
def run(inference, x, *, model):
    return inference.run(model, x)


def _activities(model):
    return [np.asarray(v.h.value) for v in model.vodes[:-1]]


def test_discrete_sgd_and_ode_reach_the_same_equilibrium():
    model, x, y = _model()
    pxi.init_forward(model, x, y)
    run(pxi.DiscreteInference(optax.sgd(0.5), steps=3000), x, model=model)
    discrete = _activities(model)
    pxi.init_forward(model, x, y)
    tight = diffrax.PIDController(rtol=1e-6, atol=1e-6)
    stats = run(pxi.ODEInference(stepsize_controller=tight, max_t1=5000.0), x, model=model)
    ode = _activities(model)
    assert bool(stats["steady"])
    grads = jax.grad(lambda hs: hand_energy(weights(model), hs, x, y))(ode)
    assert max(float(jnp.max(jnp.abs(g))) for g in grads) < 1e-5, "the ODE solution is a stationary point"
    for a, b in zip(discrete, ode):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_discrete_inference_matches_hand_written_sgd_loop():
    model, x, y = _model()
    pxi.init_forward(model, x, y)
    hs = _activities(model)
    stats = run(pxi.DiscreteInference(optax.sgd(0.3), steps=7, record_energies=True), x, model=model)
    energies = []
    for _ in range(7):
        energy, grads = jax.value_and_grad(lambda hs: hand_energy(weights(model), hs, x, y))(hs)
        energies.append(energy)
        hs = [h - 0.3 * len(x) * g for h, g in zip(hs, grads)]  # each sample: its own gradient
    for a, b in zip(_activities(model), hs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["energies"].sum(axis=1), energies, rtol=1e-5)
    assert stats["energies"].shape == (7, 3)


def test_ode_energy_decreases_and_recording_pads_with_nan():
    model, x, y = _model()
    pxi.init_forward(model, x, y)
    stats = run(pxi.ODEInference(max_t1=50.0, max_steps=64, record_energies=True), x, model=model)
    steps = int(stats["accepted_steps"])
    totals = np.asarray(stats["energies"]).sum(axis=1)
    assert 0 < steps <= int(stats["steps"]) < 64
    assert np.all(np.isfinite(totals[:steps])), "one recorded entry per accepted step"
    assert np.all(np.diff(totals[:steps]) <= 1e-6), "gradient flow never increases the energy"
    assert np.all(np.isnan(totals[steps:]))


def test_steady_state_stops_early_and_fixed_dt_runs_to_t1():
    model, x, y = _model()
    pxi.init_forward(model, x, y)
    early = run(pxi.ODEInference(max_t1=1000.0), x, model=model)
    assert bool(early["steady"]) and float(early["t1"]) < 1000.0
    pxi.init_forward(model, x, y)
    fixed = run(pxi.ODEInference(solver=diffrax.Euler(), dt=0.5, max_t1=5.0, steady_state=False), x, model=model)
    assert int(fixed["steps"]) == 10 and float(fixed["t1"]) == pytest.approx(5.0)


def test_bad_engine_options_are_clear_errors():
    with pytest.raises(TypeError, match="optax optimiser"):
        pxi.DiscreteInference("sgd", 10)
    with pytest.raises(ValueError, match="non-negative int"):
        pxi.DiscreteInference(optax.sgd(0.1), -1)
    with pytest.raises(TypeError, match="diffrax solver"):
        pxi.ODEInference(solver="heun")
    with pytest.raises(ValueError, match="fixed dt"):
        pxi.ODEInference(stepsize_controller=diffrax.ConstantStepSize())
    with pytest.raises(ValueError, match="max_t1 must be positive"):
        pxi.ODEInference(max_t1=0)


@pytest.mark.parametrize("unroll", [True, 3])
def test_an_unrolled_discrete_loop_gives_the_rolled_loops_result(unroll):
    """`unroll` changes how XLA runs the loop, not what it computes (a conv net, where CPU unrolls by default)."""
    x = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    results = []
    for loop in (1, unroll):
        model = PCVGG(channels=(1, 4, 4), num_classes=3, image_size=8, rkg=RandomKeyGenerator(0))
        optim = pxu.Optim(optax.sgd(0.05), pxu.Mask(pxnn.LayerParam)(model))
        inference = pxi.DiscreteInference(optax.sgd(0.1), 7, unroll=loop, record_energies=True)
        out = pxi.train_supervised(model, optim, x, y, inference=inference)
        results.append(([np.asarray(p.value) for p in optim.params], np.asarray(out["inference_energies"])))
    (rolled, rolled_energies), (unrolled, unrolled_energies) = results
    np.testing.assert_allclose(unrolled_energies, rolled_energies, rtol=1e-5, atol=1e-6)
    for a, b in zip(unrolled, rolled):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_default_unrolls_short_loops_on_cpu_only():
    written_out = jax.default_backend() == "cpu"
    assert pxi.DiscreteInference(steps=7).loop_unroll() is (True if written_out else 1)
    assert pxi.DiscreteInference(steps=20).loop_unroll() is 1  # noqa: F632 (an int, not True)
    assert pxi.DiscreteInference(steps=7, unroll=1).loop_unroll() is 1  # noqa: F632
    with pytest.raises(ValueError, match="unroll must be"):
        pxi.DiscreteInference(unroll=0)
