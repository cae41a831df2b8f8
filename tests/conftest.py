"""Shared test helpers: a small PC network and its energy written by hand in pure JAX."""

import contextlib

import jax
import jax.numpy as jnp
import pytest

import pcframe as px
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.functional._jit import reset_retrace_counts

BATCHED = pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0))


@contextlib.contextmanager
def x64():
    """Double precision for the block (works on every supported jax, unlike ``jax.enable_x64``)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


class MLP(pxc.EnergyModule):
    """A PC multilayer perceptron: Linear -> act -> Vode, with a clamped output Vode."""

    def __init__(self, sizes, act_fn=jnp.tanh, out_energy=pxc.se_energy):
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode((s,)) for s in sizes[1:-1]] + [pxc.Vode((sizes[-1],), out_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y=None):
        for vode, layer in zip(self.vodes[:-1], self.layers[:-1]):
            x = vode(self.act_fn(layer(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


def weights(model):
    """[(W, b), ...] of an MLP as plain arrays."""
    return [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]


def hand_energy(ws, hs, x, y, act_fn=jnp.tanh, ce_output=False):
    """Batch-mean PC energy written from the formula: sum_l 0.5 ||z_l - f(W_l z_{l-1} + b_l)||^2."""
    zs = [x] + list(hs) + [y]
    total = 0.0
    for layer, ((w, b), below, above) in enumerate(zip(ws, zs[:-1], zs[1:])):
        pre = below @ w.T + b
        last = layer == len(ws) - 1
        u = pre if last else act_fn(pre)
        if last and ce_output:
            total = total - jnp.sum(above * jax.nn.log_softmax(u, axis=-1))
        else:
            total = total + 0.5 * jnp.sum((above - u) ** 2)
    return total / x.shape[0]


@pytest.fixture(autouse=True)
def _seed():
    px.RKG.seed(0)
    reset_retrace_counts()  # the retrace warning (an error in the tests) counts within one test
