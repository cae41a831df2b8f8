"""`ResidualPCConvNet`: a convolutional residual PC network with a chosen parametrisation (μPC by default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core._param import static
from ..core._random import RKG, RandomKeyGenerator
from ..nn._checks import positive_int, positive_ints
from ..nn._conv import Conv
from ..nn._linear import Linear
from ..pc._energies import se_energy
from ..pc._energy_module import EnergyModule
from ..pc._vode import Vode
from ._activations import activation
from ._parametrisation import AbstractParametrisation, MuPC, check_parametrisation
from ._resmlp import check_depth, init_weight


class ResidualPCConvNet(EnergyModule):
    """A convolutional residual PC network of $L$ = `depth` weight layers, following the engines' protocol.

    $$u_1 = a_1 W_1 * x, \\qquad u_\\ell = z_{\\ell-1} + a_\\ell W_\\ell * \\phi(z_{\\ell-1})\\ (1<\\ell<L),
      \\qquad u_L = a_L W_L\\, \\mathrm{mean}_{hw}\\,\\phi(z_{L-1}),$$

    "same"-padded $k \\times k$ convolutions keep every hidden node at ``(C, H, W)``; the
    output layer reads the spatial mean of each channel. The multipliers use each layer's
    own fan-in: $D = C_0 k^2$ at the input, $N = C k^2$ in the blocks and $N = C$ at the
    read-out, so with `MuPC` $a_1 = 1/\\sqrt{C_0 k^2}$, $a_\\ell = 1/\\sqrt{C k^2 L}$,
    $a_L = 1/(\\gamma C)$ and $W \\sim \\mathcal N(0, 1)$. (JPC's μPC only covers its own MLP
    layout.) Hidden nodes have the squared-error energy, the output node `output_energy`,
    clamped to the target.

    **Arguments:**

    - `in_channels`: $C_0$.
    - `channels`: $C$, the channels of every hidden node.
    - `depth`: $L$, the number of weight layers (at least 2).
    - `num_classes`: the width of the output.
    - `image_size`: ``H`` (square) or ``(H, W)``.
    - `kernel_size`: the odd kernel size $k$.
    - `act_fn`: $\\phi$, a function or one of JPC's names.
    - `parametrisation`: `MuPC()`, `StandardParametrisation()`, `NeuralTangentParametrisation()` or your own.
    - `output_energy`: energy of the output node (`se_energy` or `ce_energy`).
    - `regularisers`: energy regularisers (see `pcframe.pc.WeightDecay`).
    - `rkg`: key generator for the weight initialisation.

    **Example:**

    ```python
    model = ResidualPCConvNet(1, 16, 32, 10, image_size=8, parametrisation=MuPC())
    train_supervised(model, optim_w, x, y, inference=DiscreteInference(step_size=0.1, steps=32))
    ```
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        depth: int,
        num_classes: int,
        image_size: int | Sequence[int],
        kernel_size: int = 3,
        act_fn: Callable[[jax.Array], jax.Array] | str = jax.nn.relu,
        parametrisation: AbstractParametrisation = MuPC(),
        output_energy: Callable[..., Any] = se_energy,
        regularisers: tuple = (),
        *,
        rkg: RandomKeyGenerator = RKG,
    ) -> None:
        where = type(self).__name__
        self.in_channels = positive_int(in_channels, f"{where} in_channels")
        self.channels = positive_int(channels, f"{where} channels")
        self.depth = check_depth(depth, where)
        self.num_classes = positive_int(num_classes, f"{where} num_classes")
        self.image_size = positive_ints(image_size, f"{where} image_size (height, width)", 2)
        k = positive_int(kernel_size, f"{where} kernel_size")
        if k % 2 == 0:
            raise ValueError(f"{where} kernel_size must be odd (same padding), got {k}.")
        self.parametrisation = check_parametrisation(parametrisation, where)
        self.act_fn = static(activation(act_fn, where))
        c0, c = self.in_channels, self.channels
        self.convs = [Conv(2, c0, c, k, padding=k // 2, bias=False, rkg=rkg)]
        self.convs += [Conv(2, c, c, k, padding=k // 2, bias=False, rkg=rkg) for _ in range(self.depth - 2)]
        self.head = Linear(c, self.num_classes, bias=False, rkg=rkg)
        for conv, fan_in in zip(self.convs, [c0 * k * k] + [c * k * k] * (self.depth - 2)):
            init_weight(conv, parametrisation, fan_in, rkg)
        init_weight(self.head, parametrisation, c, rkg)
        p = parametrisation
        self.scales = (
            p.input_scale(c0 * k * k),
            *[p.hidden_scale(c * k * k, self.depth)] * (self.depth - 2),
            p.output_multiplier(c),
        )
        self.vodes = [Vode((c, *self.image_size)) for _ in range(self.depth - 1)]
        self.vodes.append(Vode((self.num_classes,), output_energy))
        self.vodes[-1].h.frozen = True
        self.regularisers = regularisers

    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Run one channels-first sample ``x`` of shape ``(C_0, H, W)``; returns the class scores $u_L$."""
        expected = (self.in_channels, *self.image_size)
        if x is None or jnp.shape(x) != expected:
            got = None if x is None else tuple(jnp.shape(x))
            raise ValueError(
                f"{type(self).__name__} takes one sample of shape {expected} (batches are vmapped), got {got}."
            )
        z = self.vodes[0](self.scales[0] * self.convs[0](x))
        for conv, vode, scale in zip(self.convs[1:], self.vodes[1:-1], self.scales[1:-1]):
            z = vode(z + scale * conv(self.act_fn(z)))
        pooled = jnp.mean(self.act_fn(z), axis=(1, 2))
        self.vodes[-1](self.scales[-1] * self.head(pooled))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")
