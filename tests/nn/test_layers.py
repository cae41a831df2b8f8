"""Layers: same numbers as the equinox layer built from the same arrays and as hand-written formulas."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.utils as pxu

KEY = jax.random.PRNGKey(42)


def _x(*shape, seed=0):
    """A random input, drawn with numpy (no JAX compilation)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(actual, expected, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


@eqx.filter_jit
def _apply(layer, *args):
    """Call a pcframe or equinox layer as one compiled function (one XLA compilation instead of one per op)."""
    return layer(*args)


@eqx.filter_jit
def _apply_each(layers, *args):
    """``[f(*args) for f in layers]`` in one compiled function: the layer and its references, compiled together."""
    return [f(*args) for f in layers]


def _arrays(layer):
    """The LayerParam values of a pcframe layer, in equinox field order."""
    return [p.value for p in jax.tree_util.tree_leaves(layer.nn, is_leaf=lambda x: isinstance(x, px.Param))]


def _same_arrays(make, layer):
    """The equinox layer ``make(key)`` built with the arrays of the pcframe `layer` (no initialisation run)."""
    skeleton = eqx.filter_eval_shape(make, KEY)
    leaves, treedef = jax.tree_util.tree_flatten(skeleton)
    arrays = _arrays(layer)
    assert len(leaves) == len(arrays)
    assert all(leaf.shape == a.shape and leaf.dtype == a.dtype for leaf, a in zip(leaves, arrays))
    return jax.tree_util.tree_unflatten(treedef, arrays)


def _assert_layer_params(layer, n):
    array_leaves = jax.tree_util.tree_leaves(layer.nn, is_leaf=lambda x: isinstance(x, px.Param))
    assert len(array_leaves) == n
    assert all(type(p) is pxnn.LayerParam for p in array_leaves)
    assert [id(p) for p in layer.parameters()] == [id(p) for p in array_leaves]


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    layer = pxnn.Linear(5, 3, bias=bias)
    _assert_layer_params(layer, 2 if bias else 1)
    w = np.asarray(layer.nn.weight.value)
    assert w.shape == (3, 5)
    x = _x(5)
    expected = w @ x + (np.asarray(layer.nn.bias.value) if bias else 0.0)
    _close(layer(x), expected)
    _close(layer(x), _same_arrays(lambda k: eqx.nn.Linear(5, 3, use_bias=bias, key=k), layer)(x))
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(w) <= bound) and np.std(w) > 0


def test_linear_uses_the_current_param_values():
    layer = pxnn.Linear(4, 2)
    layer.nn.weight.value = jnp.arange(8.0).reshape(2, 4)
    layer.nn.bias.value = jnp.array([1.0, -1.0])
    _close(layer(jnp.ones(4)), np.array([0 + 1 + 2 + 3 + 1.0, 4 + 5 + 6 + 7 - 1.0]))


def test_linear_batched_with_vmap():
    layer = pxnn.Linear(4, 3)
    xs = _x(6, 4)
    out = pxf.vmap(in_axes=0)(lambda x, *, layer: layer(x))(xs, layer=layer)
    _close(out, xs @ np.asarray(layer.nn.weight.value).T + np.asarray(layer.nn.bias.value))


def test_linear_init_follows_the_rkg():
    a = pxnn.Linear(3, 2, rkg=px.RandomKeyGenerator(5))
    b = pxnn.Linear(3, 2, rkg=px.RandomKeyGenerator(5))
    c = pxnn.Linear(3, 2, rkg=px.RandomKeyGenerator(6))
    np.testing.assert_array_equal(a.nn.weight.value, b.nn.weight.value)
    assert not np.array_equal(a.nn.weight.value, c.nn.weight.value)


# Every 2d convolution below has a (6, 4, 3, 3) weight: initialising a new 4d shape costs ~1 s of compilation.
CONV2D_CASES = {
    "plain": dict(stride=1, padding=0, dilation=1, groups=1),
    "stride2-pad1": dict(stride=2, padding=1, dilation=1, groups=1),
    "dilated-grouped": dict(stride=(1, 2), padding=((2, 1), (0, 2)), dilation=2, groups=2, in_channels=8),
}


@pytest.mark.parametrize("case", CONV2D_CASES.values(), ids=CONV2D_CASES.keys())
def test_conv2d(case):
    case = dict(case)
    in_channels = case.pop("in_channels", 4)
    conv = pxnn.Conv2d(in_channels, 6, kernel_size=3, **case)
    _assert_layer_params(conv, 2)
    w, b = conv.nn.weight.value, conv.nn.bias.value
    assert w.shape == (6, in_channels // case["groups"], 3, 3)
    stride = case["stride"] if isinstance(case["stride"], tuple) else (case["stride"],) * 2
    padding = case["padding"] if isinstance(case["padding"], tuple) else ((case["padding"],) * 2,) * 2

    def by_hand(x):
        return jax.lax.conv_general_dilated(
            x[None],
            w,
            window_strides=stride,
            padding=padding,
            rhs_dilation=(case["dilation"],) * 2,
            feature_group_count=case["groups"],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )[0] + b.reshape(6, 1, 1)

    args = (2, in_channels, 6, 3, case["stride"], case["padding"], case["dilation"], case["groups"])
    reference = _same_arrays(lambda k: eqx.nn.Conv(*args, key=k), conv)
    ours, expected, theirs = _apply_each([conv, by_hand, reference], _x(in_channels, 9, 8))
    _close(ours, expected)
    _close(ours, theirs)


def test_conv2d_same_padding_and_no_bias():
    conv = pxnn.Conv2d(4, 6, kernel_size=3, padding="SAME", bias=False)
    _assert_layer_params(conv, 1)
    by_hand = lambda x: jax.lax.conv_general_dilated(x[None], conv.nn.weight.value, (1, 1), "SAME")[0]  # noqa: E731
    ours, expected = _apply_each([conv, by_hand], _x(4, 7, 7))
    assert expected.shape == (6, 7, 7)
    _close(ours, expected)


@pytest.mark.parametrize("dims", [1, 3])
def test_conv1d_and_conv3d(dims):
    make = {1: pxnn.Conv1d, 3: pxnn.Conv3d}[dims]
    conv = make(2, 3, kernel_size=2, stride=1, padding=1)
    _assert_layer_params(conv, 2)
    assert conv.nn.weight.value.shape == (3, 2) + (2,) * dims
    spec = {1: ("NCH", "OIH", "NCH"), 3: ("NCDHW", "OIDHW", "NCDHW")}[dims]
    reference = _same_arrays(lambda k: eqx.nn.Conv(dims, 2, 3, 2, 1, 1, key=k), conv)

    def by_hand(x):
        out = jax.lax.conv_general_dilated(
            x[None], conv.nn.weight.value, (1,) * dims, ((1, 1),) * dims, dimension_numbers=spec
        )[0]
        return out + conv.nn.bias.value

    ours, expected, theirs = _apply_each([conv, by_hand, reference], _x(2, *(5,) * dims))
    _close(ours, expected)
    _close(ours, theirs)


@pytest.mark.parametrize("stride, padding, output_padding", [(1, 0, 0), (2, 1, 1)])
def test_conv_transpose(stride, padding, output_padding):
    k = 3
    up = pxnn.ConvTranspose(2, 4, 6, kernel_size=k, stride=stride, padding=padding, output_padding=output_padding)
    _assert_layer_params(up, 2)
    assert up.nn.weight.value.shape == (6, 4, 3, 3)
    reference = _same_arrays(lambda key: eqx.nn.ConvTranspose(2, 4, 6, k, stride, padding, output_padding, key=key), up)
    # by hand: a stride-1 correlation over the input dilated by `stride`, padded by k - 1 - padding
    lo, hi = k - 1 - padding, k - 1 - padding + output_padding

    def by_hand(x):
        out = jax.lax.conv_general_dilated(
            x[None], up.nn.weight.value, (1, 1), ((lo, hi), (lo, hi)), lhs_dilation=(stride, stride)
        )[0]
        return out + up.nn.bias.value

    ours, expected, theirs = _apply_each([up, by_hand, reference], _x(4, 5, 6))
    size = lambda n: (n - 1) * stride - 2 * padding + k + output_padding  # noqa: E731
    assert ours.shape == (6, size(5), size(6))
    _close(ours, expected)
    _close(ours, theirs)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(affine):
    norm = pxnn.LayerNorm(6, eps=1e-3, elementwise_affine=affine)
    _assert_layer_params(norm, 2 if affine else 0)
    gamma, beta = np.linspace(0.5, 2.0, 6, dtype=np.float32), np.linspace(-1.0, 1.0, 6, dtype=np.float32)
    if affine:
        norm.nn.weight.value = jnp.asarray(gamma)
        norm.nn.bias.value = jnp.asarray(beta)
    x = 3.0 * _x(6) + 1.0
    expected = (x - x.mean()) / np.sqrt(x.var() + 1e-3)
    if affine:
        expected = expected * gamma + beta
    reference = _same_arrays(lambda k: eqx.nn.LayerNorm(6, eps=1e-3, use_weight=affine, use_bias=affine), norm)
    ours, theirs = _apply_each([norm, reference], x)
    _close(ours, expected)
    _close(ours, theirs)


def test_layer_norm_over_several_axes():
    norm = pxnn.LayerNorm((2, 3))
    assert norm.nn.weight.value.shape == (2, 3)
    x = _x(2, 3)
    _close(_apply(norm, x), (x - x.mean()) / np.sqrt(x.var() + 1e-5))


def test_pools():
    x = _x(3, 6, 8)
    blocks = x.reshape(3, 3, 2, 4, 2)
    mx, avg = pxnn.MaxPool2d(2), pxnn.AvgPool2d(2)
    assert mx.parameters() == [] and avg.parameters() == []
    ours_max, ours_avg, eqx_max, eqx_avg = _apply_each([mx, avg, eqx.nn.MaxPool2d(2, 2), eqx.nn.AvgPool2d(2, 2)], x)
    _close(ours_max, blocks.max(axis=(2, 4)))
    _close(ours_avg, blocks.mean(axis=(2, 4)))
    _close(ours_max, eqx_max)
    _close(ours_avg, eqx_avg)


def test_pools_with_stride_and_padding():
    x = _x(2, 7, 7)
    layers = [pxnn.MaxPool2d(3, stride=2, padding=1), eqx.nn.MaxPool2d(3, 2, 1)]
    layers += [pxnn.AvgPool2d(3, stride=2, padding=1), eqx.nn.AvgPool2d(3, 2, 1)]
    ours_max, eqx_max, ours_avg, eqx_avg = _apply_each(layers, x)
    _close(ours_max, eqx_max)
    _close(ours_avg, eqx_avg)
    # max pooling by hand: windows rows/cols {-1,0,1}, {1,2,3}, ... with -inf padding
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    expected = np.stack(
        [
            np.stack([padded[:, i : i + 3, j : j + 3].max(axis=(1, 2)) for j in range(0, 7, 2)], -1)
            for i in range(0, 7, 2)
        ],
        -2,
    )
    _close(ours_max, expected)


def test_generic_layer_over_gru_cell():
    cell = eqx.nn.GRUCell(3, 4, key=KEY)
    gru = pxnn.Layer(cell)
    _assert_layer_params(gru, 4)
    x, h = _x(3), _x(4, seed=1)
    ours, theirs = _apply_each([gru, cell], x, h)
    _close(ours, theirs)
    w_ih, w_hh, b, b_n = (np.asarray(p.value) for p in gru.parameters())
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    ir, iz, i_n = np.split(w_ih @ x + b, 3)
    hr, hz, hn = np.split(w_hh @ h, 3)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(i_n + r * (hn + b_n))
    _close(ours, (1 - z) * n + z * h)
    gru.nn.bias.value = gru.nn.bias.value + 1.0  # the wrapper reads its params at call time
    assert not np.allclose(_apply_each([gru, cell], x, h)[0], theirs)


def test_layer_module_returns_a_plain_equinox_layer():
    layer = pxnn.Linear(2, 2)
    inner = layer.module()
    assert type(inner) is eqx.nn.Linear
    assert inner.weight is layer.nn.weight.value


def test_layer_refuses_non_equinox_modules():
    with pytest.raises(TypeError, match=r"Layer wraps an equinox Module \(e\.g\. eqx\.nn\.Linear\), got function"):
        pxnn.Layer(lambda x: x)


class Dropper(px.Module):
    def __init__(self, p, rkg=px.RKG):
        self.drop = pxnn.Dropout(p, rkg=rkg)

    def __call__(self, x):
        return self.drop(x)


def test_dropout_is_identity_in_eval_mode():
    model = Dropper(0.5).eval()
    x = _x(100)
    key = px.RKG.key.value
    assert model(x) is x
    assert px.RKG.key.value is key


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_dropout_drops_about_p_and_rescales(p):
    model = Dropper(p)
    x = np.abs(_x(20_000)) + 0.1
    y = np.asarray(model(x))
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.02
    _close(y[~dropped], x[~dropped] / (1 - p))


def test_dropout_masks_differ_per_sample_under_vmap_and_rkg_advances():
    model = Dropper(0.5)
    nothing_batched = pxu.Mask(pxu.m(lambda p: False), (None, 0))

    @pxf.vmap(nothing_batched, in_axes=0, out_axes=0)
    def forward(x, *, model):
        return model(x)

    key0 = px.RKG.key.value
    first = np.asarray(forward(np.ones((6, 64), np.float32), model=model)) == 0
    key1 = px.RKG.key.value
    second = np.asarray(forward(np.ones((6, 64), np.float32), model=model)) == 0
    assert len({row.tobytes() for row in first}) == 6
    assert not np.array_equal(key0, key1) and not np.array_equal(key1, px.RKG.key.value)
    assert not np.array_equal(first, second)
    assert abs(first.mean() - 0.5) < 0.1


def test_dropout_with_its_own_generator():
    rkg = px.RandomKeyGenerator(9)
    model = Dropper(0.5, rkg=rkg)
    global_key, own_key = px.RKG.key.value, rkg.key.value
    out = pxf.vmap(in_axes=0)(lambda x, *, model: model(x))(np.ones((4, 32), np.float32), model=model)
    assert len({np.asarray(row).tobytes() for row in out}) == 4
    assert not np.array_equal(rkg.key.value, own_key)
    assert px.RKG.key.value is global_key


def test_dropout_under_jit_draws_new_masks_each_call():
    model = Dropper(0.5)
    forward = pxf.jit(lambda x, *, model: model(x))
    a, b = forward(np.ones(64, np.float32), model=model), forward(np.ones(64, np.float32), model=model)
    assert not np.array_equal(a, b)
    model.eval()
    np.testing.assert_array_equal(forward(np.ones(64, np.float32), model=model), np.ones(64))
