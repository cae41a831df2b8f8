"""`ResidualPCMLP`: a residual PC multilayer perceptron with a chosen parametrisation (μPC by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._checks import positive_int
from ..nn._layer import Layer
from ..nn._linear import Linear
from ..pc._energies import se_energy
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._activations import activation
from ._parametrisation import AbstractParametrisation, MuPC, check_parametrisation


def init_weight(layer: Layer, parametrisation: AbstractParametrisation, fan_in: int, rkg: RandomKeyGenerator) -> None:
    """Draw `layer`'s weight (``layer.nn.weight``) from `parametrisation`, in place.

    **Arguments:**

    - `layer`: a `Linear` or `Conv`.
    - `parametrisation`: the parametrisation that draws it.
    - `fan_in`: the layer's fan-in.
    - `rkg`: the random key generator.

    **Example:** ``init_weight(Linear(784, 128, bias=False), MuPC(), 784, RKG)``
    """
    weight = layer.nn.weight
    weight.value = parametrisation.init(rkg(), weight.value.shape, fan_in).astype(weight.value.dtype)


def check_depth(depth: Any, where: str) -> int:
    """`depth` (the number of weight layers), at least 2 (an input and an output layer)."""
    depth = positive_int(depth, f"{where} depth")
    if depth < 2:
        raise ValueError(f"{where} depth counts weight layers (input, blocks, output): at least 2, got {depth}.")
    return depth


class ResidualPCMLP(EnergyModule):
    """A residual PC network of $L$ = `depth` fully connected layers (μPC's architecture), following the engines' protocol.

    $$u_1 = a_1 W_1 x, \\qquad u_\\ell = z_{\\ell-1} + a_\\ell W_\\ell \\phi(z_{\\ell-1})\\ (1<\\ell<L),
      \\qquad u_L = a_L W_L \\phi(z_{L-1}),$$

    with one node $z_\\ell$ per layer (squared-error energy on the $L-1$ hidden nodes,
    `output_energy` on the output node, clamped to the target). The multipliers $a_\\ell$
    and the weight distribution come from `parametrisation` (`MuPC` by default:
    $a_1 = 1/\\sqrt{D}$, $a_\\ell = 1/\\sqrt{N L}$, $a_L = 1/(\\gamma N)$, $W \\sim \\mathcal N(0,1)$).
    This is JPC's ``make_mlp(key, input_dim, width, depth, output_dim, act_fn, use_bias,
    param_type)`` with ``make_skip_model(depth)``: pre-activation layers, no skip into the
    first hidden node nor into the output. Unlike JPC, the parametrisation (with its
    `gamma`) belongs to the model, so every engine step uses it, and each multiplier uses
    its own layer's fan-in rather than a width read from the first layer.

    With ``skips=False`` the hidden nodes lose their identity path, $u_\\ell = a_\\ell W_\\ell
    \\phi(z_{\\ell-1})$, and the branch multiplier loses its depth factor ($a_\\ell = 1/\\sqrt{N}$
    under `MuPC` and `NeuralTangentParametrisation`): JPC's ``make_mlp`` without a skip model,
    the pre-activation layout in which JPC's networks (μPC's included) port unchanged.

    **Arguments:**

    - `input_dim`: $D$.
    - `width`: $N$, the width of every hidden node.
    - `depth`: $L$, the number of weight layers (at least 2).
    - `output_dim`: the width of the output.
    - `act_fn`: $\\phi$, a function or one of JPC's names (``"relu"``, ``"tanh"``, ...).
    - `parametrisation`: `MuPC()`, `StandardParametrisation()`, `NeuralTangentParametrisation()` or your own.
    - `output_energy`: energy of the output node (`se_energy` or `ce_energy`).
    - `bias`: give every layer a bias (inside the multiplier, as JPC: $a_\\ell(W_\\ell h + b_\\ell)$).
    - `skips`: the identity path into each hidden node after the first (JPC's ``make_skip_model``).
    - `regularisers`: energy regularisers (e.g. ``(WeightDecay(1e-4),)``), see `pcframe.pc.WeightDecay`.
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = ResidualPCMLP(784, 128, 128, 10, act_fn="relu", parametrisation=MuPC())
    optim_w = Optim(optax.adam(1e-1), Mask(LayerParam)(model))
    train_supervised(model, optim_w, x, y, inference=DiscreteInference(step_size=0.5, steps=128, batch_mean=True))
    ```
    """

    def __init__(
        self,
        input_dim: int,
        width: int,
        depth: int,
        output_dim: int,
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.relu,
        parametrisation: AbstractParametrisation = MuPC(),
        output_energy: Callable[..., Any] = se_energy,
        bias: bool = False,
        regularisers: tuple = (),
        skips: bool = True,
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        where = type(self).__name__
        self.input_dim = positive_int(input_dim, f"{where} input_dim")
        self.width = positive_int(width, f"{where} width")
        self.depth = check_depth(depth, where)
        self.output_dim = positive_int(output_dim, f"{where} output_dim")
        self.parametrisation = check_parametrisation(parametrisation, where)
        if not callable(output_energy):
            raise TypeError(
                f"{where} output_energy must be an energy function such as se_energy, got {output_energy!r}."
            )
        self.act_fn = static(activation(act_fn, where))
        sizes = [self.input_dim] + [self.width] * (self.depth - 1) + [self.output_dim]
        self.layers = [Linear(a, b, bias=bias, rkg=rkg) for a, b in zip(sizes[:-1], sizes[1:])]
        for layer, fan_in in zip(self.layers, sizes[:-1]):
            init_weight(layer, parametrisation, fan_in, rkg)
        if not isinstance(skips, bool):
            raise TypeError(f"{where} skips must be True or False, got {skips!r}.")
        self.skips = skips
        p, n = parametrisation, self.width
        branches = self.depth if skips else 1  # residual branches are scaled down by the depth they are summed over
        self.scales = (
            p.input_scale(self.input_dim),
            *[p.hidden_scale(n, branches)] * (self.depth - 2),
            p.output_multiplier(n),
        )
        self.vodes = [Vode((n,)) for _ in range(self.depth - 1)] + [Vode((self.output_dim,), output_energy)]
        self.vodes[-1].h.frozen = True
        self.regularisers = regularisers

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Run one sample ``x`` of shape ``(input_dim,)``; returns the output prediction $u_L$."""
        if x is None or jnp.shape(x) != (self.input_dim,):
            got = None if x is None else tuple(jnp.shape(x))
            raise ValueError(f"{type(self).__name__} takes one input sample of shape ({self.input_dim},), got {got}.")
        z = self.vodes[0](self.scales[0] * self.layers[0](x))
        for layer, vode, scale in zip(self.layers[1:-1], self.vodes[1:-1], self.scales[1:-1]):
            branch = scale * layer(self.act_fn(z))
            z = vode(z + branch if self.skips else branch)
        self.vodes[-1](self.scales[-1] * self.layers[-1](self.act_fn(z)))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")
