"""Stateful vmap: batched parameters, pmean, per-element random keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.pc as pxc
import pcframe.utils as pxu
from tests.conftest import BATCHED, MLP, hand_energy, weights


def test_pmean_energy_equals_mean_of_per_sample_energies():
    model = MLP([3, 5, 2])
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (7, 2))

    @pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(BATCHED, in_axes=(0,), out_axes=None, axis_name="batch")
    def energy(x, *, model):
        model(x)
        return jax.lax.pmean(model.energy(), "batch")

    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    model.vodes[0].h.value = model.vodes[0].h.value + 1.0
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        batched = energy(x, model=model)
    hs = [model.vodes[0].h.value]
    per_sample = [hand_energy(weights(model), [h[None]], xi[None], yi[None]) for h, xi, yi in zip(hs[0], x, y)]
    np.testing.assert_allclose(batched, np.mean(per_sample), rtol=1e-5)
    np.testing.assert_allclose(batched, hand_energy(weights(model), hs, x, y), rtol=1e-5)


def test_batched_params_get_the_batch_axis_and_shared_ones_do_not():
    model = MLP([3, 4, 2])

    @pxf.vmap(BATCHED, in_axes=(0,), out_axes=0)
    def forward(x, *, model):
        return model(x)

    with pxu.step(model, pxc.STATUS.INIT):
        out = forward(jnp.ones((6, 3)), model=model)
        assert model.vodes[0].cache.value["u"].shape == (6, 4)
    assert out.shape == (6, 2)
    assert model.vodes[0].h.value.shape == (6, 4)
    assert model.layers[0].nn.weight.value.shape == (4, 3)


def test_pytree_prefix_mask():
    state = {"w": px.Param(jnp.ones(3)), "h": px.Param(jnp.arange(6.0).reshape(2, 3))}

    @pxf.vmap({"state": {"w": None, "h": 0}}, in_axes=0)
    def f(x, *, state):
        state["h"].value = state["h"].value * state["w"].value + x
        return jnp.sum(state["h"].value)

    out = f(jnp.array([1.0, 2.0]), state=state)
    np.testing.assert_allclose(state["h"].value, jnp.arange(6.0).reshape(2, 3) + jnp.array([[1.0], [2.0]]))
    np.testing.assert_allclose(out, jnp.sum(state["h"].value, axis=1))


def test_mask_that_does_not_fit_the_kwargs():
    state = {"w": px.Param(jnp.ones(3))}
    with pytest.raises(ValueError, match="does not fit the keyword arguments"):
        pxf.vmap({"other": 0}, in_axes=0)(lambda x, *, state: x)(jnp.ones(2), state=state)


def test_each_batch_element_gets_its_own_key_and_rkg_advances():
    @pxf.vmap(in_axes=0)
    def noise(x):
        return x + jax.random.normal(px.RKG(), ())

    key_before = px.RKG.key.value
    first = noise(jnp.zeros(8))
    assert len(set(np.asarray(first).tolist())) == 8
    assert not np.array_equal(px.RKG.key.value, key_before)
    second = noise(jnp.zeros(8))
    assert not np.allclose(first, second)


def test_rkg_untouched_when_no_randomness_is_used():
    key_before = px.RKG.key.value
    pxf.vmap(in_axes=0)(lambda x: x * 2)(jnp.ones(4))
    assert px.RKG.key.value is key_before


def test_vmap_inside_jit_and_grad_composes():
    model = MLP([2, 3, 1])

    @pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    @pxf.vmap(BATCHED, in_axes=(0,), out_axes=None, axis_name="batch")
    def energy(x, *, model):
        model(x)
        return jax.lax.pmean(model.energy(), "batch")

    @pxf.jit()
    def step(x, y, *, model):
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            return pxf.value_and_grad(pxu.Mask(pxc.VodeParam, (False, True)))(energy)(x, model=model)

    x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))
    e, g = step(x, y, model=model)
    hs = [model.vodes[0].h.value]
    expected_e, expected_g = jax.value_and_grad(lambda hs: hand_energy(weights(model), hs[:1], x, hs[1]))(
        hs + [model.vodes[1].h.value]
    )
    np.testing.assert_allclose(e, expected_e, rtol=1e-5)
    np.testing.assert_allclose(g["model"].vodes[0].h.value, expected_g[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g["model"].vodes[1].h.value, expected_g[1], rtol=1e-5, atol=1e-7)
