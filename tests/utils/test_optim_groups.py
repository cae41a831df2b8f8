"""One `Optim` with an optimiser per group of layers (`optax.multi_transform`), against hand-written updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import hand_energy

N, STEP, T, ADAM_LR, SGD_LR = 64, 0.1, 4, 1e-2, 0.1


def weights(model):
    return [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]


def test_hidden_layers_by_adam_and_the_head_by_sgd_in_one_training_step():
    model = PCMLP([6, 8, 8, 3])
    optim = pxu.Optim(
        {"hidden": optax.adam(ADAM_LR), "head": optax.sgd(SGD_LR)},
        {"hidden": pxu.Mask(pxnn.LayerParam)(model.layers[:-1]), "head": pxu.Mask(pxnn.LayerParam)(model.layers[-1])},
    )
    assert len(optim.params) == 6
    kx, ky = jax.random.split(jax.random.PRNGKey(3))
    x, y = jax.random.normal(kx, (N, 6)), jax.random.normal(ky, (N, 3))
    ws = weights(model)
    hs = []
    for w, b in ws[:-1]:
        hs.append(jnp.tanh((hs[-1] if hs else x) @ w.T + b))
    for _ in range(T):
        g = jax.grad(hand_energy, argnums=1)(ws, hs, x, y)
        hs = [h - STEP * N * gh for h, gh in zip(hs, g)]
    grads = jax.grad(hand_energy)(ws, hs, x, y)
    pxi.train_supervised(model, optim, x, y, inference=pxi.DiscreteInference(step_size=STEP, steps=T))
    adam_first_step = lambda w, g: w - ADAM_LR * g / (jnp.abs(g) + 1e-8)  # noqa: E731  (bias-corrected moments)
    for (w, b), (w_ref, b_ref), (gw, gb) in zip(weights(model)[:-1], ws[:-1], grads[:-1]):
        np.testing.assert_allclose(w, adam_first_step(w_ref, gw), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, adam_first_step(b_ref, gb), rtol=1e-4, atol=1e-5)
    (w, b), (w_ref, b_ref), (gw, gb) = weights(model)[-1], ws[-1], grads[-1]
    np.testing.assert_allclose(w, w_ref - SGD_LR * gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, b_ref - SGD_LR * gb, rtol=1e-5, atol=1e-6)


def test_groups_are_checked():
    model = PCMLP([4, 5, 2])
    head = pxu.Mask(pxnn.LayerParam)(model.layers[-1])
    with pytest.raises(ValueError, match="same names"):
        pxu.Optim({"hidden": optax.sgd(0.1), "head": optax.sgd(0.1)}, {"head": head})
    with pytest.raises(ValueError, match="in the groups 'a' and 'b'"):
        pxu.Optim({"a": optax.sgd(0.1), "b": optax.sgd(0.1)}, {"a": head, "b": pxu.Mask(pxnn.LayerParam)(model)})
    with pytest.raises(TypeError, match="group 'a'"):
        pxu.Optim({"a": "sgd"}, {"a": head})
    optim = pxu.Optim({"head": optax.sgd(0.1)}, {"head": head})
    optim.init()  # restarting the state is fine
    with pytest.raises(ValueError, match="create a new Optim"):
        optim.init(pxu.Mask(pxnn.LayerParam)(model))


def test_a_new_grouped_optim_over_the_same_transformations_compiles_nothing():
    from tests.inference.compiles import count_compilations

    hidden, head = optax.adam(ADAM_LR), optax.sgd(SGD_LR)
    x, y = jax.random.normal(jax.random.PRNGKey(0), (N, 6)), jax.random.normal(jax.random.PRNGKey(1), (N, 3))
    inference = pxi.DiscreteInference(step_size=STEP, steps=T)

    def train_once():
        model = PCMLP([6, 8, 3])
        optim = pxu.Optim(
            {"hidden": hidden, "head": head},
            {
                "hidden": pxu.Mask(pxnn.LayerParam)(model.layers[:-1]),
                "head": pxu.Mask(pxnn.LayerParam)(model.layers[-1]),
            },
        )
        pxi.train_supervised(model, optim, x, y, inference=inference)

    train_once()
    with count_compilations() as compiled:
        train_once()
    assert compiled[0] == 0
