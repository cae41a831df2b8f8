"""Optim against optax applied by hand; ownership and batch scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.utils as pxu


class WeightsAndStates(px.Module):
    def __init__(self):
        self.w = px.Param(jnp.array([1.0, -2.0]))
        self.h = px.Param(jnp.array([[0.5, 0.5], [1.0, -1.0]]), frozen=False)
        self.frozen = px.Param(jnp.array([3.0]), frozen=True)


def loss(*, model):
    return jnp.sum(model.w.value**2) + jnp.sum(model.h.value**3) + jnp.sum(model.frozen.value**2)


def test_step_matches_optax_by_hand():
    model = WeightsAndStates()
    tx = optax.adam(0.1)
    optim = pxu.Optim(tx, pxu.Mask(pxu.m(px.Param).has_not(frozen=True))(model))
    reference = [model.w.value, model.h.value]
    state = tx.init(reference)
    for _ in range(3):
        g = pxf.grad(pxu.Mask(pxu.m(px.Param).has_not(frozen=True), (False, True)))(loss)(model=model)
        optim.step(model, g["model"])
        grads = [2 * reference[0], 3 * reference[1] ** 2]
        updates, state = tx.update(grads, state, reference)
        reference = optax.apply_updates(reference, updates)
    np.testing.assert_allclose(model.w.value, reference[0], rtol=1e-6)
    np.testing.assert_allclose(model.h.value, reference[1], rtol=1e-6)


def test_owned_params_without_gradient_are_untouched():
    model = WeightsAndStates()
    optim = pxu.Optim(optax.adam(0.1), pxu.Mask(px.Param)(model))
    frozen = model.frozen.value
    g = pxf.grad(pxu.Mask(pxu.m(px.Param).has_not(frozen=True), (False, True)))(loss)(model=model)
    optim.step(model, g["model"])
    assert model.frozen.value is frozen


def test_scale_by_batch_size_multiplies_by_leading_dimension():
    model = WeightsAndStates()
    optim = pxu.Optim(optax.sgd(1.0), pxu.Mask(pxu.m(px.Param).has(frozen=False))(model))
    h = model.h.value
    g = pxf.grad(pxu.Mask(pxu.m(px.Param).has(frozen=False), (False, True)))(loss)(model=model)
    grads_before = g["model"].h.value
    optim.step(model, g["model"], scale_by_batch_size=True)
    np.testing.assert_allclose(model.h.value, h - 2 * 3 * h**2, rtol=1e-6)
    assert g["model"].h.value is grads_before, "step must not modify the caller's gradients"


def test_gradient_for_a_param_not_owned_is_an_error():
    model = WeightsAndStates()
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxu.m(px.Param).has(frozen=False))(model))
    g = pxf.grad(pxu.Mask(pxu.m(px.Param).has_not(frozen=True), (False, True)))(loss)(model=model)
    with pytest.raises(ValueError, match=r"gradient for w, which this optimiser does not own"):
        optim.step(model, g["model"])


def test_init_resets_state_inside_jit():
    model = WeightsAndStates()
    optim = pxu.Optim(optax.adam(0.1), pxu.Mask(pxu.m(px.Param).has_not(frozen=True))(model))

    @pxf.jit()
    def train(*, model, optim):
        optim.init()
        g = pxf.grad(pxu.Mask(pxu.m(px.Param).has_not(frozen=True), (False, True)))(loss)(model=model)
        optim.step(model, g["model"])

    train(model=model, optim=optim)
    first = np.asarray(model.w.value)
    train(model=model, optim=optim)
    count = optim.state.value[0].count
    assert int(count) == 1, "init() inside the jitted function resets the optimiser every call"
    assert not np.allclose(first, model.w.value)


def test_empty_selection_and_missing_values_are_errors():
    model = WeightsAndStates()
    with pytest.raises(ValueError, match="contain no Param"):
        pxu.Optim(optax.sgd(0.1), pxu.Mask(pxu.m(lambda p: False))(model))
    empty = px.Param()
    with pytest.raises(ValueError, match="have no value yet"):
        pxu.Optim(optax.sgd(0.1), [empty])
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        pxu.Optim("sgd", [model.w])


def test_gradients_find_their_parameters_by_identity():
    """A gradient names the parameter it belongs to: the whole gradient dict, or a transformed tree, still lands."""
    from tests.conftest import MLP

    def loss(x, *, model):
        return jnp.sum(model.layers[0](x) ** 2)

    mask = pxu.Mask(pxnn.LayerParam, (False, True))
    moved = {}
    for variant in ("model tree", "whole dict", "doubled tree"):
        px.RKG.seed(0)
        model = MLP([3, 4, 2])
        start = np.asarray(model.layers[0].nn.weight.value)
        optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
        grads = pxf.grad(mask)(loss)(jnp.ones(3), model=model)
        tree = {
            "model tree": grads["model"],
            "whole dict": grads,
            "doubled tree": jax.tree_util.tree_map(lambda g: 2.0 * g, grads["model"]),
        }[variant]
        optim.step(model, tree)
        moved[variant] = np.asarray(model.layers[0].nn.weight.value) - start
    assert np.abs(moved["model tree"]).max() > 1e-3
    np.testing.assert_array_equal(moved["whole dict"], moved["model tree"])
    np.testing.assert_allclose(moved["doubled tree"], 2 * moved["model tree"], rtol=1e-5)


def test_a_parameter_whose_shape_changed_since_init_is_refused_until_init():
    """A scalar bias where Adam's moments are (4,): the step used to broadcast and write back a (4,) bias."""
    import pcframe.inference as pxi
    from pcframe.models import PCMLP

    model = PCMLP([2, 4, 2])
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
    y = jax.nn.one_hot(jnp.arange(16) % 2, 2)
    inference = pxi.DiscreteInference(optax.sgd(0.1), 3)
    pxi.train_supervised(model, optim, x, y, inference=inference)
    model.layers[0].nn.bias.value = 0.0
    before = [p.value for p in optim.params] + jax.tree_util.tree_leaves(optim.state.value)
    message = r"layers\[0\].nn.bias now has shape \(\) float32, but the optimiser state was built for shape \(4,\)"
    with pytest.raises(ValueError, match=message + r".*call optim.init\(\)"):
        pxi.train_supervised(model, optim, x, y, inference=inference)
    with pytest.raises(ValueError, match=r"Optim.apply: " + message):
        optim.apply([jnp.zeros_like(p.value) for p in optim.params])
    after = [p.value for p in optim.params] + jax.tree_util.tree_leaves(optim.state.value)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(new, old)
    optim.init()
    pxi.train_supervised(model, optim, x, y, inference=inference)
    assert jnp.shape(model.layers[0].nn.bias.value) == () and float(model.layers[0].nn.bias.value) != 0.0
