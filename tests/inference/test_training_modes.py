"""A training mode written by a user runs through the one step skeleton: compiled once, guarded, checked."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from tests.conftest import MLP, hand_energy, weights
from tests.inference.compiles import count_compilations

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 3)).astype(np.float32)
Y = RNG.normal(size=(64, 2)).astype(np.float32)
LR = 0.1


@dataclasses.dataclass(frozen=True)
class FeedforwardOnly(pxi.TrainingMode):
    """A user's mode: the weights learn at the feedforward activities, without inference."""

    name: ClassVar[str] = "feedforward_only"

    def learn(self, inference, x, y, *, model, optim_w):
        pxi.init_forward(model, x, y)
        energy, per_layer, grads = pxi.value_grad_and_layers(model, x)
        optim_w.step(model, grads)
        metrics = {"energy": energy, "energies": per_layer, "steps": jnp.asarray(0)}
        return pxi.Learned(metrics, [energy, grads], model, optim_w, grads, (model, [per_layer, per_layer], grads))


def _reference(ws, x, y):
    """One SGD step on the hand-written energy at the feedforward activities (the gradient through them stopped)."""
    hs, z = [], x
    for w, b in ws[:-1]:
        z = jnp.tanh(z @ w.T + b)
        hs.append(z)
    grads = jax.grad(lambda ws: hand_energy(ws, [jax.lax.stop_gradient(h) for h in hs], x, y))(ws)
    return jax.tree_util.tree_map(lambda w, g: w - LR * g, ws, grads)


def _model():
    model = MLP([3, 5, 2])
    return model, pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(model))


def test_a_users_mode_takes_the_hand_written_step_and_compiles_once():
    model, optim = _model()
    expected = weights(model)
    inference = pxi.DiscreteInference()
    out = pxi.train_step(FeedforwardOnly(), X, Y, inference=inference, model=model, optim_w=optim)
    assert bool(out["finite"]) and int(out["steps"]) == 0
    expected = _reference(expected, jnp.asarray(X), jnp.asarray(Y))
    pxi.predict(model, X[:10])  # an evaluation at another batch size in between
    with count_compilations() as compiled:
        for _ in range(3):
            pxi.train_step(FeedforwardOnly(), X, Y, inference=inference, model=model, optim_w=optim)
            expected = _reference(expected, jnp.asarray(X), jnp.asarray(Y))
            pxi.predict(model, X[:10])
    assert compiled[0] == 0
    for (w, b), (w_ref, b_ref) in zip(weights(model), expected):
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-5, atol=1e-6)


def test_a_users_mode_is_guarded_and_reports_what_is_not_finite():
    model, optim = _model()
    before = weights(model)
    bad = X.copy()
    bad[3, 0] = np.nan
    out = pxi.train_step(FeedforwardOnly(), bad, Y, inference=pxi.DiscreteInference(), model=model, optim_w=optim)
    assert not bool(out["finite"])
    for (w, b), (w0, b0) in zip(weights(model), before):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)
    with pytest.raises(FloatingPointError, match=r"feedforward_only: the energy of the node vodes\[0\]"):
        pxi.train_step(
            FeedforwardOnly(check_finite=True), bad, Y, inference=pxi.DiscreteInference(), model=model, optim_w=optim
        )


def test_train_step_refuses_what_is_not_a_mode_or_not_a_model():
    model, optim = _model()
    with pytest.raises(TypeError, match="mode must be a pcframe.inference.TrainingMode"):
        pxi.train_step("supervised", X, Y, inference=pxi.DiscreteInference(), model=model, optim_w=optim)
    with pytest.raises(TypeError, match="optim_w must be a pcframe.utils.Optim"):
        pxi.train_step(FeedforwardOnly(), X, Y, inference=pxi.DiscreteInference(), model=model, optim_w=model)


class HalfSteps(pxi.StepwiseInference):
    """A user's stepwise strategy: gradient descent with step 0.05 (DiscreteInference(step_size=0.05)'s rule)."""

    steps: int = 5

    def init_state(self, z):
        return None

    def apply(self, grads, z, state):
        return [a - 0.05 * g for a, g in zip(z, grads)], state

    def solve(self, energy):
        z, state = energy.initial(), None
        for _ in range(self.steps):
            _, grads = energy.value_and_grad(z)
            z, state = self.apply(grads, z, state)
        return z, {"steps": jnp.asarray(self.steps)}


def test_incremental_pc_runs_any_stepwise_strategy():
    results = []
    for inference in (HalfSteps(), pxi.DiscreteInference(step_size=0.05, steps=5)):
        px.RKG.seed(0)  # the same initial weights
        model, optim = _model()
        pxi.train_incremental(model, optim, X, Y, inference=inference)
        results.append(weights(model))
    for (w, b), (w_ref, b_ref) in zip(*results):
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(b, b_ref, rtol=1e-6, atol=1e-7)
    model, optim = _model()
    with pytest.raises(TypeError, match="needs a strategy that takes one update at a time"):
        pxi.train_incremental(model, optim, X, Y, inference=pxi.ODEInference())
