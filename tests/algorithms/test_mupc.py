"""μPC: residual PC networks and their parametrisations, against formulas written here by hand.

JPC is not installed; its conventions are re-implemented from its source (``_get_param_scalings``,
``pc_energy_fn`` with ``make_mlp`` + ``make_skip_model``): ``jpc_scalings`` and ``jpc_energy`` below.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import (
    MuPC,
    NeuralTangentParametrisation,
    ResidualPCConvNet,
    ResidualPCMLP,
    StandardParametrisation,
)
from pcframe.pc import ce_energy, se_energy
from tests.conftest import x64

D, N, L, OUT, B = 6, 5, 5, 3, 4


def jpc_scalings(param_type, D, N, L, gamma=None, skips=True):
    """JPC's ``_get_param_scalings`` for ``make_mlp``, with ``make_skip_model`` or without a skip model."""
    if param_type == "sp":
        scalings = [1.0] * L
    else:
        a1, al = 1 / math.sqrt(D), 1 / math.sqrt(N * L if skips else N)
        aL = 1 / N if param_type == "mupc" else 1 / math.sqrt(N)
        scalings = [a1] + [al] * (L - 2) + [aL]
    if gamma is not None:
        scalings[-1] = scalings[-1] / gamma
    return scalings


def jpc_energy(ws, zs, x, y, scalings, act=jax.nn.relu, ce=False, skips=True):
    """JPC's ``pc_energy_fn`` on ``make_mlp`` layers (act then linear; none before the first), skips optional.

    ``zs`` are the hidden activities z_1..z_{L-1}; JPC's output entry is ``y``.
    """
    e1 = zs[0] - scalings[0] * x @ ws[0].T
    energies = [0.5 * jnp.sum(e1**2)]
    for l in range(1, len(ws) - 1):
        err = zs[l] - scalings[l] * act(zs[l - 1]) @ ws[l].T - (zs[l - 1] if skips else 0.0)
        energies.append(0.5 * jnp.sum(err**2))
    out = scalings[-1] * act(zs[-1]) @ ws[-1].T
    last = -jnp.sum(y * jax.nn.log_softmax(out, axis=-1)) if ce else 0.5 * jnp.sum((y - out) ** 2)
    energies.append(last)
    return sum(energies) / x.shape[0]


def _weights(model):
    return [layer.nn.weight.value for layer in model.layers]


def _hidden(model):
    return [v.h.value for v in model.vodes[:-1]]


def _perturbed(model, x, y, scale=0.3):
    pxi.init_forward(model, x, y)
    for i, vode in enumerate(model.vodes[:-1]):
        vode.h.value = vode.h.value + scale * jax.random.normal(jax.random.PRNGKey(10 + i), vode.h.value.shape)


def _data(batch=B, dim=D, out=OUT):
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, dim))
    y = jax.nn.one_hot(jnp.arange(batch) % out, out)
    return x, y


@pytest.mark.parametrize(
    "param, name, gamma",
    [
        (StandardParametrisation(), "sp", None),
        (MuPC(), "mupc", None),
        (MuPC(gamma=2.5), "mupc", 2.5),
        (NeuralTangentParametrisation(), "ntp", None),
        (StandardParametrisation(gamma=2.0), "sp", 2.0),
        (NeuralTangentParametrisation(gamma=0.25), "ntp", 0.25),
    ],
)
def test_scalings_equal_jpc(param, name, gamma):
    """JPC divides the output scaling by ``gamma`` whatever the parametrisation; so does every one here."""
    model = ResidualPCMLP(D, N, L, OUT, parametrisation=param)
    np.testing.assert_allclose(model.scales, jpc_scalings(name, D, N, L, gamma), rtol=1e-12)


@pytest.mark.parametrize(
    "param, gamma",
    [
        (MuPC(), None),
        (MuPC(gamma=0.5), 0.5),
        (StandardParametrisation(), None),
        (StandardParametrisation(gamma=3.0), 3.0),
    ],
)
@pytest.mark.parametrize("ce", [False, True])
@pytest.mark.parametrize("skips", [True, False])
def test_energy_and_gradients_equal_jpc(param, gamma, ce, skips):
    """Energy and gradients equal JPC's ``pc_energy_fn`` on ``make_mlp`` with a skip model, and without one."""
    with x64():
        name = "sp" if isinstance(param, StandardParametrisation) else "mupc"
        output_energy = ce_energy if ce else se_energy
        model = ResidualPCMLP(D, N, L, OUT, parametrisation=param, output_energy=output_energy, skips=skips)
        x, y = _data()
        x, y = x.astype(jnp.float64), y.astype(jnp.float64)
        _perturbed(model, x, y)
        s = jpc_scalings(name, D, N, L, gamma, skips)
        np.testing.assert_allclose(model.scales, s, rtol=1e-12)
        ws, zs = _weights(model), _hidden(model)
        expected = jpc_energy(ws, zs, x, y, s, ce=ce, skips=skips)
        total, per_layer = pxi.batch_energy(model, x)
        np.testing.assert_allclose(total, expected, rtol=1e-12)
        assert per_layer.shape == (L,)

        _, g_act = pxi.activity_grad(model, x)
        hand_act = jax.grad(lambda zs: jpc_energy(ws, zs, x, y, s, ce=ce, skips=skips))(zs)
        for vode, g in zip(g_act.vodes[:-1], hand_act):
            np.testing.assert_allclose(vode.h.value, g, rtol=1e-10, atol=1e-12)

        _, g_w = pxi.param_grad(model, x)
        hand_w = jax.grad(lambda ws: jpc_energy(ws, zs, x, y, s, ce=ce, skips=skips))(ws)
        for i, g in enumerate(hand_w):
            np.testing.assert_allclose(g_w.layers[i].nn.weight.value, g, rtol=1e-10, atol=1e-12)


def test_feedforward_init_is_the_residual_forward_pass():
    with x64():
        model = ResidualPCMLP(D, N, L, OUT, act_fn="tanh", parametrisation=MuPC(gamma=2.0))
        x, y = _data()
        x = x.astype(jnp.float64)
        out = pxi.init_forward(model, x, y)
        s, ws = jpc_scalings("mupc", D, N, L, 2.0), _weights(model)
        z = s[0] * x @ ws[0].T
        np.testing.assert_allclose(model.vodes[0].h.value, z, rtol=1e-12)
        for l in range(1, L - 1):
            z = z + s[l] * jnp.tanh(z) @ ws[l].T
            np.testing.assert_allclose(model.vodes[l].h.value, z, rtol=1e-12)
        np.testing.assert_allclose(out, s[-1] * jnp.tanh(z) @ ws[-1].T, rtol=1e-12)


def test_initial_weights():
    width = 256
    mupc = ResidualPCMLP(width, width, 3, width, parametrisation=MuPC())
    ntp = ResidualPCMLP(width, width, 3, width, parametrisation=NeuralTangentParametrisation())
    sp = ResidualPCMLP(width, width, 3, width, parametrisation=StandardParametrisation())
    for model in (mupc, ntp):  # unit Gaussian (JPC's ntp keeps equinox's uniform weights: a documented difference)
        w = np.asarray(model.layers[1].nn.weight.value)
        assert abs(w.std() - 1) < 0.02 and abs(w.mean()) < 0.02
        assert np.abs(w).max() > 3  # a Gaussian, not a bounded uniform
    w = np.asarray(sp.layers[1].nn.weight.value)
    bound = 1 / math.sqrt(width)
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.002


def test_depth_stable_forward_pass_only_with_mupc():
    """Depth-μP keeps the forward pass O(1) in depth; the standard parametrisation's grows with depth."""
    x, y = _data(batch=16, dim=32)

    def last_rms(param, depth):
        model = ResidualPCMLP(32, 64, depth, OUT, parametrisation=param)
        pxi.init_forward(model, x, y)
        return float(jnp.sqrt(jnp.mean(model.vodes[-2].h.value ** 2)))

    mupc = [last_rms(MuPC(), d) for d in (4, 64)]
    sp = [last_rms(StandardParametrisation(), d) for d in (4, 64)]
    assert 0.5 < mupc[1] / mupc[0] < 2.0, mupc
    assert sp[1] / sp[0] > 5.0, sp


def _hand_step(ws, x, y, s, *, eta, steps, lr):
    """Pure JAX: feedforward init, `steps` GD steps on the batch-mean energy, one SGD weight step."""
    z = [s[0] * x @ ws[0].T]
    for l in range(1, len(ws) - 1):
        z.append(z[-1] + s[l] * jax.nn.relu(z[-1]) @ ws[l].T)
    for _ in range(steps):
        g = jax.grad(lambda zs: jpc_energy(ws, zs, x, y, s))(z)
        z = [a - eta * b for a, b in zip(z, g)]
    gw = jax.grad(lambda ws: jpc_energy(ws, z, x, y, s))(ws)
    return [w - lr * g for w, g in zip(ws, gw)]


@pytest.mark.parametrize("gamma", [1.0, 3.0])
def test_gamma_reaches_the_packaged_step(gamma):
    """JPC cannot pass gamma through make_pc_step; here it is part of the model, so train_supervised uses it."""
    with x64():
        model = ResidualPCMLP(D, N, L, OUT, parametrisation=MuPC(gamma=gamma))
        x, y = _data()
        x = x.astype(jnp.float64)
        before = _weights(model)
        optim = pxu.Optim(optax.sgd(0.5), pxu.Mask(pxnn.LayerParam)(model))
        inference = pxi.DiscreteInference(step_size=0.3, steps=6, batch_mean=True)
        pxi.train_supervised(model, optim, x, y, inference=inference)
        expected = _hand_step(before, x, y, jpc_scalings("mupc", D, N, L, gamma), eta=0.3, steps=6, lr=0.5)
        for w, e in zip(_weights(model), expected):
            np.testing.assert_allclose(w, e, rtol=1e-9, atol=1e-12)
        other = _hand_step(before, x, y, jpc_scalings("mupc", D, N, L, 7.0), eta=0.3, steps=6, lr=0.5)
        assert not np.allclose(_weights(model)[-1], other[-1])


def test_ode_inference_lowers_the_energy_and_trains():
    model = ResidualPCMLP(D, N, 8, OUT, parametrisation=MuPC())
    x, y = _data(batch=8)
    pxi.init_forward(model, x, y)
    before, _ = pxi.batch_energy(model, x)
    stats = pxi.ODEInference(max_t1=50.0).run(model, x)
    after, _ = pxi.batch_energy(model, x)
    assert float(after) < 0.9 * float(before) and int(stats["steps"]) > 0
    optim = pxu.Optim(optax.adam(1e-1), pxu.Mask(pxnn.LayerParam)(model))  # μP: a large Adam step
    losses = [float(pxi.train_supervised(model, optim, x, y, inference=pxi.ODEInference())["loss"]) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def _conv(x, w, k):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), [(k // 2, k // 2)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW")
    )


def conv_energy(ws, head, zs, x, y, s, k):
    """Batch mean of the residual conv net's energy, written from its formula."""
    total = 0.5 * jnp.sum((zs[0] - s[0] * _conv(x, ws[0], k)) ** 2)
    for l in range(1, len(ws)):
        total += 0.5 * jnp.sum((zs[l] - zs[l - 1] - s[l] * _conv(jax.nn.relu(zs[l - 1]), ws[l], k)) ** 2)
    out = s[-1] * jnp.mean(jax.nn.relu(zs[-1]), axis=(2, 3)) @ head.T
    return (total + 0.5 * jnp.sum((y - out) ** 2)) / x.shape[0]


@pytest.mark.parametrize("inference", [pxi.DiscreteInference(step_size=0.2, steps=5), pxi.ODEInference(max_t1=2.0)])
def test_conv_net_energy_gradients_and_fan_in_scalings(inference):
    """Each layer's multiplier uses its own fan-in (C0 k^2, C k^2, C); JPC would read one width from its first layer."""
    with x64():
        c0, c, depth, k, gamma = 2, 3, 4, 3, 1.5
        model = ResidualPCConvNet(c0, c, depth, OUT, image_size=(5, 4), kernel_size=k, parametrisation=MuPC(gamma))
        expected_scales = [1 / math.sqrt(c0 * k * k)] + [1 / math.sqrt(c * k * k * depth)] * 2 + [1 / (gamma * c)]
        np.testing.assert_allclose(model.scales, expected_scales, rtol=1e-12)
        x = jax.random.normal(jax.random.PRNGKey(2), (B, c0, 5, 4), dtype=jnp.float64)
        y = jax.nn.one_hot(jnp.arange(B) % OUT, OUT, dtype=jnp.float64)
        _perturbed(model, x, y)
        ws, head, zs = [cv.nn.weight.value for cv in model.convs], model.head.nn.weight.value, _hidden(model)
        total, _ = pxi.batch_energy(model, x)
        np.testing.assert_allclose(total, conv_energy(ws, head, zs, x, y, model.scales, k), rtol=1e-12)
        _, g_w = pxi.param_grad(model, x)
        hand = jax.grad(lambda ws: conv_energy(ws, head, zs, x, y, model.scales, k))(ws)
        for conv, g in zip(g_w.convs, hand):
            np.testing.assert_allclose(conv.nn.weight.value, g, rtol=1e-9, atol=1e-12)
        pxi.init_forward(model, x, y)
        before, _ = pxi.batch_energy(model, x)
        inference.run(model, x)
        after, _ = pxi.batch_energy(model, x)
        assert float(after) < float(before)


def test_parametrisation_must_be_an_object():
    with pytest.raises(TypeError, match="MuPC()"):
        ResidualPCMLP(D, N, L, OUT, parametrisation="mupc")
    with pytest.raises(ValueError, match="MuPC gamma"):
        MuPC(gamma=0.0)
    with pytest.raises(ValueError, match="StandardParametrisation gamma"):
        StandardParametrisation(gamma=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        ResidualPCMLP(D, N, 1, OUT)
    with pytest.raises(ValueError, match="shape"):
        ResidualPCMLP(D, N, L, OUT)(jnp.ones(D + 1))
    with pytest.raises(TypeError, match="skips must be True or False"):
        ResidualPCMLP(D, N, L, OUT, skips="no")
