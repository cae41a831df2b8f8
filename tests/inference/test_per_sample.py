"""A sample's inference does not depend on its batch; the default ODE inference does something."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import hand_energy, weights

X = jax.random.normal(jax.random.PRNGKey(0), (64, 3))
Y = jax.random.normal(jax.random.PRNGKey(1), (64, 2))
SAMPLE = 5


def _activities_after(inference, model, x, y):
    pxi.init_forward(model, x, y)
    inference.run(model, x)
    return [np.asarray(v.h.value) for v in model.vodes[:-1]]


@pytest.mark.parametrize(
    "inference, tolerance",
    [
        (pxi.DiscreteInference(step_size=0.2, steps=20), 1e-6),
        (pxi.ODEInference(solver=diffrax.Euler(), dt=0.2, max_t1=4.0, steady_state=False), 1e-6),
        (pxi.ODEInference(max_t1=20.0), 2e-2),
    ],
    ids=["sgd", "euler", "adaptive"],
)
def test_a_sample_is_inferred_the_same_alone_and_in_a_batch_of_64(inference, tolerance):
    model = PCMLP([3, 6, 5, 2])
    batched = _activities_after(inference, model, X, Y)
    alone = _activities_after(inference, model, X[SAMPLE : SAMPLE + 1], Y[SAMPLE : SAMPLE + 1])
    for in_batch, by_itself in zip(batched, alone):
        np.testing.assert_allclose(in_batch[SAMPLE], by_itself[0], rtol=tolerance, atol=tolerance)


def test_gradient_descent_steps_each_sample_along_its_own_gradient():
    model = PCMLP([3, 6, 5, 2])
    pxi.init_forward(model, X[:8], Y[:8])
    hs = [v.h.value for v in model.vodes[:-1]]
    pxi.DiscreteInference(step_size=0.3, steps=1).run(model, X[:8])

    def own_energy(hs, i):  # sample i's energy alone, from the formula
        return hand_energy(weights(model), [h[i : i + 1] for h in hs], X[i : i + 1], Y[i : i + 1])

    for i in range(8):
        grads = jax.grad(own_energy)(hs, i)
        for vode, h, g in zip(model.vodes[:-1], hs, grads):
            np.testing.assert_allclose(vode.h.value[i], h[i] - 0.3 * g[i], rtol=1e-5, atol=1e-6)


def test_batch_mean_switch_reproduces_jpc_convention():
    model = PCMLP([3, 6, 5, 2])
    pxi.init_forward(model, X[:8], Y[:8])
    hs = [v.h.value for v in model.vodes[:-1]]
    pxi.DiscreteInference(step_size=0.3, steps=1, batch_mean=True).run(model, X[:8])
    grads = jax.grad(lambda hs: hand_energy(weights(model), hs, X[:8], Y[:8]))(hs)  # JPC: grad of the batch mean
    for vode, h, g in zip(model.vodes[:-1], hs, grads):
        np.testing.assert_allclose(vode.h.value, h - 0.3 * g, rtol=1e-5, atol=1e-7)


def test_default_ode_inference_takes_steps_at_batch_64_and_trains_the_first_layer():
    digits, labels = load_digits(return_X_y=True)
    x, y = jnp.asarray(digits[:64] / 16.0, dtype=jnp.float32), jax.nn.one_hot(labels[:64], 10)
    model = PCMLP([64, 128, 128, 10])
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    first = np.asarray(model.layers[0].nn.weight.value)
    out = pxi.train_supervised(model, optim, x, y, inference=pxi.ODEInference())
    assert int(out["steps"]) > 0 and bool(out["steady"])
    assert float(out["energy"]) < float(out["loss"])
    assert np.abs(np.asarray(model.layers[0].nn.weight.value) - first).max() > 1e-4


def test_default_ode_inference_in_jpc_convention_equals_a_hand_written_diffrax_solve():
    """``ODEInference(batch_mean=True)``: the batch-mean field, Heun + PID on the RMS of the whole batch, steady test."""
    model = PCMLP([3, 6, 5, 2])
    pxi.init_forward(model, X[:16], Y[:16])
    hs = [v.h.value for v in model.vodes[:-1]]
    stats = pxi.ODEInference(batch_mean=True, max_t1=5.0).run(model, X[:16])

    def field(t, hs, args):
        return jax.tree_util.tree_map(
            jnp.negative, jax.grad(lambda h: hand_energy(weights(model), h, X[:16], Y[:16]))(hs)
        )

    def rms(tree):
        leaves = jax.tree_util.tree_leaves(tree)
        return jnp.sqrt(sum(jnp.sum(a**2) for a in leaves) / sum(a.size for a in leaves))

    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Heun(),
        0.0,
        5.0,
        None,
        hs,
        stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-3),
        event=diffrax.Event(lambda t, hs, args, **kw: rms(field(t, hs, args)) < 1e-3 + 1e-3 * rms(hs)),
        throw=False,
    )
    assert int(stats["steps"]) == int(solution.stats["num_steps"]) > 0
    for vode, expected in zip(model.vodes[:-1], solution.ys):
        np.testing.assert_allclose(vode.h.value, expected[-1], rtol=1e-4, atol=1e-6)


def _rms_per_sample(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(a**2, axis=-1) for a in leaves) / sum(a.shape[-1] for a in leaves))


def test_default_ode_inference_stops_at_every_samples_steady_state_near_the_exact_equilibrium():
    """Every sample's own field is under the 1e-3 test where the default stops, and the weight
    gradient there is close to the one at the exact equilibrium (a tight hand-written diffrax solve)."""
    model = PCMLP([3, 16, 16, 2])
    for layer in model.layers:  # larger weights: stiffer dynamics, as after some training
        layer.nn.weight.value = 2.0 * layer.nn.weight.value
    pxi.init_forward(model, X, Y)
    start = [v.h.value for v in model.vodes[:-1]]
    stats = pxi.ODEInference().run(model, X)
    stopped = [v.h.value for v in model.vodes[:-1]]
    assert bool(stats["steady"]) and 0 < int(stats["steps"]) < 100

    def field(t, hs, args):  # each sample's own flow: the batch-mean energy's gradient times the batch size
        grads = jax.grad(lambda h: hand_energy(weights(model), h, X, Y))(hs)
        return [-len(X) * g for g in grads]

    assert np.all(_rms_per_sample(field(0.0, stopped, None)) < 1e-3 + 1e-3 * _rms_per_sample(stopped))
    exact = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Tsit5(),
        0.0,
        1000.0,
        None,
        start,
        stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
        event=diffrax.Event(lambda t, hs, args, **kw: jnp.max(_rms_per_sample(field(t, hs, args))) < 1e-5),
        max_steps=100_000,
    )
    assert bool(exact.event_mask)

    def weight_gradient(hs):
        grads = jax.grad(lambda w: hand_energy(w, hs, X, Y))(weights(model))
        return jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(grads)])

    at_exact = weight_gradient([h[-1] for h in exact.ys])
    at_stop = weight_gradient(stopped)
    assert float(jnp.linalg.norm(at_stop - at_exact) / jnp.linalg.norm(at_exact)) < 0.05
    assert float(jnp.linalg.norm(weight_gradient(start) - at_exact) / jnp.linalg.norm(at_exact)) > 0.2  # not void
