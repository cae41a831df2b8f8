"""Train a predictive coding classifier on scikit-learn's 8x8 digits and compare it with backprop.

The script is pcframe's end-to-end example:

1. loads ``sklearn.datasets.load_digits`` (1797 images of 8x8 pixels), standardises
   the pixels with the training set's statistics and holds out a fixed test split;
2. trains a 64-128-128-10 predictive coding network written with pcframe's
   pcax-style API (`EnergyModule`, `Vode`, masked `vmap` / `value_and_grad`,
   `jit`, `Optim`), running inference with `pxf.scan`;
3. trains the same architecture with backpropagation (pure JAX + optax) from the
   same initial weights, with the same optimiser, epochs, batch size and batch order;
4. prints a results table, saves the PC weights with `pxu.save_params`, reloads them
   into a freshly built model and checks that it predicts exactly the same, and
   draws the energy and accuracy curves of both methods (`pcframe.plots.training_curves`).

While an epoch runs, a progress bar shows the running energy and training accuracy (only where
tqdm can draw it: standard error is a terminal). After every epoch one plain line is printed,
whatever the output is, so a log file reads::

    PC epoch 3/20  energy 0.1234  train_acc 0.912  test_acc 0.903  time 1.23s

Run ``python tutorials/main_job.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pcframe.plots as pxp  # noqa: E402

HIDDEN = (128, 128)
NUM_CLASSES = 10


class Model(pxc.EnergyModule):
    """A PC multilayer perceptron: each hidden layer is ``Linear -> act_fn -> Vode``.

    The output `Vode` carries a cross-entropy energy and its activity is frozen
    (clamped to the one-hot label during training), so inference only moves the
    hidden activities.
    """

    def __init__(self, sizes: Sequence[int], act_fn: Callable[[jax.Array], jax.Array]) -> None:
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode((s,)) for s in sizes[1:-1]] + [pxc.Vode((sizes[-1],), pxc.ce_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x: jax.Array, y: jax.Array | None) -> jax.Array:
        """Predict the logits of one sample; with a label `y`, clamp the output activity to it."""
        for vode, layer in zip(self.vodes[:-1], self.layers[:-1]):
            x = vode(self.act_fn(layer(x)))
        self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


BATCHED = pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0))
FREE_ACTIVITIES = pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), [False, True])
WEIGHTS = pxu.Mask(pxnn.LayerParam, [False, True])


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model: Model):
    """Batched forward pass (activities and caches batched, weights shared)."""
    return model(x, y)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def energy(x, *, model: Model):
    """Batch-mean energy of the network and its logits."""
    logits = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), logits


@pxf.jit(static_argnums=0, overwrites=pxc.VodeParam)  # the feed-forward pass sets every activity first
def train_on_batch(T: int, x: jax.Array, y: jax.Array, *, model: Model, optim_w: pxu.Optim, optim_h: pxu.Optim):
    """One PC training step: feed-forward init, `T` inference steps (a `pxf.scan`), one weight update.

    The inference optimiser is re-initialised for every batch (a no-op for plain
    SGD, required once it carries state such as momentum). Returns the energy at
    which the weights are updated, i.e. after inference, and the accuracy of the feed-forward
    prediction on the batch (before the update).
    """
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        logits = forward(x, y, model=model)
    optim_h.init(pxu.Mask(pxc.VodeParam)(model))

    def inference_step(_step, x, *, model, optim_h):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(FREE_ACTIVITIES, has_aux=True)(energy)(x, model=model)
        optim_h.step(model, g["model"], True)
        return x, None

    pxf.scan(inference_step, xs=jnp.arange(T))(x, model=model, optim_h=optim_h)

    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        (e, _), g = pxf.value_and_grad(WEIGHTS, has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"])
    return e, batch_accuracy(logits, y)


def batch_accuracy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of the batch whose predicted class (argmax of the logits) is the one-hot label's."""
    return jnp.mean(logits.argmax(axis=-1) == y.argmax(axis=-1))


@pxf.jit(overwrites=pxc.VodeParam)
def predict_on_batch(x: jax.Array, *, model: Model):
    """Class predictions of a batch from a single feed-forward pass."""
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        logits = forward(x, None, model=model)
    return logits.argmax(axis=-1)


@dataclass
class Data:
    """Standardised digits, split once: test images are padded to whole batches for the PC model."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_batches: np.ndarray = field(repr=False)


def load_data(batch_size: int, test_size: float = 0.2, split_seed: int = 0) -> Data:
    """Load the 8x8 digits, split them (stratified, fixed seed) and standardise with training statistics.

    Pixels (0-16) are centred and divided by their training standard deviation plus
    one pixel unit, which keeps the nearly constant border pixels from blowing up.
    """
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images.astype(np.float32), labels, test_size=test_size, random_state=split_seed, stratify=labels
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1.0
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    padding = -len(x_test) % batch_size
    padded = np.concatenate([x_test, np.zeros((padding, x_test.shape[1]), np.float32)])
    return Data(x_train, y_train, x_test, y_test, padded.reshape(-1, batch_size, x_test.shape[1]))


def epoch_batches(data: Data, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index arrays of one epoch's mini-batches: a fresh permutation, the incomplete last batch dropped."""
    order = rng.permutation(len(data.x_train))
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def build_model(batch_size: int, act_fn: Callable[[jax.Array], jax.Array]) -> Model:
    """A fresh PC model whose activities have been created for `batch_size` samples."""
    model = Model((64, *HIDDEN, NUM_CLASSES), act_fn)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((batch_size, 64)), None, model=model)
    return model


def pc_accuracy(model: Model, data: Data) -> tuple[float, np.ndarray]:
    """Test accuracy of the PC model and its predictions."""
    predictions = np.concatenate([np.asarray(predict_on_batch(x, model=model)) for x in data.test_batches])
    predictions = predictions[: len(data.y_test)]
    return float(np.mean(predictions == data.y_test)), predictions


POSTFIX_EVERY = 10
"""The progress bar's running energy and accuracy are refreshed every this many batches (each read waits for the device)."""


def epoch_line(name: str, epoch: int, epochs: int, energy: float, train_acc: float, test_acc: float, seconds: float):
    """The plain summary line printed after each epoch, e.g. ``PC epoch 3/20  energy 0.1234  ...  time 1.23s``."""
    return (
        f"{name} epoch {epoch}/{epochs}  energy {energy:.4f}  train_acc {train_acc:.3f}  "
        f"test_acc {test_acc:.3f}  time {seconds:.2f}s"
    )


def run_epochs(name: str, data: Data, args: argparse.Namespace, train_step: Callable, test_accuracy: Callable) -> dict:
    """Train for `args.epochs` epochs; return per-epoch energies, train and test accuracies, and times.

    `train_step(x, y)` trains on one batch (one-hot `y`) and returns its energy and the accuracy
    of the batch's feed-forward prediction; `test_accuracy()` returns the current test accuracy.
    A progress bar shows the running means while an epoch runs (``disable=None``: only when
    standard error is a terminal); after each epoch `epoch_line` is printed to standard output.
    """
    rng = np.random.default_rng(args.seed)
    history = {"energy": [], "train_accuracy": [], "test_accuracy": [], "epoch_time": []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        energies, accuracies = [], []
        batches = epoch_batches(data, args.batch_size, rng)
        bar = tqdm(batches, desc=f"{name} epoch {epoch}/{args.epochs}", disable=None, leave=False, file=sys.stderr)
        for i, index in enumerate(bar, 1):
            energy, accuracy = train_step(data.x_train[index], jax.nn.one_hot(data.y_train[index], NUM_CLASSES))
            energies.append(energy)
            accuracies.append(accuracy)
            if not bar.disable and (i % POSTFIX_EVERY == 0 or i == len(batches)):
                running = np.mean(jax.device_get(energies)), np.mean(jax.device_get(accuracies))
                bar.set_postfix(energy=f"{running[0]:.4f}", train_acc=f"{running[1]:.3f}", refresh=False)
        bar.close()
        history["energy"].append(float(np.mean(jax.device_get(energies))))
        history["train_accuracy"].append(float(np.mean(jax.device_get(accuracies))))
        history["test_accuracy"].append(test_accuracy())
        history["epoch_time"].append(time.perf_counter() - epoch_start)
        last = {key: values[-1] for key, values in history.items()}
        line = epoch_line(
            name, epoch, args.epochs, last["energy"], last["train_accuracy"], last["test_accuracy"], last["epoch_time"]
        )
        print(line, flush=True)
    history["time"] = time.perf_counter() - start
    return history


def train_pc(model: Model, data: Data, args: argparse.Namespace) -> dict:
    """Train the PC model in place; return per-epoch energies and test accuracies and the wall time."""
    optim_h = pxu.Optim(optax.sgd(args.lr_h), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(optax.adamw(args.lr_w), pxu.Mask(pxnn.LayerParam)(model))

    def train_step(x, y):
        return train_on_batch(args.T, x, y, model=model, optim_w=optim_w, optim_h=optim_h)

    return run_epochs("PC", data, args, train_step, lambda: pc_accuracy(model, data)[0])


def mlp_logits(weights: list[tuple[jax.Array, jax.Array]], x: jax.Array, act_fn: Callable) -> jax.Array:
    """The feed-forward pass of the same MLP written in plain JAX (batched)."""
    for w, b in weights[:-1]:
        x = act_fn(x @ w.T + b)
    w, b = weights[-1]
    return x @ w.T + b


def train_bp(weights: list[tuple[jax.Array, jax.Array]], data: Data, args: argparse.Namespace, act_fn: Callable):
    """Train the MLP by backpropagation from `weights`; return the final weights and the history.

    The loss is the batch-mean cross-entropy, i.e. the PC energy of the
    feed-forward state (every hidden prediction error is zero there).
    """
    tx = optax.adamw(args.lr_w)

    def loss_fn(weights, x, y):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(mlp_logits(weights, x, act_fn)), axis=-1))

    @jax.jit
    def update(weights, state, x, y):
        accuracy = batch_accuracy(mlp_logits(weights, x, act_fn), y)
        loss, grads = jax.value_and_grad(loss_fn)(weights, x, y)
        updates, state = tx.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state, loss, accuracy

    @jax.jit
    def predict(weights, x):
        return mlp_logits(weights, x, act_fn).argmax(axis=-1)

    state = tx.init(weights)

    def train_step(x, y):
        nonlocal weights, state
        weights, state, loss, accuracy = update(weights, state, x, y)
        return loss, accuracy

    def test_accuracy():
        return float(np.mean(np.asarray(predict(weights, data.x_test)) == data.y_test))

    history = run_epochs("BP", data, args, train_step, test_accuracy)
    return weights, history


def plot(pc: dict, bp: dict, path: str) -> None:
    """Write the energy-per-epoch and accuracy-per-epoch curves of PC and BP (train and test) to `path`.

    PC's energy is the one at the weight update (after inference); BP's is its cross-entropy, the
    energy of the feed-forward state.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ylabels = {"energy": "mean training energy (per sample)"}
    pxp.training_curves(pc, ["energy", "accuracy"], ax=axes, label="PC", ylabels=ylabels, color="C0")
    pxp.training_curves(bp, ["energy", "accuracy"], ax=axes, label="BP", ylabels=ylabels, color="C1", marker="s")
    axes[0].set_title("Energy per epoch")
    axes[1].set_title("Accuracy per epoch (dashed: test)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Train a 64-128-128-10 predictive coding classifier on scikit-learn's 8x8 digits with "
        "pcframe, train the same network by backprop for comparison, save the PC weights and plot both runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (PC and BP alike)")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (PC and BP alike)")
    parser.add_argument("--T", type=int, default=8, help="inference steps per PC training batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weight initialisation and batch order")
    parser.add_argument("--out", default="results", help="folder for the parameter file and the plot")
    parser.add_argument("--lr-w", type=float, default=1e-3, help="AdamW learning rate of the weights (PC and BP)")
    parser.add_argument(
        "--lr-h",
        type=float,
        default=5e-2,
        help="SGD step of the PC activities, per sample (gradients are rescaled by the batch size)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the whole job; return the accuracies, times, histories and written paths."""
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    act_fn = jax.nn.leaky_relu
    data = load_data(args.batch_size)

    px.RKG.seed(args.seed)
    model = build_model(args.batch_size, act_fn)
    initial_weights = [(layer.nn.weight.value, layer.nn.bias.value) for layer in model.layers]

    pc = train_pc(model, data, args)
    pc_acc, pc_predictions = pc_accuracy(model, data)
    _, bp = train_bp(initial_weights, data, args, act_fn)
    bp_acc = bp["test_accuracy"][-1]

    params_path = pxu.save_params(model, os.path.join(args.out, "pc_params"))
    px.RKG.seed(args.seed + 1)
    reloaded = build_model(args.batch_size, act_fn)
    pxu.load_params(reloaded, params_path)
    reloaded_acc, reloaded_predictions = pc_accuracy(reloaded, data)
    if reloaded_acc != pc_acc or not np.array_equal(reloaded_predictions, pc_predictions):
        raise RuntimeError(f"reloaded PC model disagrees: accuracy {reloaded_acc} vs {pc_acc}")

    plot_path = os.path.join(args.out, "main_job.png")
    plot(pc, bp, plot_path)

    print()
    print(f"{'method':<8}{'test accuracy':>15}{'train time (s, incl. compile)':>31}")
    print(f"{'PC':<8}{pc_acc:>15.4f}{pc['time']:>31.1f}")
    print(f"{'BP':<8}{bp_acc:>15.4f}{bp['time']:>31.1f}")
    print(f"PC parameters: {params_path} (reloaded accuracy {reloaded_acc:.4f}, identical)")
    print(f"curves: {plot_path}")
    return {
        "pc_accuracy": pc_acc,
        "bp_accuracy": bp_acc,
        "reloaded_accuracy": reloaded_acc,
        "pc_time": pc["time"],
        "bp_time": bp["time"],
        "pc_history": pc,
        "bp_history": bp,
        "params_path": params_path,
        "plot_path": plot_path,
    }


if __name__ == "__main__":
    main()
