"""jit reuses its compiled program when only parameters it overwrites before reading them have changed.

The tutorial-style training step initialises every activity by a feedforward pass, so an
evaluation in between (which clears the activities: the test set has another batch size)
must not make the next step compile again, and must not change what it computes.
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


train = make_train_step(use_scan=False)  # the pcax tutorial's step: feedforward init, T activity steps, a weight step


@pxf.jit()
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


def _evaluate(model, x):
    model.clear_params(pxc.VodeParam)
    out = predict(x, model=model)
    model.clear_params(pxc.VodeParam)
    return out


def test_evaluation_between_steps_compiles_nothing_and_the_steps_match_the_hand_written_ones():
    model, optim_w, optim_h = _setup()
    expected = weights(model)
    train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    _evaluate(model, X[:10])  # activities cleared: None
    with count_compilations() as compiled:
        for _ in range(3):
            train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)  # the program compiled for arrays
            train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
            _evaluate(model, X[:10])
    assert compiled[0] == 0
    state = TX_W.init(expected)
    for _ in range(7):
        expected, state = reference_step(expected, jnp.asarray(X), jnp.asarray(Y), T, H_LR, TX_W, state, jnp.tanh)
    for (w, b), (w_ref, b_ref) in zip(weights(model), expected):
        np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-6)


def test_activities_left_at_another_batch_size_still_get_the_error_that_names_them():
    """A trace with stale activities fails (vmap names the Vode), so the compiled program is not reused for them."""
    model, optim_w, optim_h = _setup()
    train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)
    model.clear_params(pxc.VodeParam)
    predict(X[:10], model=model)
    with pytest.raises(ValueError, match=r"model.vodes\[0\].h has size 10"):
        train(T, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)


class Holder(px.Module):
    def __init__(self):
        self.p = px.Param(jnp.ones(3))


def test_a_parameter_that_is_read_is_never_replaced():
    @pxf.jit()
    def double(*, m):
        m.p.value = m.p.value * 2.0

    m = Holder()
    double(m=m)
    m.p.value = jnp.arange(4.0)  # another shape, and read: a new program, on these values
    double(m=m)
    np.testing.assert_array_equal(m.p.value, jnp.arange(4.0) * 2.0)


def test_a_parameter_written_only_when_none_is_not_treated_as_write_first():
    @pxf.jit()
    def init_if_empty(x, *, m):
        if m.p.value is None:
            m.p.value = x + 1.0
        return x

    m = Holder()
    init_if_empty(jnp.zeros(3), m=m)  # p is an array: neither read nor written
    m.p.value = None
    init_if_empty(jnp.zeros(3), m=m)
    np.testing.assert_array_equal(m.p.value, jnp.ones(3))


def test_a_program_that_depends_on_the_shape_it_overwrites_is_compiled_again():
    """``zeros_like`` reads only the shape: no operation reads the value, yet the program depends on it."""

    @pxf.jit()
    def reset(x, *, m):
        m.p.value = jnp.zeros_like(m.p.value) + jnp.sum(x)

    m = Holder()
    reset(jnp.ones(2), m=m)
    m.p.value = jnp.ones(5)
    reset(jnp.ones(2), m=m)
    np.testing.assert_array_equal(m.p.value, jnp.full(5, 2.0))
    m.p.value = None
    with pytest.raises(TypeError):
        reset(jnp.ones(2), m=m)


def test_other_inputs_of_another_shape_compile_their_own_program():
    @pxf.jit()
    def overwrite(x, *, m):
        m.p.value = x * 3.0

    m = Holder()
    overwrite(jnp.ones(3), m=m)
    m.p.value = None
    overwrite(jnp.ones(5), m=m)  # the write-first p differs, and so does x: not the compiled program
    np.testing.assert_array_equal(m.p.value, jnp.full(5, 3.0))
    m.p.value = jnp.zeros(7)
    with count_compilations() as compiled:
        overwrite(jnp.ones(3), m=m)
    assert compiled[0] == 0
    np.testing.assert_array_equal(m.p.value, jnp.full(3, 3.0))


def test_inside_another_jit_the_inner_function_still_computes_from_its_inputs():
    @pxf.jit()
    def inner(x, *, m):
        m.p.value = x * 2.0

    @pxf.jit()
    def outer(x, *, m):
        inner(x, m=m)
        inner(m.p.value + 1.0, m=m)
        return m.p.value

    m = Holder()
    np.testing.assert_array_equal(outer(jnp.ones(3), m=m), jnp.full(3, 6.0))
    m.p.value = None
    np.testing.assert_array_equal(outer(jnp.ones(3), m=m), jnp.full(3, 6.0))
    m.p.value = jnp.zeros(5)
    inner(jnp.ones(3), m=m)
    np.testing.assert_array_equal(m.p.value, jnp.full(3, 2.0))
