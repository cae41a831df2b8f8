"""Parametrisations of residual networks: how weights are drawn and how each layer's output is scaled.

A residual PC network of $L$ weight layers (input layer, $L-2$ residual blocks, output
layer) predicts

$$u_1 = a_1 W_1 x, \\qquad u_\\ell = z_{\\ell-1} + a_\\ell W_\\ell \\phi(z_{\\ell-1})\\ (1<\\ell<L),
  \\qquad u_L = a_L W_L \\phi(z_{L-1}),$$

and a parametrisation gives the multipliers $a_\\ell$ and the distribution of $W_\\ell$
from each layer's own fan-in $n$ (a width, or ``C_in * prod(kernel)`` for a convolution)
and the depth $L$. Parametrisations are immutable objects passed to the models
(`ResidualPCMLP`, `ResidualPCConvNet`).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class AbstractParametrisation(abc.ABC):
    """Base class of parametrisations: weight initialisation and per-layer forward multipliers.

    Subclass it and implement `init`, `input_scale`, `hidden_scale` and `output_scale`;
    every method gets the fan-in $n$ of the layer it is asked about. Every parametrisation
    takes `gamma`, which divides the output multiplier (the models use
    `output_multiplier` $= a_L/\\gamma$): JPC's ``gamma``, on every parametrisation.

    **Arguments:**

    - `gamma`: $\\gamma > 0$ (default 1).
    """

    gamma: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or not self.gamma > 0:
            raise ValueError(f"{type(self).__name__} gamma must be a positive number, got {self.gamma!r}.")
        object.__setattr__(self, "gamma", float(self.gamma))

    def output_multiplier(self, fan_in: int) -> float:
        """$a_L / \\gamma$, the multiplier the models apply to the output layer."""
        return self.output_scale(fan_in) / self.gamma

    @abc.abstractmethod
    def init(self, key: Any, shape: tuple[int, ...], fan_in: int) -> jax.Array:
        """A freshly drawn weight array.

        **Arguments:**

        - `key`: a JAX random key.
        - `shape`: the weight's shape (``(out, in)`` or ``(C_out, C_in, *kernel)``).
        - `fan_in`: the layer's fan-in $n$.

        **Returns:** an array of `shape`.
        """

    @abc.abstractmethod
    def input_scale(self, fan_in: int) -> float:
        """$a_1$, the multiplier of the input layer.

        **Arguments:**

        - `fan_in`: the input layer's fan-in $D$.

        **Returns:** a float.
        """

    @abc.abstractmethod
    def hidden_scale(self, fan_in: int, depth: int) -> float:
        """$a_\\ell$, the multiplier of a residual block's branch.

        **Arguments:**

        - `fan_in`: the block's fan-in $N$.
        - `depth`: the number of weight layers $L$ of the network.

        **Returns:** a float.
        """

    @abc.abstractmethod
    def output_scale(self, fan_in: int) -> float:
        """$a_L$, the multiplier of the output layer.

        **Arguments:**

        - `fan_in`: the output layer's fan-in $N$.

        **Returns:** a float.
        """


def _uniform(key: Any, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)


@dataclasses.dataclass(frozen=True)
class StandardParametrisation(AbstractParametrisation):
    """The standard parametrisation (JPC's ``"sp"``): every $a_\\ell = 1$, $W \\sim U(-1/\\sqrt{n}, 1/\\sqrt{n})$.

    The initialisation of `equinox.nn.Linear` (and JPC's ``make_mlp(param_type="sp")``).
    Residual branches are not scaled down with depth, so the forward pass of a deep
    residual network grows with $L$: this is the baseline μPC fixes.

    **Arguments:**

    - `gamma`: $\\gamma > 0$, dividing $a_L$ (default 1).

    **Example:** ``ResidualPCMLP(784, 128, 32, 10, parametrisation=StandardParametrisation())``
    """

    def init(self, key: Any, shape: tuple[int, ...], fan_in: int) -> jax.Array:
        """$W \\sim U(-1/\\sqrt{n}, 1/\\sqrt{n})$."""
        return _uniform(key, shape, fan_in)

    def input_scale(self, fan_in: int) -> float:
        """$a_1 = 1$."""
        return 1.0

    def hidden_scale(self, fan_in: int, depth: int) -> float:
        """$a_\\ell = 1$."""
        return 1.0

    def output_scale(self, fan_in: int) -> float:
        """$a_L = 1$."""
        return 1.0


@dataclasses.dataclass(frozen=True)
class _UnitGaussianDepthScaled(AbstractParametrisation):
    """Unit-Gaussian weights, $1/\\sqrt{D}$ at the input and $1/\\sqrt{N L}$ on each residual branch."""

    def init(self, key: Any, shape: tuple[int, ...], fan_in: int) -> jax.Array:
        """$W \\sim \\mathcal{N}(0, 1)$."""
        return jax.random.normal(key, shape)

    def input_scale(self, fan_in: int) -> float:
        """$a_1 = 1/\\sqrt{D}$."""
        return 1.0 / math.sqrt(fan_in)

    def hidden_scale(self, fan_in: int, depth: int) -> float:
        """$a_\\ell = 1/\\sqrt{N L}$."""
        return 1.0 / math.sqrt(fan_in * depth)


@dataclasses.dataclass(frozen=True)
class MuPC(_UnitGaussianDepthScaled):
    """μPC (Innocenti et al., "μPC: Scaling Predictive Coding to 100+ Layer Networks"): Depth-μP for PC.

    $W \\sim \\mathcal{N}(0, 1)$ and

    $$a_1 = \\frac{1}{\\sqrt{D}}, \\qquad a_\\ell = \\frac{1}{\\sqrt{N L}}, \\qquad \\frac{a_L}{\\gamma} = \\frac{1}{\\gamma N},$$

    with $D$ the input layer's fan-in, $N$ each layer's own fan-in, $L$ the number of
    weight layers and $\\gamma$ the output multiplier's extra factor (JPC's ``gamma``:
    its output scaling divided by ``gamma``). On JPC's layout (``make_mlp(...,
    param_type="mupc")`` with ``make_skip_model``) these are JPC's scalings. The differences:

    - $N$ is each layer's own fan-in (for a convolution ``C * k * k`` in the blocks and
      ``C`` at the pooled read-out); JPC reads one width from its first layer
      (``model[0][1].weight.shape[0]``), so it needs its own model layout;
    - `gamma` is part of the model, so every engine (`train_supervised`, `ODEInference`,
      evaluation) uses it; JPC's ``make_pc_step`` has no ``gamma`` argument.

    **Arguments:**

    - `gamma`: $\\gamma > 0$ (default 1).

    **Example:** ``ResidualPCMLP(784, 128, 128, 10, act_fn="relu", parametrisation=MuPC(gamma=0.5))``
    """

    def output_scale(self, fan_in: int) -> float:
        """$a_L = 1/N$ (the models divide it by $\\gamma$)."""
        return 1.0 / fan_in


@dataclasses.dataclass(frozen=True)
class NeuralTangentParametrisation(_UnitGaussianDepthScaled):
    """The neural tangent parametrisation (JPC's ``"ntp"``) of a residual network.

    $W \\sim \\mathcal{N}(0, 1)$, $a_1 = 1/\\sqrt{D}$, $a_\\ell = 1/\\sqrt{N L}$ (JPC's residual
    branch scaling) and $a_L = 1/\\sqrt{N}$. The multipliers are JPC's; the initialisation
    differs: JPC's ``make_mlp(param_type="ntp")`` keeps equinox's
    $U(-1/\\sqrt{n}, 1/\\sqrt{n})$ weights, so with its $1/\\sqrt{n}$ multipliers every
    layer's output shrinks like $1/n$, where the NTP draws unit-variance weights.

    **Arguments:**

    - `gamma`: $\\gamma > 0$, dividing $a_L$ (default 1).

    **Example:** ``ResidualPCMLP(784, 128, 8, 10, parametrisation=NeuralTangentParametrisation())``
    """

    def output_scale(self, fan_in: int) -> float:
        """$a_L = 1/\\sqrt{N}$."""
        return 1.0 / math.sqrt(fan_in)


def check_parametrisation(parametrisation: Any, where: str) -> AbstractParametrisation:
    """`parametrisation` itself, or an error naming the objects to pass instead of a string."""
    if not isinstance(parametrisation, AbstractParametrisation):
        raise TypeError(
            f"{where}: parametrisation must be an object such as MuPC(), StandardParametrisation() or "
            f"NeuralTangentParametrisation() (from pcframe.models), got {parametrisation!r}."
        )
    return parametrisation
