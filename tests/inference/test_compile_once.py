"""Packaged steps and eager inference compile once per batch shape (counted with `jax.monitoring`)."""

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
from tests.inference.compiles import count_compilations

DIGITS, LABELS = load_digits(return_X_y=True)
X = jnp.asarray(DIGITS[:64] / 16.0, dtype=jnp.float32)
Y = jax.nn.one_hot(LABELS[:64], 10)
SGD = pxi.DiscreteInference(step_size=0.1, steps=4)


def _model():
    model = PCMLP([64, 16, 10])
    return model, pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))


def test_repeated_calls_and_evaluation_in_between_compile_nothing_new():
    model, optim = _model()
    pxi.train_supervised(model, optim, X[:32], Y[:32], inference=SGD)
    pxi.evaluate_accuracy(model, X[32:], Y[32:])
    with count_compilations() as compiled:
        for _ in range(3):
            pxi.train_supervised(model, optim, X[:32], Y[:32], inference=SGD)
            pxi.evaluate_accuracy(model, X[32:], Y[32:])
    assert compiled[0] == 0


def test_batch_size_round_trips_compile_each_shape_once():
    model, optim = _model()
    for size in (32, 16):
        pxi.train_supervised(model, optim, X[:size], Y[:size], inference=SGD)
    with count_compilations() as compiled:
        for size in (32, 16, 32, 16):
            pxi.train_supervised(model, optim, X[:size], Y[:size], inference=SGD)
    assert compiled[0] == 0


def test_a_hyperparameter_sweep_and_strategies_rebuilt_every_step_compile_once():
    model, optim = _model()
    pxi.train_supervised(model, optim, X[:32], Y[:32], inference=pxi.DiscreteInference(step_size=0.05, steps=4))
    pxi.train_supervised(model, optim, X[:32], Y[:32], inference=pxi.ODEInference(max_t1=5.0))
    with count_compilations() as compiled:
        for value in (0.1, 0.2, 0.3):
            pxi.train_supervised(
                model, optim, X[:32], Y[:32], inference=pxi.DiscreteInference(step_size=value, steps=4)
            )
            pxi.train_supervised(model, optim, X[:32], Y[:32], inference=pxi.ODEInference(max_t1=10.0 * value))
    assert compiled[0] == 0


def test_eager_run_compiles_once():
    model, _ = _model()
    inference = pxi.ODEInference(max_t1=5.0)
    for _ in range(2):
        pxi.init_forward(model, X[:32], Y[:32])
        inference.run(model, X[:32])
    with count_compilations() as compiled:
        for _ in range(3):
            pxi.init_forward(model, X[:32], Y[:32])
            inference.run(model, X[:32])
    assert compiled[0] == 0


def test_a_sweep_over_the_number_of_steps_given_as_an_array_compiles_once():
    """``steps=jnp.asarray(T)`` is traced: the same activities as the Python-int form, one compilation for all T."""
    model, _ = _model()
    expected = {}
    for steps in (2, 5):
        pxi.init_forward(model, X[:8], Y[:8])
        pxi.DiscreteInference(step_size=0.1, steps=steps).run(model, X[:8])
        expected[steps] = model.vodes[0].h.value
    arrays = {steps: jnp.asarray(steps) for steps in (1, 2, 5)}
    pxi.init_forward(model, X[:8], Y[:8])
    pxi.DiscreteInference(step_size=0.1, steps=arrays[1]).run(model, X[:8])
    traced = {}
    with count_compilations() as compiled:
        for steps in (2, 5):
            pxi.init_forward(model, X[:8], Y[:8])
            pxi.DiscreteInference(step_size=0.1, steps=arrays[steps]).run(model, X[:8])
            traced[steps] = model.vodes[0].h.value
    assert compiled[0] == 0
    for steps in (2, 5):
        assert jnp.allclose(traced[steps], expected[steps], rtol=1e-6, atol=1e-7)
    assert not jnp.allclose(traced[2], traced[5])


def test_eager_inference_and_mode_switches_between_steps_compile_nothing_new():
    """An eager `init_forward` + `run` (a status set and reset outside any jit) or ``eval()`` then ``train()``
    leaves the model with the structure it had, so the next training step is not compiled again."""
    model, optim = _model()
    pxi.train_supervised(model, optim, X[:32], Y[:32], inference=SGD)
    pxi.init_forward(model, X[:32], Y[:32])
    SGD.run(model, X[:32])
    model.eval()
    model.train()
    with count_compilations() as compiled:
        pxi.train_supervised(model, optim, X[:32], Y[:32], inference=SGD)
    assert compiled[0] == 0


def test_evaluate_accuracy_is_one_compiled_call_and_counts_matching_rows():
    """First use on a new test-set shape compiles one program (no eagerly compiled argmax or mean), and the
    result is the fraction of rows whose feedforward argmax (a hand-written forward pass) matches the label."""
    model, _ = _model()
    x, y = X[:40], Y[:40]
    with count_compilations() as compiled:
        got = float(pxi.evaluate_accuracy(model, x, y))
    assert compiled[0] == 1
    hidden = jnp.tanh(x @ model.layers[0].nn.weight.value.T + model.layers[0].nn.bias.value)
    logits = hidden @ model.layers[1].nn.weight.value.T + model.layers[1].nn.bias.value
    assert got == float(np.mean(np.argmax(logits, -1) == LABELS[:40]))


def test_evaluate_accuracy_refuses_integer_labels():
    model, _ = _model()
    with pytest.raises(ValueError, match="evaluate_accuracy: y holds 40 integer class labels"):
        pxi.evaluate_accuracy(model, X[:40], jnp.asarray(LABELS[:40]))


def test_a_new_optimiser_over_the_same_weights_compiles_nothing_and_trains_as_the_old_one():
    """An `Optim` made again (e.g. to reset Adam's moments) with the same optax transformation reuses the step."""
    tx = optax.adam(1e-3)
    model = PCMLP([64, 16, 10])
    pxi.train_supervised(model, pxu.Optim(tx, pxu.Mask(pxnn.LayerParam)(model)), X, Y, inference=SGD)
    twin = PCMLP([64, 16, 10])
    for mine, theirs in zip(twin.parameters(pxnn.LayerParam), model.parameters(pxnn.LayerParam)):
        mine.value = theirs.value
    with count_compilations() as compiled:
        fresh = pxu.Optim(tx, pxu.Mask(pxnn.LayerParam)(model))
        pxi.train_supervised(model, fresh, X, Y, inference=SGD)
    assert compiled[0] == 0
    pxi.train_supervised(twin, pxu.Optim(tx, pxu.Mask(pxnn.LayerParam)(twin)), X, Y, inference=SGD)
    for mine, theirs in zip(twin.parameters(pxnn.LayerParam), model.parameters(pxnn.LayerParam)):
        np.testing.assert_array_equal(mine.value, theirs.value)
