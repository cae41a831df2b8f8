"""A whole PC training step (the two-moons tutorial's) against a pure-JAX reference."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
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


def make_train_step(use_scan, overwrites=None):
    @pxf.jit(static_argnums=0, overwrites=overwrites)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        optim_h.init()

        def inference_step(*, model, optim_h):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(
                    pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), (False, True)), has_aux=True
                )(energy)(x, model=model)
            optim_h.step(model, g["model"], scale_by_batch_size=True)

        if use_scan:
            pxf.scan(lambda t, c, **kw: (inference_step(**kw), None), length=T)(None, model=model, optim_h=optim_h)
        else:
            for _ in range(T):
                inference_step(model=model, optim_h=optim_h)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, (False, True)), has_aux=True)(energy)(x, model=model)
        optim_w.step(model, g["model"])

    return train_on_batch


def reference_step(ws, x, y, T, lr_h, tx_w, state_w, act_fn):
    """Hand-written PC step: feedforward init, T SGD steps on activities, one optimiser step on weights."""
    hs = []
    z = x
    for w, b in ws[:-1]:
        z = act_fn(z @ w.T + b)
        hs.append(z)

    def activity_energy(hs):
        return hand_energy(ws, hs, x, y, act_fn, ce_output=True)

    def body(_, hs):
        grads = jax.grad(activity_energy)(hs)
        return [h - lr_h * x.shape[0] * g for h, g in zip(hs, grads)]

    hs = jax.lax.fori_loop(0, T, body, hs)
    grads = jax.grad(lambda ws: hand_energy(ws, hs, x, y, act_fn, ce_output=True))(ws)
    updates, state_w = tx_w.update(grads, state_w, ws)
    return optax.apply_updates(ws, updates), state_w


@pytest.mark.parametrize("use_scan", [False, True])
def test_training_steps_match_pure_jax_reference(use_scan):
    batch, lr_h, T = 8, 1e-2 * 8, 4
    model = MLP([2, 16, 16, 2], act_fn=jax.nn.leaky_relu, out_energy=pxc.ce_energy)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((batch, 2)), None, model=model)
    optim_h = pxu.Optim(optax.sgd(lr_h / batch), pxu.Mask(pxc.VodeParam)(model))
    tx_w = optax.adamw(1e-2)
    optim_w = pxu.Optim(tx_w, pxu.Mask(pxnn.LayerParam)(model))
    ws = weights(model)
    state_w = tx_w.init(ws)
    train = make_train_step(use_scan)
    for i in range(3):
        key_x, key_y = jax.random.split(jax.random.PRNGKey(i))
        x = jax.random.normal(key_x, (batch, 2))
        y = jax.nn.one_hot(jax.random.randint(key_y, (batch,), 0, 2), 2)
        train(T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
        ws, state_w = reference_step(ws, x, y, T, lr_h / batch, tx_w, state_w, jax.nn.leaky_relu)
    # AdamW divides by sqrt(v): float32 rounding in near-zero gradients can move a weight by ~1e-6.
    # Each step moves the weights by ~1e-2, so 1e-5 still tells a wrong step from a right one.
    for (w, b), (w_ref, b_ref) in zip(weights(model), ws):
        np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-5)
