"""Stateful jit: in-place updates equal the functional result, caching, sharing, transactions."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
import pcframe.functional as pxf
from pcframe.core._structure import STRUCTURE


class Pair(px.Module):
    def __init__(self):
        self.a = px.Param(jnp.arange(3.0))
        self.b = px.Param(jnp.ones(3))
        self.scale = px.static(2.0)


def test_in_place_update_equals_functional_result():
    model = Pair()
    a0, b0 = model.a.value, model.b.value

    @pxf.jit()
    def update(x, *, model):
        model.a.value = model.a.value * model.scale.value + x
        model.b -= x
        return jnp.sum(model.a.value)

    out = update(jnp.full(3, 0.5), model=model)
    np.testing.assert_allclose(model.a.value, a0 * 2.0 + 0.5)
    np.testing.assert_allclose(model.b.value, b0 - 0.5)
    np.testing.assert_allclose(out, jnp.sum(a0 * 2.0 + 0.5))
    assert not isinstance(model.a.value, jax.core.Tracer)


def test_traced_once_and_retraced_on_static_change():
    model = Pair()
    traces = []

    @pxf.jit()
    def f(x, *, model):
        traces.append(1)
        model.a.value = model.a.value + x * model.scale.value
        return model.a.value

    for _ in range(5):
        f(jnp.ones(3), model=model)
    assert len(traces) == 1
    model.scale = px.static(3.0)
    out = f(jnp.ones(3), model=model)
    assert len(traces) == 2
    np.testing.assert_allclose(out, jnp.arange(3.0) + 5 * 2.0 + 3.0)


def test_static_argnums():
    model = Pair()
    traces = []

    @pxf.jit(static_argnums=0)
    def f(n, *, model):
        traces.append(n)
        for _ in range(n):
            model.a += 1.0

    f(2, model=model)
    f(2, model=model)
    f(3, model=model)
    assert traces == [2, 3]
    np.testing.assert_allclose(model.a.value, jnp.arange(3.0) + 7)


def test_shared_param_stays_shared():
    shared = px.Param(jnp.zeros(2))

    class Twice(px.Module):
        def __init__(self):
            self.first = shared
            self.items = [shared]

    model = Twice()

    @pxf.jit()
    def f(*, model):
        model.first += 1.0
        model.items[0] += 1.0

    f(model=model)
    assert model.first is model.items[0] is shared
    np.testing.assert_allclose(shared.value, [2.0, 2.0])


def test_plain_dict_and_list_of_params():
    params = {"w": px.Param(jnp.ones(2)), "v": [px.Param(jnp.zeros(2))]}

    @pxf.jit()
    def f(x, *, params):
        params["v"][0].value = params["w"].value * x

    f(3.0, params=params)
    np.testing.assert_allclose(params["v"][0].value, [3.0, 3.0])


def test_exception_leaves_model_untouched():
    model = Pair()
    before = model.a.value

    @pxf.jit()
    def failing(*, model):
        model.a += 1.0
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing(model=model)
    assert model.a.value is before


def test_static_changes_inside_jit_do_not_outlive_the_trace():
    model = Pair()

    @pxf.jit()
    def f(*, model):
        model.eval()
        model.a += 1.0

    f(model=model)
    assert model.is_training


def test_global_rkg_advances_between_calls():
    @pxf.jit()
    def draw():
        return jax.random.normal(px.RKG(), ())

    assert float(draw()) != float(draw())


def test_structure_cache_is_invalidated_by_new_params():
    model = Pair()

    @pxf.jit()
    def total(*, model):
        return sum(jnp.sum(p.value) for p in model.parameters())

    assert float(total(model=model)) == pytest.approx(6.0)
    version = STRUCTURE.value
    model.c = px.Param(jnp.full(3, 10.0))
    assert STRUCTURE.value != version
    assert float(total(model=model)) == pytest.approx(36.0)


def test_module_as_positional_argument_is_refused():
    @pxf.jit()
    def f(model):
        return model

    with pytest.raises(TypeError, match="keyword arguments"):
        f(Pair())


def test_does_not_block_on_results():
    model = Pair()

    @pxf.jit()
    def f(*, model):
        model.a += 1.0

    f(model=model)
    assert isinstance(model.a.value, jax.Array)


def test_lower_gives_xla_analysis_without_touching_the_model():
    model = Pair()
    a0 = model.a.value

    @pxf.jit()
    def update(x, *, model):
        model.a.value = model.a.value @ x
        return jnp.sum(model.b.value)

    x = jnp.ones((3, 3))
    compiled = update.lower(x, model=model).compile()
    assert model.a.value is a0
    assert compiled.cost_analysis()["flops"] >= 2 * 3 * 3 - 3  # a 3x3 matrix-vector product
    memory = compiled.memory_analysis()
    assert memory.argument_size_in_bytes >= 4 * (9 + 3 + 3)  # x, a and b as float32 (and the RKG key)
    update(x, model=model)
    np.testing.assert_allclose(model.a.value, a0 @ x)


def test_warns_once_when_one_structure_keeps_retracing():
    model = Pair()

    @pxf.jit(static_argnums=0)
    def scale(factor, *, model):
        model.a.value = model.a.value * factor

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            scale(2.0, model=model)  # cached after the first call: no warning
        assert not caught
        for factor in range(3, 13):  # a new static value on every call, as a new optimiser object would be
            scale(float(factor), model=model)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert "traced and compiled 8 times for the same model structure" in messages[0]
    assert "create them once, before the loop" in messages[0]
