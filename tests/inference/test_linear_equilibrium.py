"""Numerical inference on a deep linear network reaches the closed-form equilibrium."""

import diffrax
import jax
import numpy as np
import optax
import pytest

import pcframe.functional as pxf
import pcframe.inference as pxi
from pcframe.analysis import linear_activity_solution, linear_equilibrium_energy, linear_weights
from pcframe.models import PCMLP


@pxf.jit(static_argnums=0)
def run(inference, x, *, model):
    return inference.run(model, x)


@pytest.mark.parametrize(
    "inference",
    [
        pxi.ODEInference(stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6), max_t1=5000.0),
        pxi.DiscreteInference(optax.sgd(0.125), steps=4000),
    ],
    ids=["ode", "discrete"],
)
def test_inference_reaches_the_analytical_solution(inference):
    model = PCMLP([3, 5, 4, 2], act_fn=lambda a: a, bias=False)
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
    y = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
    pxi.init_forward(model, x, y)
    run(inference, x, model=model)
    ws = linear_weights(model)
    energy, _ = pxi.batch_energy(model, x)
    expected_energy = linear_equilibrium_energy(ws, x, y)
    assert abs(float(energy) - float(expected_energy)) / float(expected_energy) < 1e-3
    for vode, expected in zip(model.vodes[:-1], linear_activity_solution(ws, x, y)):
        error = np.linalg.norm(vode.h.value - expected) / np.linalg.norm(expected)
        assert error < 1e-3
