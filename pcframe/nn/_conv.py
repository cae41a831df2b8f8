"""Convolutions and transposed convolutions in 1, 2 or 3 spatial dimensions."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx

from ..core._random import RKG, RandomKeyGenerator
from ._checks import positive_int, positive_ints
from ._layer import Layer

_Size = int | Sequence[int]


def _check_conv(
    name: str, dims: int, c_in: int, c_out: int, kernel: _Size, stride: _Size, dilation: _Size, groups: int
) -> None:
    """Refuse sizes equinox would only reject deep inside XLA (or silently accept)."""
    if dims not in (1, 2, 3) or isinstance(dims, bool):
        raise ValueError(f"{name} num_spatial_dims must be 1, 2 or 3, got {dims!r}.")
    c_in, c_out = positive_int(c_in, f"{name} in_channels"), positive_int(c_out, f"{name} out_channels")
    positive_ints(kernel, f"{name} kernel_size", dims)
    positive_ints(stride, f"{name} stride", dims)
    positive_ints(dilation, f"{name} dilation", dims)
    groups = positive_int(groups, f"{name} groups")
    if c_in % groups or c_out % groups:
        raise ValueError(f"{name} groups={groups} must divide in_channels={c_in} and out_channels={c_out}.")


class Conv(Layer):
    """Convolution of one channels-first sample ``(C_in, *spatial)`` (batch with `vmap`).

    **Arguments:**

    - `num_spatial_dims`: 1, 2 or 3.
    - `in_channels`, `out_channels`, `kernel_size`, `stride`, `padding`, `dilation`,
      `groups`, `bias`: as in `equinox.nn.Conv`.
    - `rkg`: random key generator for the initialisation.

    **Example:** ``conv = Conv(2, 1, 16, kernel_size=3, padding=1); y = conv(x)`` with ``x.shape == (1, 28, 28)``.
    """

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size,
        stride: _Size = 1,
        padding: _Size | str = 0,
        dilation: _Size = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        _check_conv(
            type(self).__name__, num_spatial_dims, in_channels, out_channels, kernel_size, stride, dilation, groups
        )
        super().__init__(
            eqx.nn.Conv(
                num_spatial_dims,
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation,
                groups,
                use_bias=bias,
                key=rkg(),
            )
        )


class ConvTranspose(Layer):
    """Transposed convolution of one channels-first sample (see `equinox.nn.ConvTranspose`).

    **Arguments:** as `Conv`, plus `output_padding`.

    **Example:** ``up = ConvTranspose(2, 16, 1, kernel_size=4, stride=2, padding=1)``
    """

    def __init__(
        self,
        num_spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size,
        stride: _Size = 1,
        padding: _Size | str = 0,
        output_padding: _Size = 0,
        dilation: _Size = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        _check_conv(
            type(self).__name__, num_spatial_dims, in_channels, out_channels, kernel_size, stride, dilation, groups
        )
        super().__init__(
            eqx.nn.ConvTranspose(
                num_spatial_dims,
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                output_padding,
                dilation,
                groups,
                use_bias=bias,
                key=rkg(),
            )
        )


def Conv1d(in_channels: int, out_channels: int, kernel_size: _Size, **kwargs) -> Conv:
    """A 1d `Conv`.

    **Arguments:**

    - `in_channels`, `out_channels`: channel counts.
    - `kernel_size`: an int or a 1-tuple.
    - `**kwargs`: passed on to `Conv` (stride, padding, ...).

    **Example:** ``Conv1d(3, 8, kernel_size=5)``
    """
    return Conv(1, in_channels, out_channels, kernel_size, **kwargs)


def Conv2d(in_channels: int, out_channels: int, kernel_size: _Size, **kwargs) -> Conv:
    """A 2d `Conv`.

    **Arguments:**

    - `in_channels`, `out_channels`: channel counts.
    - `kernel_size`: an int or a tuple of 2 ints.
    - `**kwargs`: passed on to `Conv` (stride, padding, ...).

    **Example:** ``Conv2d(1, 16, kernel_size=3, padding=1)``
    """
    return Conv(2, in_channels, out_channels, kernel_size, **kwargs)


def Conv3d(in_channels: int, out_channels: int, kernel_size: _Size, **kwargs) -> Conv:
    """A 3d `Conv`.

    **Arguments:**

    - `in_channels`, `out_channels`: channel counts.
    - `kernel_size`: an int or a tuple of 3 ints.
    - `**kwargs`: passed on to `Conv` (stride, padding, ...).

    **Example:** ``Conv3d(1, 4, kernel_size=3)``
    """
    return Conv(3, in_channels, out_channels, kernel_size, **kwargs)
