"""Energy regularisers (weight decay, spectral penalty, activity decay) against formulas written by hand.

JPC's ``pc_energy_fn(weight_decay, spectral_penalty, activity_decay)`` is re-implemented from its source in
``jpc_regularisation``; the tests show where the two agree and the two places JPC is wrong.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP, MuPC, ResidualPCConvNet
from tests.conftest import hand_energy, weights, x64

SIZES = [4, 6, 5, 3]
WD, SP, AD = 0.3, 0.2, 0.7


def _setup(regularisers=(), batch=5, dtype=jnp.float64):
    px.RKG.seed(0)  # the same weights on every call
    model = PCMLP(SIZES)
    model.regularisers = regularisers
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, SIZES[0]), dtype=dtype)
    y = jax.nn.one_hot(jnp.arange(batch) % SIZES[-1], SIZES[-1], dtype=dtype)
    pxi.init_forward(model, x, y)
    for i, vode in enumerate(model.vodes[:-1]):
        vode.h.value = vode.h.value + 0.5 * jax.random.normal(jax.random.PRNGKey(3 + i), vode.h.value.shape, dtype)
    return model, x, y


def hand_regularised(ws, hs, x, y, wd=0.0, sp=0.0, ad=0.0):
    """The regularised batch energy from its formula: mean_i [sum_l E_l + ad/2 sum_l ||z_l||^2] + R(W)."""
    weight_terms = sum(0.5 * wd * jnp.sum(w**2) for w, _ in ws)
    weight_terms += sum(0.5 * sp * jnp.sum((w.T @ w - jnp.eye(w.shape[1])) ** 2) for w, _ in ws)
    activity_terms = sum(0.5 * ad * jnp.sum(h**2) for h in hs) / x.shape[0]
    return hand_energy(ws, hs, x, y) + weight_terms + activity_terms


def jpc_regularisation(layers, activities, weight_decay=0.0, spectral_penalty=0.0, activity_decay=0.0):
    """JPC 1.0's regularisation terms of ``pc_energy_fn``, as written in its source."""
    weight_reg = sum(jnp.sum(layer.weight**2) for layer in layers if hasattr(layer, "weight")) * weight_decay / 2
    spectral_reg = 0.0
    for layer in layers:
        if hasattr(layer, "weight"):
            w = layer.weight
            spectral_reg += jnp.sum((w.T @ w - jnp.eye(w.shape[1])) ** 2)
    spectral_reg *= spectral_penalty / 2
    activity_reg = sum(jnp.sum(a**2, axis=1).mean() for a in activities) * activity_decay / 2
    return weight_reg + spectral_reg + activity_reg


@pytest.mark.parametrize("wd, sp, ad", [(WD, 0, 0), (0, SP, 0), (0, 0, AD), (WD, SP, AD)])
def test_energy_and_gradients_match_the_formula(wd, sp, ad):
    with x64():
        regs = tuple(
            r for r, c in ((pxc.WeightDecay(wd), wd), (pxc.SpectralPenalty(sp), sp), (pxc.ActivityDecay(ad), ad)) if c
        )
        model, x, y = _setup(regs)
        ws, hs = weights(model), [v.h.value for v in model.vodes[:-1]]
        total, per_layer = pxi.batch_energy(model, x)
        np.testing.assert_allclose(total, hand_regularised(ws, hs, x, y, wd, sp, ad), rtol=1e-12)
        np.testing.assert_allclose(jnp.sum(per_layer), hand_energy(ws, hs, x, y), rtol=1e-12)  # nodes' own terms

        _, g_act = pxi.activity_grad(model, x)
        expected = jax.grad(lambda hs: hand_regularised(ws, hs, x, y, wd, sp, ad))(hs)
        for vode, g in zip(g_act.vodes[:-1], expected):
            np.testing.assert_allclose(vode.h.value, g, rtol=1e-10, atol=1e-12)

        _, g_w = pxi.param_grad(model, x)
        expected = jax.grad(lambda ws: hand_regularised(ws, hs, x, y, wd, sp, ad))(ws)
        for layer, (gw, gb) in zip(g_w.layers, expected):
            np.testing.assert_allclose(layer.nn.weight.value, gw, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(layer.nn.bias.value, gb, rtol=1e-10, atol=1e-12)  # biases not decayed


def test_equal_to_jpc_where_the_conventions_agree():
    """On layers that expose ``.weight`` (bare equinox Linear) and the activities JPC's energy uses, all three agree."""
    with x64():
        regs = (pxc.WeightDecay(WD), pxc.SpectralPenalty(SP), pxc.ActivityDecay(AD))
        model, x, y = _setup(regs)
        plain, _, _ = _setup()
        for a, b in zip(plain.layers, model.layers):
            a.nn.weight.value, a.nn.bias.value = b.nn.weight.value, b.nn.bias.value
        for a, b in zip(plain.vodes[:-1], model.vodes[:-1]):
            a.h.value = b.h.value
        extra = pxi.batch_energy(model, x)[0] - pxi.batch_energy(plain, x)[0]
        layers = [layer.module() for layer in model.layers]  # eqx.nn.Linear: has .weight
        hidden = [v.h.value for v in model.vodes[:-1]]
        np.testing.assert_allclose(extra, jpc_regularisation(layers, hidden, WD, SP, AD), rtol=1e-10)


def test_jpc_weight_terms_are_no_ops_on_its_own_layers_and_ours_are_not():
    """JPC's make_mlp wraps each Linear in Sequential([Lambda(act), Linear]): no ``.weight``, so no penalty."""
    with x64():
        model, x, _ = _setup((pxc.WeightDecay(WD), pxc.SpectralPenalty(SP)))
        jpc_layers = [eqx.nn.Sequential([eqx.nn.Lambda(jnp.tanh), layer.module()]) for layer in model.layers]
        assert float(jpc_regularisation(jpc_layers, [], WD, SP)) == 0.0
        ws = weights(model)
        expected = sum(
            0.5 * WD * jnp.sum(w**2) + 0.5 * SP * jnp.sum((w.T @ w - jnp.eye(w.shape[1])) ** 2) for w, _ in ws
        )
        np.testing.assert_allclose(model.regularisation(), expected, rtol=1e-12)
        assert float(expected) > 0


def test_activity_decay_leaves_the_clamped_output_alone():
    """JPC adds its unused last activity entry to the activity decay; pcframe penalises the free activities only."""
    with x64():
        model, x, y = _setup((pxc.ActivityDecay(AD),))
        hidden = [v.h.value for v in model.vodes[:-1]]
        ours = pxi.batch_energy(model, x)[0] - hand_energy(weights(model), hidden, x, y)
        jpc = jpc_regularisation([], hidden + [y], activity_decay=AD)  # JPC's list ends with the output entry
        np.testing.assert_allclose(jpc - ours, 0.5 * AD * jnp.mean(jnp.sum(y**2, axis=1)), rtol=1e-10)
        np.testing.assert_allclose(ours, jpc_regularisation([], hidden, activity_decay=AD), rtol=1e-10)


def test_free_input_layer_is_decayed():
    with x64():
        model = PCMLP([3, 4, 2], free_input=True)
        model.regularisers = (pxc.ActivityDecay(AD),)
        y = jnp.ones((2, 2), jnp.float64)
        pxi.init_random(model, None, y, sigma=1.0)
        free = [v.h.value for v in model.iter_vodes() if not v.h.__dict__.get("frozen", False)]
        assert len(free) == 2  # the input node and the hidden node
        plain = pxi.batch_energy(model, None)[0]
        model.regularisers = ()
        np.testing.assert_allclose(
            plain - pxi.batch_energy(model, None)[0], 0.5 * AD * sum(jnp.sum(z**2) for z in free) / 2
        )


@pytest.mark.parametrize(
    "inference",
    [pxi.DiscreteInference(step_size=0.2, steps=8), pxi.ODEInference(dt=0.2, max_t1=1.6, steady_state=False)],
)
def test_activity_decay_changes_inference_weight_terms_do_not(inference):
    with x64():
        results = {}
        for name, regs in {
            "none": (),
            "weights": (pxc.WeightDecay(WD), pxc.SpectralPenalty(SP)),
            "acts": (pxc.ActivityDecay(AD),),
        }.items():
            model, x, _ = _setup(regs)
            inference.run(model, x)
            results[name] = [v.h.value for v in model.vodes[:-1]]
        for a, b in zip(results["none"], results["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        assert sum(float(jnp.sum(h**2)) for h in results["acts"]) < sum(float(jnp.sum(h**2)) for h in results["none"])


def test_discrete_inference_descends_the_regularised_energy():
    """Per sample: z <- z - eta * (dE_i/dz + AD * z), checked against gradient descent on the hand-written energy."""
    with x64():
        model, x, y = _setup((pxc.ActivityDecay(AD),))
        ws, hs = weights(model), [v.h.value for v in model.vodes[:-1]]
        pxi.DiscreteInference(step_size=0.1, steps=5).run(model, x)
        for _ in range(5):
            g = jax.grad(lambda hs: x.shape[0] * hand_regularised(ws, hs, x, y, ad=AD))(hs)  # per-sample gradients
            hs = [h - 0.1 * gh for h, gh in zip(hs, g)]
        for vode, h in zip(model.vodes[:-1], hs):
            np.testing.assert_allclose(vode.h.value, h, rtol=1e-10)


def test_weight_decay_reaches_the_packaged_step():
    with x64():
        updated = {}
        for name, regs in {"plain": (), "decayed": (pxc.WeightDecay(WD),)}.items():
            model, x, y = _setup(regs)
            before = weights(model)
            optim = pxu.Optim(optax.sgd(1.0), pxu.Mask(pxnn.LayerParam)(model))
            pxi.train_supervised(model, optim, x, y, inference=pxi.DiscreteInference(step_size=0.1, steps=4))
            updated[name] = weights(model)
        for (wp, bp), (wd, bd), (w0, _) in zip(updated["plain"], updated["decayed"], before):
            np.testing.assert_allclose(wp - wd, WD * w0, rtol=1e-9)  # SGD(1): the extra step is WD * W
            np.testing.assert_allclose(bp, bd, rtol=1e-12)


def test_conv_kernels_are_regularised_as_matrices():
    with x64():
        model = ResidualPCConvNet(2, 3, 3, 4, image_size=4, parametrisation=MuPC())
        model.regularisers = (pxc.WeightDecay(WD), pxc.SpectralPenalty(SP))
        mats = [c.nn.weight.value.reshape(c.nn.weight.value.shape[0], -1) for c in model.convs]
        mats.append(model.head.nn.weight.value)
        expected = sum(
            0.5 * WD * jnp.sum(w**2) + 0.5 * SP * jnp.sum((w.T @ w - jnp.eye(w.shape[1])) ** 2) for w in mats
        )
        np.testing.assert_allclose(model.regularisation(), expected, rtol=1e-12)
        assert len(pxc.weight_matrices(model)) == 3


def test_changed_regularisers_recompile():
    """A compiled step must not keep the old coefficient: regularisers are part of the compiled structure."""
    model, x, _ = _setup((pxc.ActivityDecay(0.1),), dtype=jnp.float32)
    start = [v.h.value for v in model.vodes[:-1]]
    pxi.DiscreteInference(step_size=0.2, steps=4).run(model, x)
    small = [v.h.value for v in model.vodes[:-1]]
    for vode, h in zip(model.vodes[:-1], start):
        vode.h.value = h
    model.regularisers = (pxc.ActivityDecay(2.0),)
    pxi.DiscreteInference(step_size=0.2, steps=4).run(model, x)
    assert not np.allclose(small[0], model.vodes[0].h.value)


def test_hand_written_loops_see_the_regularisation():
    """``model.energy()`` in a user's own vmapped energy (the README's loop) includes the regularisers."""

    @pxf.vmap(pxi.BATCHED, in_axes=(0,), out_axes=None, axis_name="batch")
    def energy(x, *, model):
        model(x)
        return jax.lax.pmean(model.energy(), "batch")

    with x64():
        model, x, y = _setup((pxc.WeightDecay(WD), pxc.ActivityDecay(AD)))
        hs = [v.h.value for v in model.vodes[:-1]]
        expected = hand_regularised(weights(model), hs, x, y, WD, 0, AD)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            np.testing.assert_allclose(energy(x, model=model), expected, rtol=1e-10)


def test_bad_regularisers():
    with pytest.raises(ValueError, match="non-negative"):
        pxc.WeightDecay(-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        pxc.ActivityDecay("0.1")
    with pytest.raises(TypeError, match="WeightDecay"):
        PCMLP(SIZES).regularisers = ("weight_decay",)
    model = PCMLP(SIZES)
    model.regularisers = pxc.SpectralPenalty(0.1)  # one regulariser is taken as a tuple of one
    assert model.regularisers == (pxc.SpectralPenalty(0.1),)


def test_weight_terms_apply_to_the_parameters_their_filter_selects():
    model = PCMLP([4, 6, 5, 3])
    first = model.layers[0].nn.weight
    first.decay = True
    chosen = pxu.m(pxnn.LayerParam).has(decay=True)
    w0 = np.asarray(first.value)
    np.testing.assert_allclose(pxc.WeightDecay(0.3, chosen)(model), 0.15 * np.sum(w0**2), rtol=1e-6)
    np.testing.assert_allclose(
        pxc.SpectralPenalty(0.2, chosen)(model), 0.1 * np.sum((w0.T @ w0 - np.eye(4)) ** 2), rtol=1e-5
    )
    everything = sum(np.sum(np.asarray(l.nn.weight.value) ** 2) for l in model.layers)
    np.testing.assert_allclose(pxc.WeightDecay(0.3)(model), 0.15 * everything, rtol=1e-6)


def jpc_pdm_spectral_penalty(forward_weights, spectral_penalty):
    """JPC's predictive-dendrites penalty (``pdm_energy_fn``), as its source computes it.

    On the forward weights of the hidden layers (not the output layer's): the smaller
    Gram matrix, $\\lVert W^\\top W - I\\rVert^2$ when out >= in, else $\\lVert W W^\\top - I\\rVert^2$,
    times the coefficient (no factor 1/2).
    """
    total = 0.0
    for w in forward_weights:
        out_dim, in_dim = w.shape
        gram = w.T @ w if out_dim >= in_dim else w @ w.T
        total += jnp.sum((gram - jnp.eye(gram.shape[0])) ** 2)
    return spectral_penalty * total


def test_spectral_penalty_has_the_gradients_of_jpcs_dendrites_penalty():
    """``SpectralPenalty(2 lambda)`` on the hidden forward weights: JPC's PDM gradients, its value + lambda sum(in - out)."""
    from pcframe.models import BidirectionalPCMLP

    with x64():
        px.RKG.seed(0)
        sizes, lam = [6, 4, 7, 3], 0.05  # a wide first layer (out < in: JPC takes W W^T) and a tall second one
        model = BidirectionalPCMLP(sizes, dendrites=True)
        x = jax.random.normal(jax.random.PRNGKey(0), (5, sizes[0]), jnp.float64)
        y = jax.nn.one_hot(jnp.arange(5) % 3, 3, dtype=jnp.float64)
        pxi.init_forward(model, x, y)
        for layer in model.layers[:-1]:
            layer.nn.weight.spectral = True
        hidden_forward = [layer.nn.weight.value for layer in model.layers[:-1]]
        plain_energy, _ = pxi.batch_energy(model, x)
        _, plain = pxi.param_grad(model, x)
        model.regularisers = (pxc.SpectralPenalty(2 * lam, pxu.m(pxnn.LayerParam).has(spectral=True)),)
        energy, _ = pxi.batch_energy(model, x)
        _, penalised = pxi.param_grad(model, x)

        jpc_value = jpc_pdm_spectral_penalty(hidden_forward, lam)
        constant = lam * sum(max(0, w.shape[1] - w.shape[0]) for w in hidden_forward)
        assert constant == pytest.approx(2 * lam)
        np.testing.assert_allclose(energy - plain_energy, jpc_value + constant, rtol=1e-12)
        jpc_grads = jax.grad(jpc_pdm_spectral_penalty)(hidden_forward, lam)
        for i, expected in enumerate(jpc_grads):
            got = penalised.layers[i].nn.weight.value - plain.layers[i].nn.weight.value
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        unchanged = [penalised.layers[-1].nn.weight.value, *(l.nn.weight.value for l in penalised.generative_layers)]
        expected_unchanged = [plain.layers[-1].nn.weight.value, *(l.nn.weight.value for l in plain.generative_layers)]
        for got, expected in zip(unchanged, expected_unchanged):
            np.testing.assert_array_equal(got, expected)
