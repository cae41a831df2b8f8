"""value_and_grad / grad against jax.grad of the energy written by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from tests.conftest import BATCHED, MLP, hand_energy, weights


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model):
    return model(x, y)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy(x, *, model):
    out = model(x)
    return jax.lax.pmean(model.energy(), "batch"), out


def _initialised(sizes, batch=5, ce=False, seed=0):
    key_x, key_y = jax.random.split(jax.random.PRNGKey(seed))
    model = MLP(sizes, out_energy=pxc.ce_energy if ce else pxc.se_energy)
    x = jax.random.normal(key_x, (batch, sizes[0]))
    y = jax.nn.one_hot(jax.random.randint(key_y, (batch,), 0, sizes[-1]), sizes[-1])
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    # move the hidden activities off the feedforward values so every gradient is non-zero
    for i, vode in enumerate(model.vodes[:-1]):
        vode.h.value = vode.h.value + 0.3 * jax.random.normal(jax.random.PRNGKey(10 + i), vode.h.value.shape)
    return model, x, y


@pytest.mark.parametrize("ce", [False, True])
def test_activity_gradients_match_hand_written_energy(ce):
    model, x, y = _initialised([3, 6, 5, 4], ce=ce)
    hs = [v.h.value for v in model.vodes[:-1]]
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        (e, _), g = pxf.value_and_grad(
            pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), (False, True)), has_aux=True
        )(energy)(x, model=model)
    expected_e, expected_g = jax.value_and_grad(lambda hs: hand_energy(weights(model), hs, x, y, ce_output=ce))(hs)
    np.testing.assert_allclose(e, expected_e, rtol=1e-5)
    for grad, expected in zip(g["model"].vodes[:-1], expected_g):
        assert isinstance(grad.h, pxc.VodeParam)
        np.testing.assert_allclose(grad.h.value, expected, rtol=1e-5, atol=1e-7)
    assert g["model"].vodes[-1].h is None, "the frozen output activity must not be differentiated"
    assert g["model"].layers[0].nn.weight is None


def test_weight_gradients_match_hand_written_energy():
    model, x, y = _initialised([3, 6, 4])
    hs = [v.h.value for v in model.vodes[:-1]]
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        g = pxf.grad(pxu.Mask(pxnn.LayerParam, (False, True)), has_aux=True)(energy)(x, model=model)[0]
    expected = jax.grad(lambda ws: hand_energy(ws, hs, x, y))(weights(model))
    for layer, (gw, gb) in zip(g["model"].layers, expected):
        np.testing.assert_allclose(layer.nn.weight.value, gw, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(layer.nn.bias.value, gb, rtol=1e-5, atol=1e-7)


def test_positional_argnums_and_kwargs_gradients():
    model, x, y = _initialised([3, 4])
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        (e, _), (gx, g) = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, (False, True)), argnums=0, has_aux=True)(energy)(
            x, model=model
        )
    expected_gx = jax.grad(lambda x: hand_energy(weights(model), [], x, y))(x)
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-5, atol=1e-7)
    assert g["model"].layers[0].nn.weight is not None


def test_gradient_against_finite_differences():
    model, x, y = _initialised([2, 3, 2], batch=2)
    vode = model.vodes[0]
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        g = pxf.grad(pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), (False, True)), has_aux=True)(energy)(
            x, model=model
        )[0]
    analytic = g["model"].vodes[0].h.value
    base = np.asarray(vode.h.value, dtype=np.float64)
    eps = 1e-3
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[index] += sign * eps
            vode.h.value = jnp.asarray(shifted, dtype=jnp.float32)
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                values.append(float(energy(x, model=model)[0]))
        np.testing.assert_allclose(analytic[index], (values[0] - values[1]) / (2 * eps), rtol=2e-2, atol=2e-3)


def test_grad_writes_back_caches_but_not_gradients():
    model, x, _ = _initialised([3, 4])
    before = model.layers[0].nn.weight.value
    with pxu.step(model):
        pxf.grad(pxu.Mask(pxnn.LayerParam, (False, True)), has_aux=True)(energy)(x, model=model)
        assert "E" in model.vodes[-1].cache.value, "energies computed inside grad are cached on the model"
    assert model.layers[0].nn.weight.value is before


def test_mask_selecting_nothing_is_an_error():
    model, x, _ = _initialised([3, 4])
    with pytest.raises(ValueError, match="selects no parameter"):
        pxf.value_and_grad(pxu.Mask(pxu.m(lambda p: False), (False, True)), has_aux=True)(energy)(x, model=model)


def test_non_scalar_output_is_an_error():
    model, x, _ = _initialised([3, 4])
    with pytest.raises(TypeError, match="scalar"):
        pxf.grad(pxu.Mask(pxnn.LayerParam, (False, True)))(lambda x, *, model: forward(x, None, model=model))(
            x, model=model
        )
