"""Bidirectional PC (Oliviers et al.) and predictive dendrites: one energy, two weight sets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._checks import positive_int
from ..nn._linear import Linear
from ..pc._energies import zero_energy
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._activations import activation

GENERATIVE = "u_gen"
"""The `Vode` slot holding a node's generative (top-down, from the layer above) prediction."""


@dataclasses.dataclass(frozen=True)
class BidirectionalEnergy:
    """The energy of a node with a discriminative and a generative prediction (a `Vode` energy function).

    $$E = \\frac{\\alpha_d}{2}\\lVert h - u\\rVert^2 + \\frac{\\alpha_g}{2}\\lVert h - u_\\mathrm{gen}\\rVert^2,$$

    $u$ the discriminative (bottom-up) prediction set by ``vode(u)``, $u_\\mathrm{gen}$ the
    generative (top-down) one set by ``vode.set("u_gen", ...)``; a term whose prediction the
    node has not received this step is absent (the input node has only $u_\\mathrm{gen}$, the
    output only $u$). The same energy is the dendritic energy of a predictive-dendrites node.

    **Arguments:**

    - `discriminative_weight`: $\\alpha_d$ (JPC's ``forward_energy_weight``).
    - `generative_weight`: $\\alpha_g$ (JPC's ``backward_energy_weight``).

    **Returns:** (called as ``energy(vode, rkg)``) the node's scalar energy.

    **Example:** ``Vode((128,), BidirectionalEnergy(1.0, 0.5))``
    """

    discriminative_weight: float = 1.0
    generative_weight: float = 1.0

    def __call__(self, vode: Vode, rkg: Any = None) -> jax.Array:
        """The node's energy (see the class docstring)."""
        cache = vode.cache.value or {}
        h = vode.get("h")
        energy = jnp.zeros(())
        if "u" in cache:
            energy = energy + 0.5 * self.discriminative_weight * jnp.sum((h - cache["u"]) ** 2)
        if GENERATIVE in cache:
            energy = energy + 0.5 * self.generative_weight * jnp.sum((h - cache[GENERATIVE]) ** 2)
        return energy


class BidirectionalPCMLP(EnergyModule):
    """Bidirectional PC (bPC): discriminative and generative predictions of every node in one energy.

    Two weight sets: discriminative layers predict upwards, $u_\\ell = f_\\ell(W_\\ell z_{\\ell-1} + b_\\ell)$
    ($z_0 = x$, linear output), generative layers predict downwards,
    $u^\\mathrm{gen}_{\\ell-1} = f_{\\ell-1}(V_\\ell z_\\ell + c_\\ell)$ ($z_L = y$, linear at the input). The energy
    (Oliviers et al., "Bidirectional predictive coding") is

    $$F = \\sum_{\\ell=1}^{L} \\frac{\\alpha_d}{2}\\lVert z_\\ell - u_\\ell\\rVert^2
        + \\sum_{\\ell=0}^{L-1} \\frac{\\alpha_g}{2}\\lVert z_\\ell - u^\\mathrm{gen}_\\ell\\rVert^2,$$

    each node's share a `BidirectionalEnergy`. ``model(x, y)`` follows the engines' protocol
    (input and output clamped: both are clamped nodes, so a training step's ``loss`` is the
    output's discriminative error plus the input's generative error), so `train_supervised`
    with any strategy (`ErrorInference` included) trains both weight sets. One model classifies
    (`pcframe.inference.predict`: the discriminative feedforward pass) and generates
    (`generate`: the generative pass from a label).

    With ``dendrites=True`` it is the predictive dendrites model (JPC's ``pdm_energy_fn``):
    each hidden node's energy is the same two-term energy, but its inference is local,
    $\\dot z_\\ell = -\\partial F_\\ell/\\partial z_\\ell = -\\alpha_d(z_\\ell - u_\\ell) - \\alpha_g(z_\\ell - u^\\mathrm{gen}_\\ell)$
    (the predictions see the neighbours' activities through `jax.lax.stop_gradient`), and
    without `clamped_errors` the clamped nodes have no energy. Weight gradients are always
    $\\partial F/\\partial\\theta$ of the energy defined here, whatever $\\alpha$.

    Differences from JPC (``bpc_energy_fn``, ``pdm_energy_fn`` and their gradients):

    - JPC's bPC functions accept ``param_type`` and ignore it; this model has no such option.
    - JPC's PDM parameter gradients switch to bPC's (which add the output's discriminative and
      the input's generative error, so $W_L$ and $V_1$ get gradients) when both weights equal
      exactly 1, and are $\\partial/\\partial\\theta$ of the PDM energy otherwise. Here they are the
      gradient of one energy: `clamped_errors=False` gives JPC's PDM energy for every
      $\\alpha$, `clamped_errors=True` adds the two clamped-node errors for every $\\alpha$.
    - Layers are post-activation, as `PCMLP` (JPC's ``make_mlp`` is pre-activation).

    **Arguments:**

    - `sizes`: ``[d_0, ..., d_L]`` (input, hidden..., output widths).
    - `act_fn`: $f$ for hidden nodes (a function or one of JPC's names).
    - `discriminative_weight`, `generative_weight`: $\\alpha_d$, $\\alpha_g$.
    - `dendrites`: local (predictive dendrites) inference instead of bPC's.
    - `clamped_errors`: include the clamped nodes' errors (default: `True` for bPC, `False` with dendrites).
    - `bias`: use biases.
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = BidirectionalPCMLP([784, 256, 256, 10], generative_weight=0.1)
    train_supervised(model, optim_w, x, y, inference=DiscreteInference(step_size=0.1, steps=20))
    digits = model.generate(jax.nn.one_hot(jnp.arange(10), 10))
    ```
    """

    def __init__(
        self,
        sizes: Sequence[int],
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.tanh,
        discriminative_weight: float = 1.0,
        generative_weight: float = 1.0,
        dendrites: bool = False,
        clamped_errors: bool | None = None,
        bias: bool = True,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
            raise ValueError(
                f"BidirectionalPCMLP sizes must list at least an input and an output width, got {sizes!r}."
            )
        for name, weight in (
            ("discriminative_weight", discriminative_weight),
            ("generative_weight", generative_weight),
        ):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"BidirectionalPCMLP {name} must be a non-negative number, got {weight!r}.")
        self.sizes = tuple(positive_int(s, f"BidirectionalPCMLP sizes[{i}]") for i, s in enumerate(sizes))
        self.act_fn = static(activation(act_fn, "BidirectionalPCMLP"))
        self.dendrites = bool(dendrites)
        self.clamped_errors = (not self.dendrites) if clamped_errors is None else bool(clamped_errors)
        self.node_energy = BidirectionalEnergy(float(discriminative_weight), float(generative_weight))
        outer = self.node_energy if self.clamped_errors else zero_energy
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.layers = [Linear(a, b, bias=bias, rkg=rkg) for a, b in pairs]
        self.generative_layers = [Linear(b, a, bias=bias, rkg=rkg) for a, b in pairs]
        self.vodes = [Vode((s,), self.node_energy) for s in self.sizes[1:-1]] + [Vode((self.sizes[-1],), outer)]
        self.input_vode = Vode((self.sizes[0],), outer)
        self.vodes[-1].h.frozen = True
        self.input_vode.h.frozen = True

    def _see(self, z: jax.Array) -> jax.Array:
        return jax.lax.stop_gradient(z) if self.dendrites else z

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Run one sample (both passes); returns the discriminative output prediction $u_L$."""
        if x is None:
            raise ValueError("BidirectionalPCMLP needs an input x; generate inputs from labels with model.generate(y).")
        self.input_vode.set("h", x)
        z, last = x, len(self.layers) - 1
        for i, (layer, vode) in enumerate(zip(self.layers, self.vodes)):
            u = layer(self._see(z))
            z = vode(self.act_fn(u) if i < last else u)
        if y is not None:
            self.vodes[-1].set("h", y)
        nodes = [self.input_vode, *self.vodes]
        for i, layer in enumerate(self.generative_layers):
            u = layer(self._see(nodes[i + 1].get("h")))
            nodes[i].set(GENERATIVE, self.act_fn(u) if i > 0 else u)
        return self.vodes[-1].get("u")

    def generate(self, y: jax.Array) -> jax.Array:
        """The generative pass from output values (e.g. one-hot labels) down to the input.

        $z_L = y$, $z_{\\ell-1} = f_{\\ell-1}(V_\\ell z_\\ell + c_\\ell)$, linear at the input.

        **Arguments:**

        - `y`: a batch of output values, shape ``(N, d_L)``.

        **Returns:** the generated inputs, shape ``(N, d_0)``.

        **Example:** ``images = model.generate(jax.nn.one_hot(jnp.arange(10), 10))``
        """
        layers = self.generative_layers

        def one(z: jax.Array) -> jax.Array:
            for i in range(len(layers) - 1, -1, -1):
                u = layers[i](z)
                z = self.act_fn(u) if i > 0 else u
            return z

        return jax.vmap(one)(jnp.asarray(y))
