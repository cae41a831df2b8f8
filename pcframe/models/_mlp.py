"""`PCMLP`: a ready-made predictive coding multilayer perceptron."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._checks import positive_int
from ..nn._linear import Linear
from ..pc._energies import se_energy, zero_energy
from ..pc._energy_module import EnergyModule
from ..pc._status import STATUS
from ..pc._vode import Vode
from ._activations import activation


def _zeros(vode: Vode, key: str, value: Any, rkg: Any) -> jax.Array:
    return jnp.zeros(vode.shape)


class PCMLP(EnergyModule):
    """A PC network of fully connected layers, following the engines' model protocol.

    Layer $\\ell$ predicts the activity above it,

    $$u_\\ell = f_\\ell(W_\\ell z_{\\ell-1} + b_\\ell) \\;[+\\, z_{\\ell-1} \\text{ with skip connections}],$$

    and node $\\ell$ holds $z_\\ell$ with energy $E_\\ell(z_\\ell, u_\\ell)$ (squared error on hidden
    nodes, `output_energy` on the last). ``model(x, y)`` runs one sample: `x` is the input
    (clamped), `y`, when given, is clamped at the output node (frozen). With
    ``free_input=True`` the input is itself a free activity with no prior (a generative
    model, the input layer inferred from the output); call it as ``model(None, y)``.

    **Arguments:**

    - `sizes`: ``[d_0, d_1, ..., d_L]`` (input, hidden..., output widths).
    - `act_fn`: $f$ for hidden layers (the output layer is linear): a function, or one of JPC's
      names (``"linear"``, ``"tanh"``, ``"hard_tanh"``, ``"relu"``, ``"leaky_relu"``, ``"gelu"``,
      ``"selu"``, ``"silu"``).
    - `output_energy`: energy of the output node (`se_energy` or `ce_energy`).
    - `free_input`: infer the input layer instead of clamping it.
    - `skip`: add identity skip connections between hidden layers of equal width.
    - `bias`: use biases.
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = PCMLP([784, 128, 128, 10], act_fn=jnp.tanh)
    metrics = train_supervised(model, optim_w, x, one_hot_y, inference=DiscreteInference(optax.sgd(0.1), 20))
    ```
    """

    def __init__(
        self,
        sizes: Sequence[int],
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.tanh,
        output_energy: Callable[..., Any] = se_energy,
        free_input: bool = False,
        skip: bool = False,
        bias: bool = True,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(
                f"PCMLP sizes must be a list of layer widths, input first, e.g. [784, 128, 10]; got {sizes!r}."
            )
        if len(sizes) < 2:
            raise ValueError(f"PCMLP needs at least an input and an output size, got sizes={list(sizes)}.")
        self.sizes = tuple(positive_int(s, f"PCMLP sizes[{i}]") for i, s in enumerate(sizes))
        if not callable(output_energy):
            raise TypeError(f"PCMLP output_energy must be an energy function such as se_energy, got {output_energy!r}.")
        self.act_fn = static(activation(act_fn, "PCMLP"))
        self.free_input = free_input
        self.skip = skip
        self.layers = [Linear(a, b, bias=bias, rkg=rkg) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self.vodes = [Vode((s,)) for s in self.sizes[1:-1]] + [Vode((self.sizes[-1],), output_energy)]
        self.vodes[-1].h.frozen = True
        if free_input:
            self.input_vode = Vode(
                (self.sizes[0],), zero_energy, ruleset={STATUS.INIT: ("h, u <- u:zeros",)}, tforms={"zeros": _zeros}
            )

    def __call__(self, x: jax.Array | None = None, y: jax.Array | None = None) -> jax.Array:
        """Run one sample; returns the output prediction $u_L$."""
        if self.free_input:
            if x is not None:
                raise ValueError("PCMLP(free_input=True) infers its input: call it as model(None, y).")
            z = self.input_vode(jnp.zeros(()))
        elif x is None:
            raise ValueError("PCMLP needs an input x (or build it with free_input=True for a generative model).")
        else:
            z = x
        last = len(self.layers) - 1
        for i, (layer, vode) in enumerate(zip(self.layers, self.vodes)):
            u = layer(z)
            if i < last:
                u = self.act_fn(u)
                if self.skip and i > 0 and u.shape == z.shape:
                    u = u + z
            z = vode(u)
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")
