"""One layer used at two places: its energy counted once per use, its gradient the sum over the uses.

The same `Linear` is held under two attributes (as a model that ties two blocks does) and applied
twice, each use predicting its own node. Checked against a hand-written energy and `jax.grad`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu

D, N, LR, STEP, T = 6, 64, 0.05, 0.1, 4


class Tied(pxc.EnergyModule):
    """x -> shared -> tanh -> node 0 -> shared (again) -> tanh -> node 1 -> head -> clamped output."""

    def __init__(self):
        self.first = pxnn.Linear(D, D)
        self.second = self.first  # the same layer, at a second place
        self.head = pxnn.Linear(D, 2)
        self.vodes = [pxc.Vode(), pxc.Vode(), pxc.Vode()]
        self.vodes[2].h.frozen = True

    def __call__(self, x, y=None):
        h = self.vodes[0](jnp.tanh(self.first(x)))
        h = self.vodes[1](jnp.tanh(self.second(h)))
        self.vodes[2](self.head(h))
        if y is not None:
            self.vodes[2].set("h", y)
        return self.vodes[2].get("u")


def hand_energy(p, hs, x, y):
    """Batch mean of the three squared errors; W, b appear in two of them."""
    h0, h1 = hs
    e0 = 0.5 * jnp.sum((h0 - jnp.tanh(x @ p["W"].T + p["b"])) ** 2, -1)
    e1 = 0.5 * jnp.sum((h1 - jnp.tanh(h0 @ p["W"].T + p["b"])) ** 2, -1)
    e2 = 0.5 * jnp.sum((y - h1 @ p["V"].T - p["c"]) ** 2, -1)
    return jnp.mean(e0 + e1 + e2)


def test_shared_layer_energy_per_use_and_summed_gradient():
    px.RKG.seed(0)
    model = Tied()
    optim = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(model))
    assert len(optim.params) == 4, "the shared layer's weight and bias are trained once, not twice"
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(kx, (N, D))
    y = jax.random.normal(ky, (N, 2))
    p = {
        "W": model.first.nn.weight.value,
        "b": model.first.nn.bias.value,
        "V": model.head.nn.weight.value,
        "c": model.head.nn.bias.value,
    }
    h0 = jnp.tanh(x @ p["W"].T + p["b"])
    hs = [h0, jnp.tanh(h0 @ p["W"].T + p["b"])]
    for _ in range(T):
        g = jax.grad(hand_energy, argnums=1)(p, hs, x, y)
        hs = [h - STEP * N * gh for h, gh in zip(hs, g)]
    energy, grads = jax.value_and_grad(hand_energy)(p, hs, x, y)
    out = pxi.train_supervised(model, optim, x, y, inference=pxi.DiscreteInference(step_size=STEP, steps=T))
    np.testing.assert_allclose(out["energy"], energy, rtol=1e-5)
    assert out["energies"].shape == (3,)
    np.testing.assert_allclose(model.first.nn.weight.value, p["W"] - LR * grads["W"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.second.nn.bias.value, p["b"] - LR * grads["b"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.head.nn.weight.value, p["V"] - LR * grads["V"], rtol=1e-4, atol=1e-6)
    assert model.first is model.second
