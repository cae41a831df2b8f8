"""Activity / parameter gradients of the engines against jax.grad of the energy written by hand."""

import jax
import jax.numpy as jnp
import numpy as np

import pcframe.inference as pxi
from pcframe.models import PCMLP
from tests.conftest import hand_energy, weights


def _setup(sizes=(4, 7, 5, 3), batch=6):
    model = PCMLP(list(sizes))
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, sizes[0]))
    y = jax.random.normal(jax.random.PRNGKey(1), (batch, sizes[-1]))
    pxi.init_forward(model, x, y)
    for i, vode in enumerate(model.vodes[:-1]):
        vode.h.value = vode.h.value + 0.2 * jax.random.normal(jax.random.PRNGKey(5 + i), vode.h.value.shape)
    return model, x, y


def test_activity_grad_matches_hand_written_energy():
    model, x, y = _setup()
    hs = [v.h.value for v in model.vodes[:-1]]
    energy, grads = pxi.activity_grad(model, x)
    expected_energy, expected = jax.value_and_grad(lambda hs: hand_energy(weights(model), hs, x, y))(hs)
    np.testing.assert_allclose(energy, expected_energy, rtol=1e-5)
    for vode, g in zip(grads.vodes[:-1], expected):
        np.testing.assert_allclose(vode.h.value, g, rtol=1e-5, atol=1e-7)


def test_param_grad_matches_hand_written_energy():
    model, x, y = _setup()
    hs = [v.h.value for v in model.vodes[:-1]]
    _, grads = pxi.param_grad(model, x)
    expected = jax.grad(lambda ws: hand_energy(ws, hs, x, y))(weights(model))
    for layer, (gw, gb) in zip(grads.layers, expected):
        np.testing.assert_allclose(layer.nn.weight.value, gw, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(layer.nn.bias.value, gb, rtol=1e-5, atol=1e-7)


def test_vector_field_is_negative_gradient_and_pure():
    model, x, y = _setup()
    field, z0, energy_fn = pxi.activity_vector_field(model, x)
    before = [v.h.value for v in model.vodes]
    # each sample's own gradient: that of the batch sum, N times the batch mean's
    expected = jax.grad(lambda hs: len(x) * hand_energy(weights(model), hs, x, y))(z0)
    for f, g in zip(field(0.0, z0, None), expected):
        np.testing.assert_allclose(f, -g, rtol=1e-5, atol=1e-7)
    jpc_field, _, _ = pxi.activity_vector_field(model, x, batch_mean=True)
    for f, g in zip(jpc_field(0.0, z0, None), expected):
        np.testing.assert_allclose(f, -g / len(x), rtol=1e-5, atol=1e-7)
    assert all(a is b for a, b in zip(before, [v.h.value for v in model.vodes])), "the vector field must not write"
    assert float(energy_fn(z0)) == float(hand_energy(weights(model), z0, x, y))


def test_per_layer_energies_sum_to_total():
    model, x, y = _setup()
    total, per_layer = pxi.batch_energy(model, x)
    hs = [v.h.value for v in model.vodes[:-1]]
    zs = [x, *hs, y]
    expected = []
    for i, ((w, b), below, above) in enumerate(zip(weights(model), zs[:-1], zs[1:])):
        u = below @ w.T + b
        u = u if i == len(hs) else jnp.tanh(u)
        expected.append(0.5 * jnp.sum((above - u) ** 2) / x.shape[0])
    np.testing.assert_allclose(per_layer, expected, rtol=1e-5)
    np.testing.assert_allclose(total, sum(expected), rtol=1e-5)
