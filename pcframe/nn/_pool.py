"""Pooling layers (no parameters)."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx

from ._checks import positive_ints
from ._layer import Layer

_Size = int | Sequence[int]


class MaxPool2d(Layer):
    """2d max pooling of one channels-first sample ``(C, H, W)``.

    **Arguments:** `kernel_size`, `stride` (default: `kernel_size`), `padding`.

    **Example:** ``MaxPool2d(2)`` halves height and width.
    """

    def __init__(self, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0) -> None:
        positive_ints(kernel_size, "MaxPool2d kernel_size", 2)
        super().__init__(eqx.nn.MaxPool2d(kernel_size, kernel_size if stride is None else stride, padding))


class AvgPool2d(Layer):
    """2d average pooling of one channels-first sample ``(C, H, W)``.

    **Arguments:** `kernel_size`, `stride` (default: `kernel_size`), `padding`.

    **Example:** ``AvgPool2d(2)``
    """

    def __init__(self, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0) -> None:
        positive_ints(kernel_size, "AvgPool2d kernel_size", 2)
        super().__init__(eqx.nn.AvgPool2d(kernel_size, kernel_size if stride is None else stride, padding))
