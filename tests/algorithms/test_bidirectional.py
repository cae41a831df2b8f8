"""Bidirectional PC (`BidirectionalPCMLP`): its energy and gradients against the paper's formula and JPC's."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import BidirectionalEnergy, BidirectionalPCMLP
from tests.algorithms import _bidirectional_reference as ref

SIZES = [5, 7, 6, 3]


def _setup(a_d=1.0, a_g=1.0, seed=0, **kwargs):
    model = BidirectionalPCMLP(SIZES, discriminative_weight=a_d, generative_weight=a_g, **kwargs)
    kx, ky, kz = jax.random.split(jax.random.PRNGKey(seed), 3)
    x, y = jax.random.normal(kx, (4, SIZES[0])), jax.random.normal(ky, (4, SIZES[-1]))
    pxi.init_forward(model, x, y)
    fn = pxi.EnergyFunction(model, x)
    z = [v + 0.3 * jax.random.normal(k, v.shape) for v, k in zip(fn.initial(), jax.random.split(kz, 8))]
    fn.write(z)
    return model, x, y, z


def _assert_trees_close(a, b, **tol):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(u, v, **tol)


@pytest.mark.parametrize("a_d, a_g", [(1.0, 1.0), (0.7, 0.2)])
def test_energy_and_gradients_equal_the_formula(a_d, a_g):
    model, x, y, z = _setup(a_d, a_g)
    params = ref.weights(model)
    energy = pxi.ActivityEnergy(pxi.EnergyFunction(model, x))
    (value, _), grads = energy.value_and_grad(z)
    expected, expected_grads = jax.value_and_grad(lambda z: ref.bpc_formula(params, z, x, y, a_d, a_g))(z)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    _assert_trees_close(grads, expected_grads, rtol=1e-5, atol=1e-6)
    F, g = pxi.param_grad(model, x)  # batch mean
    np.testing.assert_allclose(F, expected / len(x), rtol=1e-6)
    expected_params = jax.grad(lambda p: ref.bpc_formula(p, z, x, y, a_d, a_g) / len(x))(params)
    _assert_trees_close(ref.model_param_grads(model, g), expected_params, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("a_d, a_g", [(1.0, 1.0), (0.7, 0.2)])
def test_equal_to_jpc_bpc_energy_and_gradients(a_d, a_g):
    model, x, y, z = _setup(a_d, a_g)
    params = ref.weights(model)
    kwargs = {"forward_energy_weight": a_d, "backward_energy_weight": a_g}
    energy = pxi.ActivityEnergy(pxi.EnergyFunction(model, x), batch_mean=True)  # JPC's convention
    (value, _), grads = energy.value_and_grad(z)
    jpc_value, jpc_grads = jax.value_and_grad(lambda z: ref.jpc_bpc_energy(params, z, y, x, **kwargs))(z)
    np.testing.assert_allclose(value, jpc_value, rtol=1e-6)
    _assert_trees_close(grads, jpc_grads, rtol=1e-5, atol=1e-7)
    _, g = pxi.param_grad(model, x)
    jpc_params = jax.grad(lambda p: ref.jpc_bpc_energy(p, z, y, x, **kwargs))(params)
    _assert_trees_close(ref.model_param_grads(model, g), jpc_params, rtol=1e-5, atol=1e-7)


def test_node_energy_terms():
    model, x, y, _ = _setup(0.5, 2.0)
    energy = BidirectionalEnergy(0.5, 2.0)
    assert model.vodes[0].energy_fn == energy and model.input_vode.energy_fn == energy
    pxi.init_forward(model, x, y)  # feedforward: hidden discriminative errors are zero, generative ones are not
    _, per_layer = pxi.batch_energy(model, x)
    assert float(per_layer[0]) > 0 and float(per_layer[-1]) > 0


def test_trains_with_every_strategy_and_generates():
    model, x, y, _ = _setup(1.0, 0.5)
    optim = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    strategies = [
        pxi.DiscreteInference(step_size=0.1, steps=10),
        pxi.ODEInference(max_t1=5.0),
        pxi.ErrorInference(pxi.DiscreteInference(step_size=0.1, steps=10)),
    ]
    for inference in strategies:
        losses = [float(pxi.train_supervised(model, optim, x, y, inference=inference)["loss"]) for _ in range(30)]
        assert losses[-1] < losses[0]
    generated = model.generate(y)
    assert generated.shape == x.shape
    f, g = ref.functions(ref.weights(model))
    expected = g[0](g[1](g[2](y)))
    np.testing.assert_allclose(generated, expected, rtol=1e-5, atol=1e-6)
    assert pxi.predict(model, x).shape == y.shape


def test_refuses_bad_arguments():
    with pytest.raises(ValueError, match="generative_weight"):
        BidirectionalPCMLP(SIZES, generative_weight=-1.0)
    with pytest.raises(ValueError, match="sizes"):
        BidirectionalPCMLP([3])
    model = BidirectionalPCMLP(SIZES)
    with pytest.raises(ValueError, match="generate"):
        pxi.init_forward(model, None, jnp.zeros((2, SIZES[-1])))
