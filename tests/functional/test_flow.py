"""Stateful scan / while_loop / cond / switch against plain Python loops and branches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
import pcframe.functional as pxf


class Counter(px.Module):
    def __init__(self):
        self.total = px.Param(jnp.zeros(()))
        self.weight = px.Param(jnp.full((), 2.0))


def test_scan_threads_params_and_carry():
    model = Counter()

    def body(x, acc, *, model):
        model.total += x * model.weight
        return acc + x, model.total.value

    acc, ys = pxf.scan(body, xs=jnp.arange(5.0))(jnp.zeros(()), model=model)
    np.testing.assert_allclose(model.total.value, 2.0 * 10)
    np.testing.assert_allclose(acc, 10.0)
    np.testing.assert_allclose(ys, 2.0 * np.cumsum(np.arange(5.0)))


def test_scan_with_several_carries_inside_jit():
    model = Counter()

    @pxf.jit()
    def run(*, model):
        def body(x, a, b, *, model):
            model.total += a
            return (a + 1.0, b * 2.0), None

        return pxf.scan(body, length=4)(jnp.zeros(()), jnp.ones(()), model=model)[0]

    a, b = run(model=model)
    assert (float(a), float(b)) == (4.0, 16.0)
    np.testing.assert_allclose(model.total.value, 0 + 1 + 2 + 3)


def test_scan_body_changing_shape_is_a_clear_error():
    model = Counter()

    def body(x, c, *, model):
        model.total.value = jnp.zeros(3)
        return c, None

    with pytest.raises(TypeError, match="changes structure, shape or dtype"):
        pxf.scan(body, length=2)(jnp.zeros(()), model=model)


def test_while_loop():
    model = Counter()

    def body(i, *, model):
        model.total += model.weight
        return i + 1

    out = pxf.while_loop(body, lambda i, *, model: model.total.value < 7.0)(0, model=model)
    assert int(out) == 4
    np.testing.assert_allclose(model.total.value, 8.0)


@pytest.mark.parametrize("flag", [True, False])
def test_cond(flag):
    model = Counter()

    def add(x, *, model):
        model.total += x
        return x

    def scale(x, *, model):
        model.weight.value = model.weight.value * x
        return -x

    out = pxf.cond(add, scale)(flag, jnp.full((), 3.0), model=model)
    assert float(out) == (3.0 if flag else -3.0)
    assert float(model.total.value) == (3.0 if flag else 0.0)
    assert float(model.weight.value) == (2.0 if flag else 6.0)


def test_switch_inside_jit():
    model = Counter()

    @pxf.jit()
    def run(i, *, model):
        branches = [lambda *, model: model.total.value, lambda *, model: model.weight.value]
        return pxf.switch(i, branches)(model=model)

    assert float(run(1, model=model)) == 2.0
    assert float(run(0, model=model)) == 0.0


def test_loop_body_draws_fresh_keys():
    def body(x, c, *, rkg):
        return c, jax.random.normal(rkg(), ())

    rkg = px.RandomKeyGenerator(3)
    _, ys = pxf.scan(body, length=4)(jnp.zeros(()), rkg=rkg)
    assert len(set(np.asarray(ys).tolist())) == 4
