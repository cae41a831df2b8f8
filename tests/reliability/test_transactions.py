"""A function that fails inside any pcframe transform leaves every Param exactly as before the call."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.core._tree import collect_params
from tests.conftest import BATCHED, MLP


class Boom(Exception):
    pass


def built_model():
    model = MLP([3, 4, 2])
    x, y = jnp.ones((5, 3)), jnp.ones((5, 2))

    @pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
    def forward(x, y, *, model):
        return model(x, y)

    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
    return model


def fingerprint(*trees):
    """Every Param (and the global RKG) as (type, metadata, value bytes): exact, object by object."""
    out = []
    for p in collect_params((trees, px.RKG)):
        leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(p.value)]
        meta = repr(sorted(p.metadata().items()))
        out.append((id(p), type(p).__name__, meta, [(a.dtype.str, a.shape, a.tobytes()) for a in leaves]))
    return out


def vandalise(model):
    """Change values and metadata of the model, then fail."""
    for layer in model.layers:
        layer.nn.weight.value = layer.nn.weight.value * 0 + 7.0
    model.vodes[0].h.value = model.vodes[0].h.value + 1.0
    model.vodes[0].h.frozen = True
    model.vodes[-1].h.frozen = False
    model.layers[0].nn.bias.tag = "changed"
    del model.vodes[-1].h.__dict__["frozen"]
    px.RKG()
    raise Boom("fail on purpose")


def failing(*args, model, **kwargs):
    vandalise(model)


GRAD = pxu.Mask(pxnn.LayerParam, (False, True))
TRANSFORMS = {
    "jit": lambda model: pxf.jit(failing)(model=model),
    "vmap": lambda model: pxf.vmap(BATCHED, in_axes=(0,))(failing)(jnp.ones((5, 3)), model=model),
    "grad": lambda model: pxf.grad(GRAD)(failing)(jnp.ones(3), model=model),
    "value_and_grad": lambda model: pxf.value_and_grad(GRAD)(failing)(jnp.ones(3), model=model),
    "scan": lambda model: pxf.scan(lambda x, c, *, model: failing(model=model), xs=jnp.arange(3))(0.0, model=model),
    "while_loop": lambda model: pxf.while_loop(lambda c, *, model: failing(model=model), lambda c, **kw: c < 3)(
        0, model=model
    ),
    "cond": lambda model: pxf.cond(lambda *, model: failing(model=model), lambda *, model: 0.0)(True, model=model),
    "switch": lambda model: pxf.switch(1, [lambda *, model: 0.0, lambda *, model: failing(model=model)])(model=model),
    "jit(vmap)": lambda model: pxf.jit(lambda x, *, model: pxf.vmap(BATCHED, in_axes=(0,))(failing)(x, model=model))(
        jnp.ones((5, 3)), model=model
    ),
    "jit(grad(vmap))": lambda model: pxf.jit(
        lambda x, *, model: pxf.grad(GRAD)(pxf.vmap(BATCHED, in_axes=(0,))(failing))(x, model=model)
    )(jnp.ones((5, 3)), model=model),
    "scan(cond)": lambda model: pxf.scan(
        lambda x, c, *, model: (
            pxf.cond(lambda *, model: failing(model=model), lambda *, model: 0.0)(x > 1, model=model),
            0,
        ),
        xs=jnp.arange(3),
    )(0.0, model=model),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_failure_inside_a_transform_leaves_params_unchanged(name):
    model = built_model()
    before = fingerprint(model)
    with pytest.raises(Boom, match="fail on purpose"):
        TRANSFORMS[name](model)
    assert fingerprint(model) == before


def _broken_on_second_update():
    """An optax transformation whose update has the wrong shape for the second parameter only."""

    def update(grads, state, params=None):
        updates = [-0.1 * g for g in grads]
        updates[1] = jnp.ones(updates[1].shape + (2,))
        return updates, state + 1

    return optax.GradientTransformation(lambda params: jnp.zeros((), jnp.int32), update)


@pytest.mark.parametrize("jitted", [False, True], ids=["eager", "jit"])
def test_failed_optim_step_changes_nothing(jitted):
    model = built_model()
    optim = pxu.Optim(_broken_on_second_update(), pxu.Mask(pxnn.LayerParam)(model))
    grads = pxf.grad(GRAD)(lambda x, *, model: jnp.sum(model.layers[0](x)) + jnp.sum(model.layers[1].nn.bias))(
        jnp.ones(3), model=model
    )
    before = fingerprint(model, optim)

    def update(*, model, optim):
        optim.step(model, grads["model"])

    with pytest.raises(ValueError, match="Incompatible shapes|broadcast"):
        (pxf.jit(update) if jitted else update)(model=model, optim=optim)
    assert fingerprint(model, optim) == before


def test_failed_load_changes_nothing(tmp_path):
    source, target = built_model(), built_model()
    source.layers[1].nn.weight.value = source.layers[1].nn.weight.value + 1.0
    pxu.save_params(source, tmp_path / "model")
    with np.load(tmp_path / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["layers[1].nn.bias"] = np.zeros(3, np.float32)  # the last entry checked disagrees with the header
    np.savez(tmp_path / "model.npz", **arrays)
    before = fingerprint(target)
    with pytest.raises(
        pxu.UnreadableFileError, match=r"'layers\[1\]\.nn\.bias' holds <f4 \(3,\) but its header records float32 \(2,\)"
    ):
        pxu.load_params(target, tmp_path / "model")
    assert fingerprint(target) == before
