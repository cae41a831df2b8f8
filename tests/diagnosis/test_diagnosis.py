"""`pcframe.diagnosis.diagnose`: every finding on a deliberately broken set-up, its number checked against a value
computed here independently (the energies by hand with jax.numpy, the weight changes from the library's own
training step), no finding on the healthy models the tutorials train, and the model, optimiser and RKG left
bit-identical.

Set-ups (two-moons-like data made with NumPy, batches of 128): a PCMLP [2, 32, 32, 2] with a cross-entropy
output trained one epoch as in tutorial 00 (healthy; step 3.0 diverges, step 0.002 has not converged, a NaN
weight, all-zero targets, a layer shrunk by 1e-4); a plain 8-layer tanh PCMLP trained with SGD (errors vanish
with depth, first layers frozen); a μPC ResidualPCMLP as in tutorial 08 (healthy at a per-sample inference step).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.diagnosis import Finding, Report, Thresholds, diagnose
from pcframe.models import PCMLP, MuPC, ResidualPCMLP

STEP, STEPS = 0.3, 8  # tutorial 00's inference: 8 steps of 0.32 per sample


def moons(n, seed=0):
    """Two interleaved half circles with noise (as sklearn's make_moons), one-hot labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    angle = rng.uniform(0, np.pi, n)
    x = np.stack([np.cos(angle), np.sin(angle)], 1)
    x[labels == 1] = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1)[labels == 1]
    x = x + 0.15 * rng.normal(size=x.shape)
    return x.astype(np.float32), np.asarray(jax.nn.one_hot(labels, 2))


X, Y = moons(1024)
x, y = X[:128], Y[:128]


@pytest.fixture(scope="module")
def trained():
    """The tutorial-00 network after one epoch: (model, optim_w, inference)."""
    px.RKG.seed(0)
    model = PCMLP([2, 32, 32, 2], act_fn=jax.nn.leaky_relu, output_energy=pxc.ce_energy)
    optim_w = pxu.Optim(optax.adamw(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.DiscreteInference(step_size=STEP, steps=STEPS)
    for i in range(0, len(X), 64):
        pxi.train_supervised(model, optim_w, X[i : i + 64], Y[i : i + 64], inference=inference)
    return model, optim_w, inference


@pytest.fixture(scope="module")
def deep():
    """A plain 8-layer tanh network with SGD: the first layers' errors vanish."""
    px.RKG.seed(0)
    model = PCMLP([2] + [16] * 7 + [2], act_fn=jnp.tanh, output_energy=pxc.ce_energy)
    optim_w = pxu.Optim(optax.sgd(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    return model, optim_w, pxi.DiscreteInference(step_size=0.1, steps=20)


# --- independent references --------------------------------------------------------------------------


def hand_layers(ws, hidden, x, y, act_fn):
    """Per-layer batch-mean energies of a PCMLP [(W, b), ...] written from the formula, and each sample's total."""
    zs = [x, *hidden, y]
    per_layer, per_sample = [], 0.0
    for i, (w, b) in enumerate(ws):
        u = zs[i] @ w.T + b
        if i < len(ws) - 1:
            e = 0.5 * jnp.sum((zs[i + 1] - act_fn(u)) ** 2, axis=1)
        else:
            e = -jnp.sum(zs[i + 1] * jax.nn.log_softmax(u), axis=1)
        per_layer.append(jnp.mean(e))
        per_sample = per_sample + e
    return jnp.stack(per_layer), per_sample


def hand_inference(model, x, y, act_fn, step, steps):
    """Gradient descent on each sample's energy, z <- z - step dF_i/dz, from the feedforward pass, by hand.

    **Returns:** the per-layer energies at every step, shape (steps + 1, layers).
    """
    weights = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]
    return np.asarray(_hand_trace(weights, x, y, act_fn, step, steps), np.float64)


@functools.partial(jax.jit, static_argnums=(3, 5))
def _hand_trace(weights, x, y, act_fn, step, steps):
    hidden, z = [], x
    for w, b in weights[:-1]:
        z = act_fn(z @ w.T + b)
        hidden.append(z)

    def total(hs):
        return jnp.sum(hand_layers(weights, hs, x, y, act_fn)[1])

    def update(hs, _):
        return [h - step * g for h, g in zip(hs, jax.grad(total)(hs))], hand_layers(weights, hs, x, y, act_fn)[0]

    hidden, trace = jax.lax.scan(update, hidden, None, steps)
    return jnp.concatenate([trace, hand_layers(weights, hidden, x, y, act_fn)[0][None]])


def relative_changes(model, optim_w, x, y, inference, steps=3):
    """||dW||/||W|| of each layer after `steps` train_supervised calls (the model and optimiser restored after)."""
    params = list(model.parameters(pxnn.LayerParam)) + [optim_w.state]
    saved = [p.value for p in params]
    before = [[layer.nn.weight.value, layer.nn.bias.value] for layer in model.layers]
    for _ in range(steps):
        pxi.train_supervised(model, optim_w, x, y, inference=inference)
    after = [[layer.nn.weight.value, layer.nn.bias.value] for layer in model.layers]
    for p, v in zip(params, saved):
        p.value = v

    def norm(arrays):
        return math.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays))

    return np.array([norm([a - b for a, b in zip(new, old)]) / norm(old) for new, old in zip(after, before)])


def state_of(*objects):
    """Every parameter value of the objects and of RKG, as host arrays (keys as their data), by path."""
    structure, _ = px.split({f"o{i}": o for i, o in enumerate(objects)}, implicit=(px.RKG,))
    state = []
    for path, param in zip(structure.paths, structure.params):
        leaves = jax.tree_util.tree_leaves(param.value)
        state.append((path, None if param.value is None else [np.asarray(host(leaf)) for leaf in leaves]))
    return state


def host(leaf):
    """A key array as its data, any other array as it is."""
    return jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf


def assert_identical(a, b):
    assert [p for p, _ in a] == [p for p, _ in b]
    for (path, u), (_, v) in zip(a, b):
        if u is None or v is None:
            assert u is None and v is None, path
            continue
        assert len(u) == len(v), path
        for a, b in zip(u, v):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), path


# --- healthy ------------------------------------------------------------------------------------------


def test_healthy_tutorial_network_has_no_findings(trained):
    model, optim_w, inference = trained
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    assert isinstance(report, Report) and report.healthy and len(report) == 0 and report.findings == ()
    assert "no findings" in str(report) and str(report) == report.text()
    assert report.measurements.weight_steps == 3 and len(report.measurements.layers) == 3
    assert diagnose(model, x, y, inference=inference).healthy  # without an optimiser: the relative gradients
    # the recorded trace is the library's own inference, equal to gradient descent written by hand
    hand = hand_inference(model, x, y, jax.nn.leaky_relu, STEP, STEPS)
    np.testing.assert_allclose(report.measurements.trace, hand, rtol=2e-4, atol=1e-6)


def test_healthy_mupc_network_has_no_findings():
    px.RKG.seed(0)
    model = ResidualPCMLP(2, 32, 4, 2, act_fn="relu", parametrisation=MuPC())
    optim_w = pxu.Optim(optax.adam(1e-1), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.DiscreteInference(step_size=0.5, steps=4)
    for i in range(0, 512, 64):
        pxi.train_supervised(model, optim_w, X[i : i + 64], Y[i : i + 64], inference=inference)
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    assert report.healthy, str(report)


# --- leaves everything as it was ------------------------------------------------------------------------


def test_model_optimiser_and_rkg_are_left_bit_identical(trained):
    model, optim_w, inference = trained
    pxi.init_forward(model, X[:64], Y[:64])  # activities of another batch size than the diagnosis's
    px.RKG.seed(7)
    before = state_of(model, optim_w)
    key_before = np.asarray(host(px.RKG.key.value))
    first = diagnose(model, x, y, inference=pxi.DiscreteInference(step_size=3.0, steps=STEPS), optim_w=optim_w)
    second = diagnose(model, x, y, inference=pxi.DiscreteInference(step_size=3.0, steps=STEPS), optim_w=optim_w)
    assert_identical(before, state_of(model, optim_w))
    assert np.asarray(host(px.RKG.key.value)).tobytes() == key_before.tobytes()
    assert first.findings == second.findings and first.kinds == ("inference_diverging",)
    np.testing.assert_array_equal(first.measurements.trace, second.measurements.trace)
    model.clear_params(pxc.VodeParam)  # activities None: restored as None
    before = state_of(model, optim_w)
    diagnose(model, x, y, inference=inference, optim_w=optim_w)
    assert_identical(before, state_of(model, optim_w))


# --- one broken set-up per finding ----------------------------------------------------------------------


def test_step_too_large_diverges(trained):
    model, optim_w, _ = trained
    report = diagnose(model, x, y, inference=pxi.DiscreteInference(step_size=3.0, steps=STEPS), optim_w=optim_w)
    assert report.kinds == ("inference_diverging",)
    total = hand_inference(model, x, y, jax.nn.leaky_relu, 3.0, STEPS).sum(axis=1)
    expected = (total[-1] - total.min()) / total[0]
    (finding,) = report.findings
    assert expected > 1 and finding.value == pytest.approx(expected, rel=1e-3)
    assert finding.threshold == Thresholds().rising and finding.above and finding.layer is None
    assert "step size" in finding.advice and finding.advice.rstrip(".").count(". ") == 0  # one sentence


def test_step_too_small_has_not_converged(trained):
    model, optim_w, _ = trained
    report = diagnose(model, x, y, inference=pxi.DiscreteInference(step_size=0.05, steps=STEPS), optim_w=optim_w)
    assert report.kinds == ("inference_not_converged",)
    total = hand_inference(model, x, y, jax.nn.leaky_relu, 0.05, STEPS).sum(axis=1)
    expected = (1 - total[-1] / total[-2]) / (1 - total[1] / total[0])  # w = ceil(0.1 * 8) = 1 step
    (finding,) = report.findings
    assert expected > 0.5 and finding.value == pytest.approx(expected, rel=1e-3)
    assert "more steps" in finding.advice


def test_vanishing_errors_and_frozen_layers_in_a_deep_plain_network(deep):
    model, optim_w, inference = deep
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    assert report.kinds == ("errors_imbalanced", "weights_frozen")
    imbalance, frozen = report.findings
    energies = hand_inference(model, x, y, jnp.tanh, 0.1, 20)[-1]
    span = math.log10(energies.max() / max(energies.min(), 1e-30))
    assert span > 8 and imbalance.value == pytest.approx(span, rel=1e-2)
    assert imbalance.layer == f"vodes[{int(np.argmin(energies))}]" == "vodes[0]"
    change = relative_changes(model, optim_w, x, y, inference)
    ratios = change / change.max()
    expected = [f"layers[{i}]" for i in np.flatnonzero(ratios < 0.01)]
    assert expected[0] == "layers[0]" and "layers[7]" not in expected
    assert frozen.layer == ", ".join(expected)
    assert frozen.value == pytest.approx(ratios.min(), rel=1e-3, abs=1e-12) and not frozen.above
    np.testing.assert_allclose(report.measurements.weight_change, change, rtol=1e-3, atol=1e-30)


def test_a_layer_far_smaller_than_the_others_runs_away(trained):
    model, optim_w, inference = trained
    layer = model.layers[1].nn
    saved = layer.weight.value, layer.bias.value
    try:
        layer.weight.value, layer.bias.value = saved[0] * 1e-4, saved[1] * 1e-4
        report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
        change = relative_changes(model, optim_w, x, y, inference)
    finally:
        layer.weight.value, layer.bias.value = saved
    runaway = [f for f in report.findings if f.kind == "weights_runaway"]
    assert len(runaway) == 1 and runaway[0].layer == "layers[1]"
    largest, second = np.sort(change)[::-1][:2]
    assert runaway[0].value == pytest.approx(largest / second, rel=1e-2) and runaway[0].value > 100


def test_targets_the_output_never_sees(trained):
    model, optim_w, inference = trained
    zeros = np.zeros_like(y)  # e.g. one_hot(labels, 2) of labels 1..2: rows of zeros, cross-entropy 0
    report = diagnose(model, x, zeros, inference=inference, optim_w=optim_w)
    assert "output_energy_vanishes" in report.kinds
    (finding,) = [f for f in report.findings if f.kind == "output_energy_vanishes"]
    logits = np.asarray(pxi.predict(model, x))
    assert finding.value == 0.0 and finding.layer == "vodes[2]" and not finding.above
    assert report.measurements.accuracy == pytest.approx(float(np.mean(logits.argmax(1) == 0)))
    assert report.measurements.accuracy < 0.9


def test_nan_weight_names_the_first_node(trained):
    model, optim_w, inference = trained
    weight = model.layers[1].nn.weight
    saved = weight.value
    try:
        weight.value = saved.at[3, 4].set(jnp.nan)
        report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    finally:
        weight.value = saved
    (finding,) = report.findings
    assert finding.kind == "nonfinite" and finding.layer == "vodes[1]" and math.isnan(finding.value)
    assert "feedforward" in finding.quantity and "not finite" in str(finding)


def test_weight_step_that_overflows_is_named(trained):
    model, _, inference = trained
    optim_w = pxu.Optim(optax.sgd(1e37), pxu.Mask(pxnn.LayerParam)(model))
    before = state_of(model)
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    assert_identical(before, state_of(model))
    finding = report.findings[0]
    assert finding.kind == "nonfinite" and "weight step" in finding.quantity
    assert "learning rate" in finding.advice


# --- other strategies, rendering, arguments ----------------------------------------------------------------


class Descent(pxi.AbstractInference):
    """A strategy of the user's own, which cannot record: run, then continued."""

    step_size: float = 0.05
    steps: int = 8

    def solve(self, energy):
        def body(_, z):
            _, g = energy.value_and_grad(z)
            return [a - self.step_size * b for a, b in zip(z, g)]

        return jax.lax.fori_loop(0, self.steps, body, energy.initial()), {"steps": jnp.asarray(self.steps)}


def test_a_strategy_that_cannot_record_is_run_again(trained):
    model, optim_w, _ = trained
    report = diagnose(model, x, y, inference=Descent(), optim_w=optim_w)
    assert report.measurements.trace_kind == "continued" and report.measurements.trace.shape == (3, 3)
    total = hand_inference(model, x, y, jax.nn.leaky_relu, 0.05, 16).sum(axis=1)
    np.testing.assert_allclose(report.measurements.trace.sum(axis=1), total[[0, 8, 16]], rtol=1e-4)
    assert report.kinds == ("inference_not_converged",)
    expected = (1 - total[16] / total[8]) / (1 - total[8] / total[0])
    assert report.findings[0].value == pytest.approx(expected, rel=1e-3)


def test_ode_inference_is_recorded_per_accepted_step(trained):
    diffrax = pytest.importorskip("diffrax")
    model, optim_w, _ = trained
    ode = pxi.ODEInference(solver=diffrax.Euler(), dt=0.2, max_t1=4.0, max_steps=32, steady_state=False)
    report = diagnose(model, x, y, inference=ode, optim_w=optim_w)
    # Euler steps of 0.2 on each sample's energy are gradient descent of step 0.2: 20 accepted steps
    hand = hand_inference(model, x, y, jax.nn.leaky_relu, 0.2, 20)
    assert report.measurements.trace.shape == (21, 3)
    np.testing.assert_allclose(report.measurements.trace, hand, rtol=2e-4, atol=1e-6)
    assert report.healthy, str(report)


def test_text_and_figure(deep):
    model, optim_w, inference = deep
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    text = str(report)
    assert "2 findings" in text and all(f.text() in text for f in report.findings)
    finding = report.findings[0]
    assert isinstance(finding, Finding) and f"{finding.value:.3g} > 8" in finding.text()
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = report.figure()
    assert len(figure.axes) == 3 and "errors_imbalanced" in figure._suptitle.get_text()
    _, axes = plt.subplots(1, 3)
    assert report.plot(axes) is axes[0].figure
    plt.close("all")


def test_figure_without_matplotlib_says_how_to_install(trained, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    model, optim_w, inference = trained
    report = diagnose(model, x, y, inference=inference, optim_w=optim_w)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "pcframe\[plots\]"'):
        report.figure()


def test_arguments_are_checked(trained):
    model, optim_w, inference = trained
    with pytest.raises(TypeError, match="inference"):
        diagnose(model, x, y, inference="discrete", optim_w=optim_w)
    with pytest.raises(TypeError, match="optim_w"):
        diagnose(model, x, y, inference=inference, optim_w=optax.adam(1e-3))
    with pytest.raises(ValueError, match="steps"):
        diagnose(model, x, y, inference=inference, steps=0)
    with pytest.raises(ValueError, match="target"):
        diagnose(model, x, None, inference=inference)


# --- the docstring conventions of tests/test_docstrings.py, applied to pcframe.diagnosis ---------------------


def test_public_names_are_documented():
    import inspect

    import pcframe.diagnosis as diagnosis
    from tests.test_docstrings import own_methods, takes_arguments

    for name in diagnosis.__all__:
        obj = getattr(diagnosis, name)
        doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
        assert doc and doc.strip(), name
        if takes_arguments(obj):
            assert "**Arguments:**" in doc, name
        if inspect.isclass(obj):
            assert all((fn.__doc__ or "").strip() for _, fn in own_methods(obj)), name


def test_the_advice_for_imbalanced_errors_is_followed_by_epc():
    """ePC, which the errors_imbalanced advice names, clears that finding on a deep plain tanh network."""
    x = jax.random.normal(jax.random.PRNGKey(0), (128, 2))
    y = jax.nn.one_hot((x[:, 0] > 0).astype(int), 2)
    reports = []
    for wrap in (lambda strategy: strategy, pxi.ErrorInference):
        px.RKG.seed(0)
        model = PCMLP([2] + [32] * 9 + [2], act_fn=jnp.tanh, output_energy=pxc.ce_energy)
        optim_w = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
        inference = wrap(pxi.DiscreteInference(step_size=0.1, steps=20))
        reports.append(diagnose(model, x, y, inference=inference, optim_w=optim_w))
    plain, epc = reports
    imbalanced = [f for f in plain.findings if f.kind == "errors_imbalanced"]
    assert imbalanced and "pcframe.inference.ErrorInference" in imbalanced[0].advice
    assert len(epc.findings) == 0
