"""`check_finite=True`: a NaN in one named layer stops learning with an error naming that layer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP

X, Y = jnp.ones((4, 3)), jnp.ones((4, 2))
SGD = pxi.DiscreteInference(optax.sgd(0.1), 3)


def model_and_optim():
    model = PCMLP([3, 5, 4, 2])
    return model, pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))


def weights(optim):
    return [np.asarray(p.value) for p in optim.params]


def test_finite_run_returns_the_usual_metrics():
    model, optim = model_and_optim()
    checked = pxi.train_supervised(model, optim, X, Y, inference=SGD, check_finite=True)
    assert "nonfinite" not in checked and bool(checked["finite"])


@pytest.mark.parametrize("step", ["supervised", "unsupervised"])
def test_nan_weight_names_the_node_it_feeds_and_skips_the_update(step):
    model, optim = model_and_optim()
    if step == "unsupervised":
        model = PCMLP([3, 5, 4, 2], free_input=True)
        optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    model.layers[1].nn.weight.value = model.layers[1].nn.weight.value.at[2, 0].set(jnp.nan)
    before = weights(optim)
    run = {
        "supervised": lambda: pxi.train_supervised(model, optim, X, Y, inference=SGD, check_finite=True),
        "unsupervised": lambda: pxi.train_unsupervised(model, optim, Y, inference=SGD, check_finite=True),
    }[step]
    with pytest.raises(FloatingPointError, match=r"the energy of the node vodes\[1\] is NaN or inf .*weights were not"):
        run()
    for old, new in zip(before, weights(optim)):
        np.testing.assert_array_equal(old, new)


def _sqrt_abs(v):
    return jnp.sqrt(jnp.abs(v))


def test_infinite_gradient_with_finite_energies_names_the_parameter():
    # sqrt(|v|) has an infinite slope at 0: zero weights make the first layer's gradient infinite
    model = PCMLP([3, 5, 4, 2], act_fn=_sqrt_abs)
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    model.layers[0].nn.weight.value = jnp.zeros((5, 3))
    model.layers[0].nn.bias.value = jnp.zeros(5)
    with pytest.raises(FloatingPointError, match=r"the gradient of layers\[0\]\.nn\.weight is NaN or inf"):
        pxi.train_supervised(model, optim, X, Y, inference=SGD, check_finite=True)


def test_without_the_check_the_step_only_reports_it():
    model, optim = model_and_optim()
    model.layers[1].nn.weight.value = model.layers[1].nn.weight.value.at[2, 0].set(jnp.nan)
    before = weights(optim)
    out = pxi.train_supervised(model, optim, X, Y, inference=SGD)
    assert not bool(out["finite"])
    for old, new in zip(before, weights(optim)):
        np.testing.assert_array_equal(old, new)


def test_discrete_inference_stops_inside_jit_naming_the_node():
    model, optim = model_and_optim()
    pxi.train_supervised(model, optim, X, Y, inference=pxi.DiscreteInference(optax.sgd(0.1), 3, check_finite=True))
    diverging = pxi.DiscreteInference(optax.sgd(1e30), 3, check_finite=True)
    with pytest.raises(
        jax.errors.JaxRuntimeError, match=r"DiscreteInference: the energy of the node vodes\[\d\] is NaN"
    ):
        pxi.train_supervised(model, optim, X, Y, inference=diverging)


def test_ode_inference_stops_inside_jit_naming_the_node():
    model, optim = model_and_optim()
    checked = pxi.ODEInference(max_t1=2.0, check_finite=True)
    assert bool(pxi.train_supervised(model, optim, X, Y, inference=checked)["finite"])
    model.layers[2].nn.weight.value = model.layers[2].nn.weight.value.at[0, 0].set(jnp.inf)
    # raised from equinox's callback: a JaxRuntimeError or, from inside diffrax's loop, a ValueError
    with pytest.raises(
        (jax.errors.JaxRuntimeError, ValueError), match=r"ODEInference: the energy of the node vodes\[\d\] is NaN"
    ):
        pxi.train_supervised(model, optim, X, Y, inference=checked)
