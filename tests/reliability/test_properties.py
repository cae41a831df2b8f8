"""Property-based tests: invariants of the object model on random MLPs, masks and transform nestings."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.core._tree import is_param
from tests.conftest import BATCHED, MLP, hand_energy, weights

SETTINGS = settings(max_examples=15, deadline=None)
sizes = st.lists(st.integers(1, 4), min_size=2, max_size=4)
batches = st.integers(1, 3)
seeds = st.integers(0, 2**16)


def data(sizes, batch, seed):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.standard_normal((batch, sizes[0])), jnp.float32),
        jnp.asarray(rng.standard_normal((batch, sizes[-1])), jnp.float32),
    )


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=(None, 0), axis_name="batch")
def energy(x, y, *, model):
    model(x, y)
    return jax.lax.pmean(model.energy(), "batch"), jnp.stack([jnp.sum(e) for e in model.energies()])


def build(sizes, x, y, seed):
    px.RKG.seed(seed)
    model = MLP(sizes)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        energy(x, y, model=model)
    return model


def hidden(model):
    return [v.h.value for v in model.vodes[:-1]]


@settings(max_examples=10, deadline=None)
@given(sizes, batches, seeds)
def test_total_energy_is_the_sum_of_the_nodes_and_the_hand_written_energy(sizes, batch, seed):
    x, y = data(sizes, batch, seed)
    model = build(sizes, x, y, seed)
    for vode in model.vodes[:-1]:  # move the activities away from the feedforward values
        vode.h.value = vode.h.value + 0.3
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        total, per_node = energy(x, y, model=model)
    np.testing.assert_allclose(total, jnp.sum(per_node.mean(axis=0)), rtol=1e-5, atol=1e-6)
    expected = hand_energy(weights(model), hidden(model), x, y)
    np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(per_node >= 0))  # squared-error energies are never negative


@SETTINGS
@given(sizes, batches, seeds, st.lists(st.booleans(), min_size=8, max_size=8), st.floats(0.01, 0.5))
def test_jit_write_back_equals_the_pure_jax_update_for_a_random_mask(sizes, batch, seed, chosen, lr):
    x, y = data(sizes, batch, seed)
    model = build(sizes, x, y, seed)
    params = model.parameters(pxnn.LayerParam)
    selected = {id(p) for p, flag in zip(params, chosen) if flag} or {id(params[0])}
    mask = pxu.Mask(pxu.m(lambda p: id(p) in selected), (False, True))

    @pxf.jit
    def learn(x, y, *, model):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            g = pxf.grad(mask, has_aux=True)(energy)(x, y, model=model)[0]["model"]
        grads = dict(jax.tree_util.tree_flatten_with_path(g, is_leaf=is_param)[0])
        for path, p in jax.tree_util.tree_flatten_with_path(model, is_leaf=is_param)[0]:
            if isinstance(grads.get(path), px.Param):
                p.value = p.value - lr * grads[path].value

    w0, h = weights(model), hidden(model)
    flat0, treedef = jax.tree_util.tree_flatten(w0)
    grads = jax.tree_util.tree_leaves(jax.grad(lambda w: hand_energy(w, h, x, y))(w0))
    expected = [w - lr * g if id(p) in selected else w for p, w, g in zip(params, flat0, grads)]
    learn(x, y, model=model)
    got = jax.tree_util.tree_leaves(weights(model))
    for p, e, g in zip(params, expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
        if id(p) not in selected:
            np.testing.assert_array_equal(g, e)


class Tied(px.Module):
    def __init__(self, n):
        self.w = px.Param(jnp.arange(float(n)))
        self.copies = [self.w, {"again": self.w}]
        self.other = px.Param(jnp.ones(n))


WRAPPERS = {
    "jit": lambda f: pxf.jit(f),
    "vmap": lambda f: pxf.vmap(None, in_axes=(0,), out_axes=0)(f),
    "scan": lambda f: lambda x, **kw: pxf.scan(lambda t, x, **kw: (f(x, **kw), None), xs=jnp.arange(1))(x, **kw)[0],
    "cond": lambda f: lambda x, **kw: pxf.cond(f, f)(True, x, **kw),
    "while": lambda f: (
        lambda x, **kw: pxf.while_loop(lambda i, x, **kw: (i + 1, f(x, **kw)), lambda i, x, **kw: i < 1)(0, x, **kw)[1]
    ),
}


@SETTINGS
@given(st.lists(st.sampled_from(sorted(WRAPPERS)), min_size=1, max_size=3), st.integers(1, 4), st.integers(1, 3))
def test_nested_transforms_update_like_pure_jax_and_keep_shared_params_shared(nesting, n, batch):
    model = Tied(n)

    def update(x, *, model):
        model.w.value = 2.0 * model.w.value + 1.0
        model.other.value = model.other.value + jnp.sum(model.copies[1]["again"].value)
        return x

    fn = update
    for name in nesting:
        fn = WRAPPERS[name](fn)
    w, other = np.arange(float(n)), np.ones(n)
    out = fn(jnp.ones((batch,) * nesting.count("vmap") + (n,)), model=model)  # one batch axis per vmap
    np.testing.assert_allclose(out, 1.0)
    w2, other2 = 2 * w + 1, other + np.sum(2 * w + 1)  # each wrapper runs the body once
    np.testing.assert_allclose(model.w.value, w2, rtol=1e-6)
    np.testing.assert_allclose(model.other.value, other2, rtol=1e-6)
    assert model.copies[0] is model.w and model.copies[1]["again"] is model.w


@SETTINGS
@given(sizes, seeds, st.sampled_from(["float32", "float16", "bfloat16"]))
def test_save_load_round_trips_exactly(tmp_path_factory, sizes, seed, dtype):
    folder = tmp_path_factory.mktemp("prop")
    px.RKG.seed(seed)
    source, target = MLP(sizes), MLP(sizes)
    for model in (source, target):
        for p in model.parameters(pxnn.LayerParam):
            p.value = p.value.astype(dtype)
    pxu.save_params(source, folder / "m")
    pxu.load_params(target, folder / "m")
    for a, b in zip(source.parameters(pxnn.LayerParam), target.parameters(pxnn.LayerParam)):
        assert a.value.dtype == b.value.dtype == jnp.dtype(dtype)
        assert np.asarray(a.value).tobytes() == np.asarray(b.value).tobytes()
