"""Training steps: supervised, unsupervised, hybrid, incremental, nudging, non-finite guard."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import weights

DIGITS, LABELS = load_digits(return_X_y=True)
X = jnp.asarray(DIGITS[:64] / 16.0, dtype=jnp.float32)
Y = jax.nn.one_hot(LABELS[:64], 10)


def _optim(model, lr=1e-3):
    return pxu.Optim(optax.adam(lr), pxu.Mask(pxnn.LayerParam)(model))


def test_supervised_step_updates_weights_and_reports_metrics():
    model = PCMLP([64, 32, 10])
    optim_w = _optim(model)
    before = weights(model)
    inference = pxi.DiscreteInference(optax.sgd(0.1), 10)
    out = pxi.train_supervised(
        model, optim_w, X[:32], Y[:32], inference=inference, metrics=pxi.Metrics(True, True, True, True)
    )
    assert bool(out["finite"]) and int(out["steps"]) == 10
    assert float(out["energy"]) < float(out["loss"]), "inference lowers the energy below the feedforward loss"
    assert out["energies"].shape == (2,) and out["grad_norms"].shape == (4,) and out["activity_norms"].shape == (1,)
    assert 0.0 <= float(out["accuracy"]) <= 1.0
    assert not np.allclose(before[0][0], weights(model)[0][0])


def test_supervised_training_learns_digits():
    model = PCMLP([64, 64, 10])
    optim_w = _optim(model, 3e-3)
    inference = pxi.DiscreteInference(optax.sgd(0.1), 20)
    x, y = jnp.asarray(DIGITS / 16.0, dtype=jnp.float32), jax.nn.one_hot(LABELS, 10)
    for _ in range(4):
        for i in range(0, 1400, 32):
            pxi.train_supervised(model, optim_w, x[i : i + 32], y[i : i + 32], inference=inference)
    assert float(pxi.evaluate_accuracy(model, x[1400:], y[1400:])) > 0.75


def test_generative_model_energy_decreases():
    decoder = PCMLP([8, 32, 64], free_input=True)
    optim_w = _optim(decoder, 3e-3)
    inference = pxi.ODEInference(max_t1=20.0)
    energies = [
        float(pxi.train_unsupervised(decoder, optim_w, X[:32], inference=inference)["energy"]) for _ in range(40)
    ]
    assert np.mean(energies[-5:]) < 0.6 * np.mean(energies[:5])
    latents, reconstructions = pxi.infer_input(decoder, X[:8], inference=inference)
    assert latents.shape == (8, 8) and reconstructions.shape == (8, 64)


def test_hybrid_model_energies_decrease():
    generator = PCMLP([10, 32, 64], free_input=True)
    amortiser = PCMLP([64, 32, 10])
    optim_g, optim_a = _optim(generator, 3e-3), _optim(amortiser, 3e-3)
    inference = pxi.DiscreteInference(optax.sgd(0.1), 20)
    history = [pxi.train_hybrid(generator, amortiser, optim_g, optim_a, X[:32], inference=inference) for _ in range(40)]
    first, last = history[0], history[-1]
    assert float(last["energy"]) < 0.6 * float(first["energy"])
    assert float(last["amortiser_energy"]) < 0.6 * float(first["amortiser_energy"])
    assert all(float(h["energy"]) <= float(h["amortised_energy"]) + 1e-5 for h in history), (
        "inference refines the guess"
    )


def test_every_step_reports_recorded_traces_under_the_same_names():
    """A recording strategy's traces come back as inference_energies in supervised and hybrid steps alike,
    and ``energies`` stays the per-node energy after inference."""
    inference = pxi.DiscreteInference(step_size=0.1, steps=5, record_energies=True)
    model = PCMLP([64, 32, 10])
    supervised = pxi.train_supervised(model, _optim(model), X[:8], Y[:8], inference=inference)
    generator, amortiser = PCMLP([10, 32, 64], free_input=True), PCMLP([64, 32, 10])
    hybrid = pxi.train_hybrid(generator, amortiser, _optim(generator), _optim(amortiser), X[:8], inference=inference)
    for out, nodes in ((supervised, 2), (hybrid, 3)):
        assert out["inference_energies"].shape == (5, nodes)
        assert out["energies"].shape == (nodes,)
        np.testing.assert_allclose(out["energies"].sum(), out["energy"], rtol=1e-5)


def test_hybrid_checks_the_pair():
    generator, amortiser = PCMLP([10, 32, 64], free_input=True), PCMLP([64, 16, 10])
    with pytest.raises(ValueError, match="sizes must be the generator's reversed"):
        pxi.train_hybrid(
            generator,
            amortiser,
            _optim(generator),
            _optim(amortiser),
            X[:4],
            inference=pxi.DiscreteInference(optax.sgd(0.1), 2),
        )


def test_incremental_pc_learns():
    model = PCMLP([64, 32, 10])
    optim_w = _optim(model, 1e-3)
    inference = pxi.DiscreteInference(step_size=0.1, steps=10)
    metrics = pxi.Metrics(accuracy=True, grad_norms=True)
    first = pxi.train_incremental(model, optim_w, X[:32], Y[:32], inference=inference, metrics=metrics)
    for _ in range(20):
        last = pxi.train_incremental(model, optim_w, X[:32], Y[:32], inference=inference, metrics=metrics)
    assert float(last["loss"]) < 0.5 * float(first["loss"])
    assert first["inference_energies"].shape == (10,)
    assert {"loss", "energy", "energies", "steps", "finite", "accuracy", "grad_norms"} <= set(last)
    assert len(last["grad_norms"]) == 4 and bool(last["finite"])


def test_incremental_step_equals_hand_written_joint_updates():
    """Each joint step: z -= eta * dF_i/dz_i (per sample), theta -= lr * dF/dtheta (batch mean), T times."""
    from tests.conftest import hand_energy

    model = PCMLP([64, 16, 10])
    optim_w = pxu.Optim(optax.sgd(0.05), pxu.Mask(pxnn.LayerParam)(model))
    ws = weights(model)
    x, y = X[:8], Y[:8]
    h = [jnp.tanh(x @ ws[0][0].T + ws[0][1])]
    for _ in range(3):
        gw, gh = jax.grad(lambda ws, h: hand_energy(ws, h, x, y), argnums=(0, 1))(ws, h)
        h = [a - 0.2 * 8 * g for a, g in zip(h, gh)]
        ws = [(w - 0.05 * dw, b - 0.05 * db) for (w, b), (dw, db) in zip(ws, gw)]
    out = pxi.train_incremental(
        model,
        optim_w,
        x,
        y,
        inference=pxi.DiscreteInference(step_size=0.2, steps=3),
        metrics=pxi.Metrics(grad_norms=True),
    )
    last_grads = [g for pair in gw for g in pair]  # the third step's weight gradients: what grad_norms reports
    np.testing.assert_allclose(out["grad_norms"], [jnp.linalg.norm(g) for g in last_grads], rtol=1e-4)
    for (w, b), (w_ref, b_ref) in zip(weights(model), ws):
        np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.vodes[0].h.value, h[0], rtol=1e-4, atol=1e-6)


def _backprop_grads(model, x, y):
    def loss(ws):
        z = x
        for i, (w, b) in enumerate(ws):
            z = z @ w.T + b
            z = z if i == len(ws) - 1 else jnp.tanh(z)
        return 0.5 * jnp.sum((y - z) ** 2) / x.shape[0]

    return jax.grad(loss)(weights(model))


@pytest.mark.parametrize("centred", [False, True])
def test_nudging_with_small_beta_approaches_backprop(centred):
    model = PCMLP([5, 8, 8, 3])
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 5))
    y = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
    expected = _backprop_grads(model, x, y)
    before = weights(model)
    optim_w = pxu.Optim(optax.sgd(1.0), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.ODEInference(stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6), max_t1=5000.0)
    pxi.train_supervised(model, optim_w, x, y, inference=inference, nudging=pxi.Nudging(1e-3, centred=centred))
    pc = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(weights(model), before)]
    flat_pc = jnp.concatenate([jnp.ravel(a) for pair in pc for a in pair])
    flat_bp = jnp.concatenate([jnp.ravel(a) for pair in expected for a in pair])
    cosine = jnp.dot(flat_pc, flat_bp) / (jnp.linalg.norm(flat_pc) * jnp.linalg.norm(flat_bp))
    assert float(cosine) > 0.99


def test_non_finite_energy_leaves_weights_unchanged_and_is_flagged():
    model = PCMLP([64, 16, 10])
    optim_w = _optim(model)
    before = weights(model)
    bad = X[:8].at[0, 0].set(jnp.nan)
    out = pxi.train_supervised(model, optim_w, bad, Y[:8], inference=pxi.DiscreteInference(optax.sgd(0.1), 3))
    assert not bool(out["finite"])
    for (w0, b0), (w1, b1) in zip(before, weights(model)):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


def test_bad_arguments_are_clear_errors():
    model = PCMLP([64, 16, 10])
    optim_w = _optim(model)
    inference = pxi.DiscreteInference(optax.sgd(0.1), 3)
    with pytest.raises(TypeError, match="inference must be a pcframe.inference.AbstractInference"):
        pxi.train_supervised(model, optim_w, X[:4], Y[:4], inference="ode")
    with pytest.raises(TypeError, match="optim_w must be a pcframe.utils.Optim"):
        pxi.train_supervised(model, optax.adam(1e-3), X[:4], Y[:4], inference=inference)
    with pytest.raises(ValueError, match="needs both an input batch x and a target batch y"):
        pxi.train_supervised(model, optim_w, None, Y[:4], inference=inference)
    with pytest.raises(ValueError, match="sigma must be a non-negative number"):
        pxi.train_unsupervised(PCMLP([4, 8], free_input=True), optim_w, Y[:4], inference=inference, sigma=-1.0)
    with pytest.raises(ValueError, match="free input layer"):
        pxi.infer_input(model, Y[:4], inference=inference)
    with pytest.raises(TypeError, match="Nudging"):
        pxi.train_supervised(model, optim_w, X[:4], Y[:4], inference=inference, nudging=0.1)


@pytest.mark.parametrize("step", ["supervised", "incremental"])
def test_default_metrics_can_be_switched_off(step):
    model = PCMLP([64, 32, 10])
    optim_w = _optim(model)
    lean = pxi.Metrics(loss=False, energies=False)
    inference = pxi.DiscreteInference(step_size=0.1, steps=4)
    train = pxi.train_supervised if step == "supervised" else pxi.train_incremental
    full = train(model, optim_w, X[:16], Y[:16], inference=inference)
    out = train(model, optim_w, X[:16], Y[:16], inference=inference, metrics=lean)
    assert {"loss", "energies"} <= set(full) and not {"loss", "energies"} & set(out)
    assert {"energy", "steps", "finite"} <= set(out)


def test_hybrid_check_finite_names_the_node_and_changes_nothing():
    generator = PCMLP([10, 32, 64], free_input=True)
    amortiser = PCMLP([64, 32, 10])
    optim_g, optim_a = _optim(generator), _optim(amortiser)
    inference = pxi.DiscreteInference(step_size=0.1, steps=4)
    out = pxi.train_hybrid(generator, amortiser, optim_g, optim_a, X[:8], inference=inference, check_finite=True)
    assert bool(out["finite"]) and "nonfinite" not in out
    before = weights(generator)
    with pytest.raises(FloatingPointError, match=r"train_hybrid: the energy of the node vodes\[\d\] is NaN or inf"):
        pxi.train_hybrid(
            generator, amortiser, optim_g, optim_a, X[:8].at[0, 0].set(jnp.nan), inference=inference, check_finite=True
        )
    for after, start in zip(weights(generator), before):
        np.testing.assert_array_equal(after[0], start[0])
        np.testing.assert_array_equal(after[1], start[1])


def test_accuracy_of_one_output_unit_is_refused_with_how_to_get_a_binary_accuracy():
    """The argmax over one column is always 0: every prediction would count as right."""
    x, labels = X[:16], (LABELS[:16] % 2).astype(np.float32)[:, None]
    model = PCMLP([64, 8, 1])
    inference = pxi.DiscreteInference(optax.sgd(0.1), 3)
    message = r"output has shape \(16, 1\).*two output units.*\(\(predict\(model, x\) > threshold\) == y\)\.mean\(\)"
    with pytest.raises(ValueError, match=message):
        pxi.train_supervised(model, _optim(model), x, labels, inference=inference, metrics=pxi.Metrics(accuracy=True))
    with pytest.raises(ValueError, match=message):
        pxi.evaluate_accuracy(model, x, labels)
    two = PCMLP([64, 8, 2])
    y = jax.nn.one_hot(LABELS[:16] % 2, 2)
    out = pxi.train_supervised(two, _optim(two), x, y, inference=inference, metrics=pxi.Metrics(accuracy=True))
    assert 0.0 <= float(out["accuracy"]) <= 1.0
    assert float(pxi.evaluate_accuracy(two, x, y)) == pytest.approx(
        float(np.mean(np.argmax(pxi.predict(two, x), -1) == LABELS[:16] % 2))
    )
