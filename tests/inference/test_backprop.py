"""`train_backprop`: the PC model's own network trained by backpropagation, against `jax.grad` of its loss."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP

LR = 0.1


def weights(model):
    return [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]


def loss(ws, x, y, ce):
    z = x
    for i, (w, b) in enumerate(ws):
        z = z @ w.T + b
        z = z if i == len(ws) - 1 else jnp.tanh(z)
    if ce:
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z, -1), -1))
    return 0.5 * jnp.mean(jnp.sum((y - z) ** 2, -1))


@pytest.mark.parametrize("ce", [False, True])
def test_step_is_sgd_on_the_backprop_gradient(ce):
    model = PCMLP([5, 12, 12, 3], act_fn=jnp.tanh, output_energy=pxc.ce_energy if ce else pxc.se_energy)
    optim = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(model))
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (64, 5))
    y = jax.nn.one_hot(jax.random.randint(ky, (64,), 0, 3), 3)
    ws = weights(model)
    value, grads = jax.value_and_grad(loss)(ws, x, y, ce)
    out = pxi.train_backprop(model, optim, x, y, metrics=pxi.Metrics(accuracy=True))
    np.testing.assert_allclose(out["loss"], value, rtol=1e-5)
    assert 0.0 <= float(out["accuracy"]) <= 1.0 and bool(out["finite"])
    for (w, b), (w0, b0), (gw, gb) in zip(weights(model), ws, grads):
        np.testing.assert_allclose(w, w0 - LR * gw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, b0 - LR * gb, rtol=1e-5, atol=1e-6)


def test_backprop_takes_no_inference_and_keeps_the_guard():
    model = PCMLP([4, 6, 2])
    optim = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(model))
    x, y = jnp.ones((8, 4)), jnp.ones((8, 2))
    with pytest.raises(TypeError, match="train_backprop runs no inference: pass inference=None"):
        pxi.train_step(pxi.Backprop(), x, y, inference=pxi.DiscreteInference(), model=model, optim_w=optim)
    before = weights(model)
    out = pxi.train_backprop(model, optim, x.at[0, 0].set(jnp.nan), y)
    assert not bool(out["finite"])
    for (w, _), (w0, _) in zip(weights(model), before):
        np.testing.assert_array_equal(w, w0)
    with pytest.raises(FloatingPointError, match="train_backprop"):
        pxi.train_backprop(model, optim, x.at[0, 0].set(jnp.nan), y, check_finite=True)
