"""Activation functions: any callable, or one of JPC's names mapped explicitly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def linear(x: Any) -> Any:
    """The identity, $f(x) = x$ (JPC's ``"linear"``).

    **Arguments:**

    - `x`: an array.

    **Returns:** `x`.

    **Example:** ``PCMLP([2, 8, 1], act_fn=linear)`` is a deep linear network.
    """
    return x


JPC_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "linear": linear,
    "tanh": jax.nn.tanh,
    "hard_tanh": jax.nn.hard_tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "gelu": jax.nn.gelu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
}
"""JPC's activation names and the function each means."""


def activation(act_fn: Any, where: str) -> Callable[[Any], Any]:
    """`act_fn` itself when callable, the function a JPC name means, or a clear error."""
    if isinstance(act_fn, str):
        if act_fn not in JPC_ACTIVATIONS:
            raise ValueError(
                f"{where} act_fn {act_fn!r} is not a known activation; give a function (e.g. jax.nn.tanh) "
                f"or one of {sorted(JPC_ACTIVATIONS)}."
            )
        return JPC_ACTIVATIONS[act_fn]
    if not callable(act_fn):
        raise TypeError(
            f"{where} act_fn must be a function such as jax.nn.tanh, or a name such as 'tanh'; got {act_fn!r}."
        )
    return act_fn
