# ruff: noqa: F722  (jaxtyping shape strings such as "N d_0" are not forward references)
"""Closed-form results for deep linear predictive coding networks.

Throughout, a network of depth $L$ has weight matrices $W_1, \\dots, W_L$ with
$W_\\ell \\in \\mathbb{R}^{d_\\ell \\times d_{\\ell-1}}$ (no biases, no activation). The input
$z_0 = x$ and the output $z_L = y$ are clamped, the hidden activities $z_1, \\dots, z_{L-1}$
are free, and the energy of a batch of $N$ samples (the rows of `x` and `y`) is

$$F(z) = \\frac{1}{N} \\sum_{i=1}^{N} \\sum_{\\ell=1}^{L}
       \\tfrac12 \\lVert z_{\\ell,i} - W_\\ell z_{\\ell-1,i} \\rVert^2 .$$

We write $W_{b:a} = W_b W_{b-1} \\cdots W_a$ for a product of consecutive weights
($W_{b:a} = I$ when $a = b + 1$).

Why the energy minimum is a rescaled squared error: write $e_\\ell = z_\\ell - W_\\ell z_{\\ell-1}$ for
the prediction error of layer $\\ell$. Unrolling $z_\\ell = W_\\ell z_{\\ell-1} + e_\\ell$ from $z_0 = x$ to
$z_L = y$ gives the single linear constraint

$$r := y - W_{L:1} x = \\sum_{\\ell=1}^{L} W_{L:\\ell+1}\\, e_\\ell ,$$

and the hidden activities are in one-to-one correspondence with the free errors $e_1, \\dots, e_{L-1}$
($e_L$ is then fixed by the constraint). Minimising $\\tfrac12 \\sum_\\ell \\lVert e_\\ell \\rVert^2$ under a
linear constraint $A e = r$ is a least-norm problem with solution $e = A^\\top (A A^\\top)^{-1} r$ and
minimum $\\tfrac12 r^\\top (A A^\\top)^{-1} r$. Here $A A^\\top = \\sum_{\\ell=1}^{L} W_{L:\\ell+1} W_{L:\\ell+1}^\\top
= I + \\sum_{\\ell=2}^{L} W_{L:\\ell} W_{L:\\ell}^\\top =: S$.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float

from ..nn._linear import Linear

__all__ = [
    "activity_hessian",
    "activity_hessian_eigenvalues",
    "linear_activity_solution",
    "linear_equilibrium_energy",
    "linear_rescaling_matrix",
    "linear_weights",
]

Weights = Sequence[Float[ArrayLike, "d_out d_in"]]


def _as_weights(weights: Weights) -> list[Array]:
    """Validate `weights` (a non-empty chain of matrices) and return them as a common float dtype."""
    ws = [jnp.asarray(w) for w in weights]
    if not ws:
        raise ValueError("Expected at least one weight matrix, got an empty sequence.")
    for i, w in enumerate(ws):
        if w.ndim != 2:
            raise ValueError(f"Weight {i + 1} must be a matrix (d_out, d_in), got shape {w.shape}.")
    for i in range(1, len(ws)):
        if ws[i].shape[1] != ws[i - 1].shape[0]:
            raise ValueError(
                f"Weights do not chain: W_{i + 1} has shape {ws[i].shape} but W_{i} has shape {ws[i - 1].shape} "
                f"(need W_{i + 1}.shape[1] == W_{i}.shape[0])."
            )
    dtype = jnp.result_type(*ws, float)
    return [w.astype(dtype) for w in ws]


def _as_data(ws: list[Array], x: ArrayLike, y: ArrayLike) -> tuple[list[Array], Array, Array]:
    """Validate the batch `x` (N, d_0) and `y` (N, d_L) against the weights; cast everything to one dtype."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must be batches of shape (N, d), got x: {x.shape}, y: {y.shape}.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of samples, got {x.shape[0]} and {y.shape[0]}.")
    if x.shape[1] != ws[0].shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but W_1 expects {ws[0].shape[1]}.")
    if y.shape[1] != ws[-1].shape[0]:
        raise ValueError(f"y has {y.shape[1]} features but W_L produces {ws[-1].shape[0]}.")
    dtype = jnp.result_type(ws[0], x, y, float)
    return [w.astype(dtype) for w in ws], x.astype(dtype), y.astype(dtype)


def _end_to_end(ws: list[Array]) -> Array:
    """$W_{L:1} = W_L \\cdots W_1$."""
    product = ws[0]
    for w in ws[1:]:
        product = w @ product
    return product


def linear_rescaling_matrix(weights: Weights) -> Float[Array, "d_L d_L"]:
    """The matrix $S$ that rescales the squared error at the energy minimum of a deep linear PC network.

    $$S = I_{d_L} + \\sum_{\\ell=2}^{L} W_{L:\\ell}\\, W_{L:\\ell}^\\top, \\qquad
      W_{L:\\ell} = W_L W_{L-1} \\cdots W_\\ell .$$

    It is symmetric positive definite (all eigenvalues $\\ge 1$); for $L = 1$ it is the identity.
    See `linear_equilibrium_energy`.

    **Arguments:**

    - `weights`: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``.

    **Returns:**

    The ``(d_L, d_L)`` matrix $S$.

    **Example:**

    ```python
    S = linear_rescaling_matrix([W1, W2, W3])  # I + W3 W2 (W3 W2)^T + W3 W3^T
    ```
    """
    ws = _as_weights(weights)
    d_out = ws[-1].shape[0]
    partial = jnp.eye(d_out, dtype=ws[-1].dtype)  # W_{L:l}, built from the top down
    s = jnp.eye(d_out, dtype=ws[-1].dtype)
    for w in reversed(ws[1:]):
        partial = partial @ w
        s = s + partial @ partial.T
    return s


def linear_equilibrium_energy(
    weights: Weights, x: Float[ArrayLike, "N d_0"], y: Float[ArrayLike, "N d_L"]
) -> Float[Array, ""]:
    """The minimum over the hidden activities of the energy of a deep linear PC network, in closed form.

    With the input and output clamped, the energy
    $F(z) = \\frac1N \\sum_i \\sum_{\\ell=1}^{L} \\tfrac12 \\lVert z_{\\ell,i} - W_\\ell z_{\\ell-1,i} \\rVert^2$
    is a strictly convex quadratic in the hidden activities, and its minimum is a rescaled mean squared error
    of the end-to-end linear map:

    $$F^* = \\min_z F(z) = \\frac{1}{2N} \\sum_{i=1}^{N} r_i^\\top S^{-1} r_i, \\qquad
      r_i = y_i - W_{L:1} x_i, \\qquad S = I + \\sum_{\\ell=2}^{L} W_{L:\\ell} W_{L:\\ell}^\\top .$$

    This is the equilibrated energy derived in "Only Strict Saddles in the Energy Landscape of Predictive
    Coding Networks?" (it follows from a least-norm argument on the layer errors; see the module docstring).
    For $L = 1$ there is nothing to infer and $F^* = \\frac{1}{2N} \\sum_i \\lVert y_i - W_1 x_i \\rVert^2$.
    The function is pure and can be jitted or differentiated with respect to the weights.

    **Arguments:**

    - `weights`: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``.
    - `x`: inputs, shape ``(N, d_0)``.
    - `y`: targets, shape ``(N, d_L)``.

    **Returns:**

    The scalar $F^*$ (batch mean, as in the energy above).

    **Example:**

    ```python
    ws = [jax.random.normal(k, (4, 3)), jax.random.normal(k, (2, 4))]
    f_star = linear_equilibrium_energy(ws, x, y)  # x: (N, 3), y: (N, 2)
    ```
    """
    ws = _as_weights(weights)
    ws, x, y = _as_data(ws, x, y)
    residual = y - x @ _end_to_end(ws).T  # rows r_i
    factor = jsl.cho_factor(linear_rescaling_matrix(ws), lower=True)
    whitened = jsl.cho_solve(factor, residual.T).T  # rows S^{-1} r_i
    return 0.5 * jnp.sum(residual * whitened) / x.shape[0]


def activity_hessian(weights: Weights) -> Float[Array, "D D"]:
    """Hessian of the single-sample energy of a deep linear PC network w.r.t. its hidden activities.

    For one sample, $E(z) = \\sum_{\\ell=1}^{L} \\tfrac12 \\lVert z_\\ell - W_\\ell z_{\\ell-1} \\rVert^2$
    with $z_0$ and $z_L$ clamped. Stacking $z = (z_1, \\dots, z_{L-1})$, the Hessian $H = \\nabla_z^2 E$
    does not depend on $z$, $x$ or $y$, and is block tridiagonal with blocks ($\\ell = 1, \\dots, L-1$)

    $$H_{\\ell\\ell} = I + W_{\\ell+1}^\\top W_{\\ell+1}, \\qquad H_{\\ell+1,\\ell} = -W_{\\ell+1}, \\qquad
      H_{\\ell,\\ell+1} = -W_{\\ell+1}^\\top ,$$

    and zero elsewhere. It is symmetric positive definite, so the energy has a unique minimum in $z$. Its
    eigenvalues (see `activity_hessian_eigenvalues`) govern the speed of gradient-based inference. The
    Hessian of the batch energy $F$ w.r.t. sample $i$'s activities is $H / N$.

    **Arguments:**

    - `weights`: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``.

    **Returns:**

    The ``(D, D)`` matrix $H$ with $D = d_1 + \\dots + d_{L-1}$ (``(0, 0)`` when $L = 1$), ordered as
    ``concatenate([z_1, ..., z_{L-1}])``.

    **Example:**

    ```python
    H = activity_hessian([W1, W2, W3])  # shape (d_1 + d_2, d_1 + d_2)
    ```
    """
    ws = _as_weights(weights)
    dims = [w.shape[0] for w in ws[:-1]]  # d_1, ..., d_{L-1}; hidden block k holds z_{k+1}
    dtype = ws[0].dtype
    if not dims:
        return jnp.zeros((0, 0), dtype=dtype)
    rows = []
    for k, d in enumerate(dims):
        row = []
        for m, d_m in enumerate(dims):
            if m == k:
                block = jnp.eye(d, dtype=dtype) + ws[k + 1].T @ ws[k + 1]
            elif m == k + 1:
                block = -ws[k + 1].T  # d(z_{k+1}) d(z_{k+2}) from the term ||z_{k+2} - W_{k+2} z_{k+1}||^2
            elif m == k - 1:
                block = -ws[k]
            else:
                block = jnp.zeros((d, d_m), dtype=dtype)
            row.append(block)
        rows.append(row)
    return jnp.block(rows)


def activity_hessian_eigenvalues(weights: Weights) -> Float[Array, " D"]:
    """Eigenvalues of `activity_hessian`, in ascending order.

    The ratio $\\lambda_{\\max} / \\lambda_{\\min}$ is the condition number of inference: plain gradient descent
    on the activities with step size $\\eta$ converges when $\\eta < 2 / \\lambda_{\\max}$ (per-sample energy)
    and its slowest mode contracts like $(1 - \\eta \\lambda_{\\min})$ per step.

    **Arguments:**

    - `weights`: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``.

    **Returns:**

    A vector of length $D = d_1 + \\dots + d_{L-1}$ (all entries positive).

    **Example:**

    ```python
    lam = activity_hessian_eigenvalues(ws); condition = lam[-1] / lam[0]
    ```
    """
    return jnp.linalg.eigvalsh(activity_hessian(weights))


def linear_activity_solution(
    weights: Weights, x: Float[ArrayLike, "N d_0"], y: Float[ArrayLike, "N d_L"]
) -> list[Float[Array, "N _"]]:
    """The hidden activities that minimise the energy of a deep linear PC network (its inference fixed point).

    Setting $\\nabla_z E = 0$ for one sample gives the linear system $H z = b$ with $H$ from
    `activity_hessian` and $b = (W_1 x, 0, \\dots, 0, W_L^\\top y)$ (the two ends add up when $L = 2$, i.e.
    $b = W_1 x + W_2^\\top y$). All samples share $H$, so it is factorised once (Cholesky) and the
    system is solved for the whole batch.

    **Arguments:**

    - `weights`: ``[W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``.
    - `x`: inputs, shape ``(N, d_0)``.
    - `y`: targets, shape ``(N, d_L)``.

    **Returns:**

    ``[z_1, ..., z_{L-1}]`` with ``z_l`` of shape ``(N, d_l)``; an empty list when $L = 1$.

    **Example:**

    ```python
    z1, z2 = linear_activity_solution([W1, W2, W3], x, y)
    ```
    """
    ws = _as_weights(weights)
    ws, x, y = _as_data(ws, x, y)
    if len(ws) == 1:
        return []
    dims = [w.shape[0] for w in ws[:-1]]
    rhs = [jnp.zeros((x.shape[0], d), dtype=x.dtype) for d in dims]
    rhs[0] = rhs[0] + x @ ws[0].T
    rhs[-1] = rhs[-1] + y @ ws[-1]
    factor = jsl.cho_factor(activity_hessian(ws), lower=True)
    z = jsl.cho_solve(factor, jnp.concatenate(rhs, axis=1).T).T
    splits = [sum(dims[: i + 1]) for i in range(len(dims) - 1)]
    return list(jnp.split(z, splits, axis=1))


def linear_weights(model: Any) -> list[Float[Array, "d_out d_in"]]:
    """The weight matrices ``[W_1, ..., W_L]`` of a pcframe model built from bias-free `pcframe.nn.Linear` layers.

    The layers are collected with ``model.modules()``, i.e. depth first in attribute order (so
    ``self.layers = [Linear(...), ...]`` is read in list order). The order must be the order in which the
    layers are applied; a chain of mismatched shapes raises an error, but a model that stores its layers in a
    different order than it uses them cannot be detected. Any other modules (`Vode`s, ...) are ignored.

    **Arguments:**

    - `model`: a `pcframe.Module` (typically a `pcframe.pc.EnergyModule`).

    **Returns:**

    A list of arrays, ``W_l`` of shape ``(d_l, d_{l-1})`` (the current values of ``layer.nn.weight``).

    **Raises:**

    `ValueError` if the model has no `Linear` layer, a layer has a bias, or the shapes do not chain.

    **Example:**

    ```python
    ws = linear_weights(model)
    f_star = linear_equilibrium_energy(ws, x, y)
    ```
    """
    layers = [m for m in model.modules() if isinstance(m, Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} contains no pcframe.nn.Linear layer.")
    for i, layer in enumerate(layers):
        if getattr(layer.nn, "bias", None) is not None:
            raise ValueError(
                f"Linear layer {i + 1} of {type(model).__name__} has a bias; the linear theory assumes "
                "bias-free layers (build them with Linear(..., bias=False))."
            )
    ws = [layer.nn.weight.value for layer in layers]
    if any(w is None for w in ws):
        raise ValueError("A Linear layer's weight has no value (was it cleared?).")
    return _as_weights(ws)
