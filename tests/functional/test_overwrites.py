"""jit(overwrites=...): parameters a function declares it sets before reading enter as `None`.

The tutorial-style training step initialises every activity by a feedforward pass. Declared
with ``overwrites=VodeParam``, it compiles once, whatever an evaluation in between leaves in
the activities (cleared, or sized for the test batch), and computes what a hand-written step does.
Nothing is inferred from traces: a function without the declaration compiles for each form.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from tests.conftest import MLP, weights
from tests.inference.compiles import count_compilations
from tests.pc.test_training_step import forward, make_train_step, reference_step

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 6)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 64)]
H_LR, T = 0.1, 3
TX_W = optax.sgd(0.05)

train = make_train_step(use_scan=False, overwrites=pxc.VodeParam)  # the pcax tutorial's step, declared
train_undeclared = make_train_step(use_scan=False)


@pxf.jit(overwrites=pxc.VodeParam)
def predict(x, *, model):
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        return forward(x, None, model=model)


def _setup():
    model = MLP([6, 8, 8, 3], out_energy=pxc.ce_energy)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(X, Y, model=model)
    optim_h = pxu.Optim(optax.sgd(H_LR), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(TX_W, pxu.Mask(pxnn.LayerParam)(model))
    return model, optim_w, optim_h


@pytest.mark.parametrize("clear", [True, False])
def test_evaluations_between_steps_compile_nothing_and_the_steps_match_the_hand_written_ones(clear):
    """Evaluations on 10 samples, the activities cleared after them or left at batch size 10."""
    model, optim_w, optim_h = _setup()
    expected = weights(model)
    train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    predict(X[:10], model=model)
    with count_compilations() as compiled:
        for _ in range(3):
            train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
            train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
            predict(X[:10], model=model)
            if clear:
                model.clear_params(pxc.VodeParam)
    assert compiled[0] == 0
    state = TX_W.init(expected)
    for _ in range(7):
        expected, state = reference_step(expected, jnp.asarray(X), jnp.asarray(Y), T, H_LR, TX_W, state, jnp.tanh)
    for (w, b), (w_ref, b_ref) in zip(weights(model), expected):
        np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-6)


def test_without_the_declaration_stale_activities_get_the_error_that_names_them():
    model, optim_w, optim_h = _setup()
    train_undeclared(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    predict(X[:10], model=model)
    with pytest.raises(ValueError, match=r"model.vodes\[0\].h has size 10"):
        train_undeclared(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)


class Holder(px.Module):
    def __init__(self):
        self.p = px.Param(jnp.ones(3))
        self.q = px.Param(jnp.zeros(3))


def test_a_declared_parameter_enters_as_none_and_is_written_back():
    seen = []

    @pxf.jit(overwrites=lambda p: p is holder.p)
    def overwrite(x, *, m):
        seen.append(m.p.value)
        m.p.value = x * 3.0
        m.q.value = m.q.value + 1.0

    holder = Holder()
    overwrite(jnp.ones(3), m=holder)
    assert seen == [None]
    np.testing.assert_array_equal(holder.p.value, jnp.full(3, 3.0))
    np.testing.assert_array_equal(holder.q.value, jnp.ones(3))
    holder.p.value = jnp.zeros(7)
    with count_compilations() as compiled:
        overwrite(jnp.ones(3), m=holder)
    assert compiled[0] == 0
    np.testing.assert_array_equal(holder.p.value, jnp.full(3, 3.0))
    np.testing.assert_array_equal(holder.q.value, jnp.full(3, 2.0))


def test_a_declared_activity_read_before_it_is_set_says_it_has_no_value():
    model, optim_w, optim_h = _setup()

    @pxf.jit(overwrites=pxc.VodeParam)
    def reads_first(x, *, model):
        return model.vodes[0].get("h")

    with pytest.raises(ValueError, match="'h' has no value"):
        reads_first(X, model=model)


def test_a_declaration_that_matches_nothing_is_refused():
    @pxf.jit(overwrites=pxc.VodeParam)
    def f(x, *, m):
        return x

    with pytest.raises(ValueError, match=r"overwrites.*VodeParam.*hold none"):
        f(jnp.ones(3), m=Holder())


def test_a_static_argument_decides_the_program_whatever_ran_before():
    """A program compiled for one static value never runs for another (the old write-first reuse did)."""

    def body(mode, x, *, m):
        if mode == "write":
            m.p.value = x
            return jnp.sum(x)
        return jnp.sum(m.p.value) * jnp.sum(x)

    f = pxf.jit(body, static_argnums=0)
    holder = Holder()
    f("write", jnp.ones(3), m=holder)
    holder.p.value = jnp.zeros(5)
    f("write", jnp.ones(3), m=holder)
    holder.p.value = jnp.full(5, 7.0)
    np.testing.assert_allclose(f("read", jnp.ones(3) / 3.0, m=holder), 35.0, rtol=1e-6)


def test_evaluations_at_many_batch_sizes_between_steps_compile_the_step_once():
    """The old write-first check traced the step at every new form, and those traces counted towards its retrace
    warning (the evaluation itself compiles once per batch size: seven sizes stay under that warning's eight)."""
    model, optim_w, optim_h = _setup()
    with count_compilations() as compiled:
        train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    step_compiles = compiled[0]
    with count_compilations() as compiled:
        for size in range(2, 9):
            predict(X[:size], model=model)  # one compile per evaluation batch size, none for the step
            train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    assert step_compiles >= 1 and compiled[0] == 7
