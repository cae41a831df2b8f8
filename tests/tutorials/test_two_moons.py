"""Tutorial 0 (two moons): the tutorial's code as plain tests, and the notebook executed end to end.

The seed recipe (``optax.sgd(1e-2 * batch_size)`` for the activities, stepped with
``scale_by_batch_size=True``) moves every activity by 0.32 x its per-sample gradient per
inference step. Its 8-epoch test accuracy depends strongly on the batch order: over 30
shuffles it ranged from 0.70 to 0.93 (mean 0.84), with the same numbers from the pure-JAX
reference below, so the spread belongs to the recipe, not to pcframe. The tests therefore
fix the batch order, check pcframe against a hand-written JAX implementation of the same
algorithm, and check the accuracy of the per-sample step 0.01 the notebook's last section
uses (0.963 to 0.973 over 20 shuffles after 8 epochs).
"""

import pathlib
import random
import re
from collections.abc import Callable

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

make_moons = pytest.importorskip("sklearn.datasets").make_moons

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "tutorials" / "00_two_moons.ipynb"
BATCH_SIZE = 32
NM_ELEMENTS = 1024
T = 8
SHUFFLE_SEED = 0


class Model(pxc.EnergyModule):
    """The tutorial's model: ``Linear -> act_fn -> Vode`` hidden layers and a frozen cross-entropy output Vode."""

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int, nm_layers: int, act_fn: Callable[[jax.Array], jax.Array]
    ) -> None:
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = (
            [pxnn.Linear(input_dim, hidden_dim)]
            + [pxnn.Linear(hidden_dim, hidden_dim) for _ in range(nm_layers - 2)]
            + [pxnn.Linear(hidden_dim, output_dim)]
        )
        self.vodes = [pxc.Vode((hidden_dim,)) for _ in range(nm_layers - 1)] + [pxc.Vode((output_dim,), pxc.ce_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y):
        for v, l in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(l(x)))
        self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


@pxf.vmap(pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model: Model):
    """Batched forward pass."""
    return model(x, y)


@pxf.vmap(pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0)), in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy(x, *, model: Model):
    """Batch-mean energy and logits."""
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), y_


def make_train_on_batch(traces: list):
    """The tutorial's jitted training step; every trace of its Python body appends to `traces`."""

    @pxf.jit(static_argnums=0)
    def train_on_batch(T: int, x, y, *, model: Model, optim_w: pxu.Optim, optim_h: pxu.Optim):
        traces.append(T)
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            forward(x, y, model=model)
        for _ in range(T):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                (e, y_), g = pxf.value_and_grad(
                    pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), [False, True]), has_aux=True
                )(energy)(x, model=model)
            optim_h.step(model, g["model"], True)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            (e, y_), g = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, [False, True]), has_aux=True)(energy)(
                x, model=model
            )
        optim_w.step(model, g["model"])

    return train_on_batch


@pxf.jit()
def eval_on_batch(x, y, *, model: Model):
    """Accuracy and predictions of one batch from a feed-forward pass."""
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        y_ = forward(x, None, model=model).argmax(axis=-1)
    return (y_ == y).mean(), y_


def data():
    """The tutorial's training batches and test batches."""
    X, y = make_moons(n_samples=BATCH_SIZE * (NM_ELEMENTS // BATCH_SIZE), noise=0.2, random_state=42)
    train_dl = list(zip(X.reshape(-1, BATCH_SIZE, 2), y.reshape(-1, BATCH_SIZE)))
    X_test, y_test = make_moons(n_samples=BATCH_SIZE * (NM_ELEMENTS // BATCH_SIZE) // 2, noise=0.2, random_state=0)
    test_dl = tuple(zip(X_test.reshape(-1, BATCH_SIZE, 2), y_test.reshape(-1, BATCH_SIZE)))
    return train_dl, test_dl


def train_tutorial(inference_lr: float):
    """Train as the tutorial does (8 epochs, T=8, AdamW 1e-2), with a seeded batch order.

    Returns the test accuracy, the number of traces of the training step, the
    initial weights and the trained weights.
    """
    px.RKG.seed(0)
    train_dl, test_dl = data()
    model = Model(input_dim=2, hidden_dim=32, output_dim=2, nm_layers=3, act_fn=jax.nn.leaky_relu)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((BATCH_SIZE, 2)), None, model=model)
    initial = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]
    optim_h = pxu.Optim(optax.sgd(inference_lr), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(optax.adamw(1e-2), pxu.Mask(pxnn.LayerParam)(model))

    traces: list = []
    train_on_batch = make_train_on_batch(traces)
    rng = random.Random(SHUFFLE_SEED)
    for _ in range(256 // (NM_ELEMENTS // BATCH_SIZE)):
        rng.shuffle(train_dl)
        for x, y in train_dl:
            train_on_batch(T, x, jax.nn.one_hot(y, 2), model=model, optim_w=optim_w, optim_h=optim_h)
    accuracy = float(np.mean([eval_on_batch(x, y, model=model)[0] for x, y in test_dl]))
    trained = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]
    return accuracy, len(traces), initial, trained


def reference_training(weights, inference_lr: float):
    """The same algorithm written directly in JAX and optax: init, T activity SGD steps, one AdamW step."""
    act_fn = jax.nn.leaky_relu
    tx = optax.adamw(1e-2)

    def batch_energy(hs, weights, x, y):
        below, total = x, 0.0
        for (w, b), h in zip(weights[:-1], hs):
            total = total + 0.5 * jnp.sum((h - act_fn(below @ w.T + b)) ** 2)
            below = h
        w, b = weights[-1]
        total = total - jnp.sum(y * jax.nn.log_softmax(below @ w.T + b))
        return total / x.shape[0]

    @jax.jit
    def step(weights, state, x, y):
        hs, below = [], x
        for w, b in weights[:-1]:
            below = act_fn(below @ w.T + b)
            hs.append(below)
        for _ in range(T):
            grads = jax.grad(batch_energy)(hs, weights, x, y)
            hs = [h - inference_lr * x.shape[0] * g for h, g in zip(hs, grads)]
        grads = jax.grad(batch_energy, argnums=1)(hs, weights, x, y)
        updates, state = tx.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state

    train_dl, _ = data()
    state = tx.init(weights)
    rng = random.Random(SHUFFLE_SEED)
    for _ in range(256 // (NM_ELEMENTS // BATCH_SIZE)):
        rng.shuffle(train_dl)
        for x, y in train_dl:
            weights, state = step(weights, state, jnp.asarray(x, jnp.float32), jax.nn.one_hot(y, 2))
    return weights


def test_tutorial_recipe_compiles_once_and_matches_reference():
    """The seed's exact recipe: one trace for 256 steps, and the same weights as the hand-written algorithm."""
    accuracy, n_traces, initial, trained = train_tutorial(1e-2 * BATCH_SIZE)
    assert n_traces == 1
    expected = reference_training(initial, 1e-2 * BATCH_SIZE)
    for (w, b), (w_ref, b_ref) in zip(trained, expected):
        np.testing.assert_allclose(w, w_ref, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(b, b_ref, rtol=1e-3, atol=1e-4)
    assert accuracy >= 0.75


def test_tutorial_with_small_inference_step_reaches_95_percent():
    """The tutorial's code with a per-sample inference step of 0.01 classifies >= 95% of the test set in 8 epochs."""
    accuracy, n_traces, _, _ = train_tutorial(1e-2)
    assert n_traces == 1
    assert accuracy >= 0.95


@pytest.mark.notebook
def test_notebook_runs_and_reaches_95_percent(tmp_path):
    """Execute the notebook in a fresh kernel; its `final_accuracy` must be at least 0.95."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell('print(f"FINAL_ACCURACY={float(final_accuracy)!r}")'))
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    def stream(cell):
        return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")

    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    match = re.search(r"FINAL_ACCURACY=([0-9.eE+-]+)", stream(code_cells[-1]))
    assert match is not None, stream(code_cells[-1])
    assert float(match.group(1)) >= 0.95

    training = next(c for c in code_cells if "nm_epochs = 256" in c.source)
    assert stream(training).count("Training!") == 1
    images = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.get("outputs", []))
    assert images >= 4
