"""An inference strategy written by a user trains, a wrong `solve` result is refused; a float16 Adam overflow is caught."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import weights

DIGITS, LABELS = load_digits(return_X_y=True)
X = jnp.asarray(DIGITS[:64] / 16.0, dtype=jnp.float32)
Y = jax.nn.one_hot(LABELS[:64], 10)


class HeavyBall(pxi.AbstractInference):
    """Gradient descent with momentum, written from the formula v <- m v - eta g, z <- z + v."""

    step_size: float
    momentum: float = 0.0
    steps: int = eqx.field(default=10, static=True)

    def solve(self, energy):
        def body(_, carry):
            z, v = carry
            _, g = energy.value_and_grad(z)
            v = [self.momentum * a - self.step_size * b for a, b in zip(v, g)]
            return [a + b for a, b in zip(z, v)], v

        z0 = energy.initial()
        z, _ = jax.lax.fori_loop(0, self.steps, body, (z0, [jnp.zeros_like(a) for a in z0]))
        return z, {"steps": jnp.asarray(self.steps)}


def _model():
    model = PCMLP([64, 32, 10])
    return model, pxu.Optim(optax.adam(3e-3), pxu.Mask(pxnn.LayerParam)(model))


def test_a_user_strategy_matches_the_builtin_and_trains():
    ours, optim_ours = _model()
    builtin, optim_builtin = _model()
    for (w, b), layer in zip(weights(ours), builtin.layers):
        layer.nn.weight.value, layer.nn.bias.value = w, b
    pxi.train_supervised(ours, optim_ours, X, Y, inference=HeavyBall(step_size=0.1, steps=10))
    pxi.train_supervised(builtin, optim_builtin, X, Y, inference=pxi.DiscreteInference(step_size=0.1, steps=10))
    for ours_layer, builtin_layer in zip(weights(ours), weights(builtin)):
        for a, b in zip(ours_layer, builtin_layer):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    losses = [
        float(pxi.train_supervised(ours, optim_ours, X, Y, inference=HeavyBall(0.1, 0.5))["loss"]) for _ in range(30)
    ]
    assert losses[-1] < 0.5 * losses[0]


def test_float16_adam_overflow_is_caught_and_leaves_the_weights():
    model, _ = _model()
    for layer in model.layers:
        layer.nn.weight.value = layer.nn.weight.value.astype(jnp.float16)
        layer.nn.bias.value = layer.nn.bias.value.astype(jnp.float16)
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    before = weights(model)
    out = pxi.train_supervised(
        model, optim, X.astype(jnp.float16), Y.astype(jnp.float16), inference=pxi.DiscreteInference(step_size=0.1)
    )
    assert bool(jnp.isfinite(out["energy"])), "energy and gradients are finite: only the new weights overflow"
    assert not bool(out["finite"])
    for (w, b), (w_old, b_old) in zip(weights(model), before):
        np.testing.assert_array_equal(w, w_old)
        np.testing.assert_array_equal(b, b_old)


class Returning(pxi.AbstractInference):
    """One SGD step on the activities, then a `solve` result as `kind` says (correct or broken)."""

    kind: str = eqx.field(static=True)

    def solve(self, energy):
        _, g = energy.value_and_grad(energy.initial())
        z = [a - 0.1 * b for a, b in zip(energy.initial(), g)]
        steps = {"steps": jnp.asarray(1)}
        return {
            "correct": (z, steps),
            "one array too few": (z[:-1], steps),
            "z alone": z,
            "no batch axis": ([z[0][0], z[1]], steps),
            "integer activities": ([a.astype(jnp.int32) for a in z], steps),
            "no steps": (z, {"iterations": jnp.asarray(1)}),
        }[self.kind]


REFUSALS = {
    "one array too few": r"expected 2 arrays, one per parameter \(.*vodes\[0\].h, .*vodes\[1\].h\).*got 1",
    "z alone": r"must return the pair \(z, stats\).*returned a list",
    "no batch axis": r"vodes\[0\].h is an array of shape \(8,\).*parameter is an array of shape \(16, 8\)",
    "integer activities": r"vodes\[0\].h is an array of shape \(16, 8\) and dtype int32, but .* dtype float32",
    "no steps": r"returned stats without 'steps' \(keys: \['iterations'\]\)",
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_wrong_solve_result_is_refused_naming_the_strategy(kind):
    model = PCMLP([64, 8, 8, 10])
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    before = weights(model)
    with pytest.raises((TypeError, ValueError), match=r"Returning\.solve.*" + REFUSALS[kind]):
        pxi.train_supervised(model, optim, X[:16], Y[:16], inference=Returning(kind))
    for (w, b), (w_old, b_old) in zip(weights(model), before):
        np.testing.assert_array_equal(w, w_old)
        np.testing.assert_array_equal(b, b_old)
    out = pxi.train_supervised(model, optim, X[:16], Y[:16], inference=Returning("correct"))
    assert int(out["steps"]) == 1 and float(out["energy"]) < float(out["loss"])
