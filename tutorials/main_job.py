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
   draws the energy and test-accuracy curves of both methods.

Run ``python tutorials/main_job.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
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
    which the weights are updated, i.e. after inference.
    """
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)
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
    return e


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


def run_epochs(name: str, data: Data, args: argparse.Namespace, train_step: Callable, test_accuracy: Callable) -> dict:
    """Train for `args.epochs` epochs with a progress bar; return per-epoch energies, test accuracies, wall time.

    `train_step(x, y)` trains on one batch (one-hot `y`) and returns its energy;
    `test_accuracy()` returns the current test accuracy.
    """
    rng = np.random.default_rng(args.seed)
    history = {"energy": [], "accuracy": []}
    start = time.perf_counter()
    for epoch in range(args.epochs):
        energies = []
        batches = tqdm(epoch_batches(data, args.batch_size, rng), desc=f"{name} epoch {epoch + 1}/{args.epochs}")
        for index in batches:
            energies.append(train_step(data.x_train[index], jax.nn.one_hot(data.y_train[index], NUM_CLASSES)))
        history["energy"].append(float(np.mean(jax.device_get(energies))))
        history["accuracy"].append(test_accuracy())
        batches.set_postfix(energy=f"{history['energy'][-1]:.3f}", test_acc=f"{history['accuracy'][-1]:.3f}")
        batches.close()
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
        loss, grads = jax.value_and_grad(loss_fn)(weights, x, y)
        updates, state = tx.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state, loss

    @jax.jit
    def predict(weights, x):
        return mlp_logits(weights, x, act_fn).argmax(axis=-1)

    state = tx.init(weights)

    def train_step(x, y):
        nonlocal weights, state
        weights, state, loss = update(weights, state, x, y)
        return loss

    def test_accuracy():
        return float(np.mean(np.asarray(predict(weights, data.x_test)) == data.y_test))

    history = run_epochs("BP", data, args, train_step, test_accuracy)
    return weights, history


def plot(pc: dict, bp: dict, path: str) -> None:
    """Write the energy-per-epoch and test-accuracy-per-epoch curves of PC and BP to `path`."""
    epochs = np.arange(1, len(pc["energy"]) + 1)
    fig, (ax_e, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    ax_e.plot(epochs, pc["energy"], "o-", label="PC (energy at the weight update)")
    ax_e.plot(epochs, bp["energy"], "s-", label="BP (cross-entropy = energy of the feed-forward state)")
    ax_e.set(xlabel="epoch", ylabel="mean training energy", yscale="log", title="Energy per epoch")
    ax_e.legend(fontsize=8)
    ax_a.plot(epochs, pc["accuracy"], "o-", label="PC")
    ax_a.plot(epochs, bp["accuracy"], "s-", label="BP")
    ax_a.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy per epoch")
    ax_a.legend()
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
    bp_acc = bp["accuracy"][-1]

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
