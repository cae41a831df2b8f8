"""Regularisers that are part of a model's energy: weight decay, spectral penalty, activity decay.

A regulariser is a small immutable object; give a model a tuple of them with
``model.regularisers = (WeightDecay(1e-4), ActivityDecay(1e-3))`` (or the model's own
``regularisers=`` argument). Every energy the engines use then reads

$$\\mathcal{F} = \\frac1N \\sum_i \\Big[\\sum_\\ell E_\\ell(z_{\\ell,i}, u_{\\ell,i}) + A(z_i)\\Big] + R(\\theta),$$

with $A$ the activity terms (per sample: they change inference) and $R$ the weight terms
(shared: they change the weight gradient only), so inference, learning, `batch_energy`
and `EnergyModule.energy` all see the same energy. The per-layer energies the engines
report stay the nodes' own $E_\\ell$.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import jax.numpy as jnp

from ..nn._layer import LayerParam


def _coefficient(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} coefficient must be a non-negative number, got {value!r}.")
    return float(value)


def weight_matrices(model: Any, params: Any = LayerParam) -> list[Any]:
    """The values of the model's weight matrices and kernels: every selected parameter with two or more axes.

    Biases and normalisation gains (one axis) are left out. A convolution kernel of
    shape ``(C_out, C_in, *kernel)`` counts as the matrix ``(C_out, C_in * prod(kernel))``
    in `SpectralPenalty`.

    **Arguments:**

    - `model`: a pcframe `Module`.
    - `params`: a filter of the parameters to consider (a `Param` type, ``m(...)`` or a predicate;
      default: the weights, `LayerParam`).

    **Returns:** a list of arrays, in the order of ``model.parameters()``.

    **Example:** ``[w.shape for w in weight_matrices(PCMLP([4, 8, 2]))]  # [(8, 4), (2, 8)]``
    """
    return [p.value for p in model.parameters(params) if p.value is not None and jnp.ndim(p.value) >= 2]


@dataclasses.dataclass(frozen=True)
class AbstractRegulariser(abc.ABC):
    """Base class of energy regularisers: subclass it and implement `__call__`.

    ``regulariser(model)`` returns the term added to the energy of *one sample*, read
    while the model runs that sample (activities are per sample, weights shared).
    Subclasses are frozen dataclasses, so a model holding them compiles once per value.
    """

    @abc.abstractmethod
    def __call__(self, model: Any) -> Any:
        """The regularisation term of one sample.

        **Arguments:**

        - `model`: the `EnergyModule` being evaluated (its activities hold one sample).

        **Returns:** a scalar.
        """


@dataclasses.dataclass(frozen=True)
class WeightDecay(AbstractRegulariser):
    """$\\ell^2$ weight decay in the energy, $R(\\theta) = \\tfrac{\\lambda}{2}\\sum_\\ell \\lVert W_\\ell\\rVert_F^2$.

    Sums over every weight matrix and convolution kernel of the model (`weight_matrices`:
    every `LayerParam` with two or more axes), whatever the layer type. JPC's
    ``pc_energy_fn(weight_decay=...)`` has the same formula but only visits layers with a
    ``.weight`` attribute, which its own ``make_mlp`` layers (``Sequential``) do not have,
    so there it adds nothing.

    **Arguments:**

    - `coefficient`: $\\lambda \\ge 0$.
    - `params`: a filter of the parameters it applies to (default `LayerParam`: every weight of the model;
      e.g. ``m(LayerParam).has(decay=True)`` after tagging some weights with ``param.decay = True``).

    **Example:** ``model.regularisers = (WeightDecay(1e-4),)``
    """

    coefficient: float
    params: Any = LayerParam

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficient", _coefficient(self.coefficient, "WeightDecay"))

    def __call__(self, model: Any) -> Any:
        """$\\tfrac{\\lambda}{2}\\sum_\\ell \\lVert W_\\ell\\rVert_F^2$ for `model`'s selected weights."""
        return 0.5 * self.coefficient * sum(jnp.sum(w**2) for w in weight_matrices(model, self.params))


@dataclasses.dataclass(frozen=True)
class SpectralPenalty(AbstractRegulariser):
    """A penalty pulling weights towards orthogonal columns, $R(\\theta) = \\tfrac{\\lambda}{2}\\sum_\\ell \\lVert W_\\ell^\\top W_\\ell - I\\rVert_F^2$.

    $W_\\ell$ has shape ``(out, in)`` (a kernel is flattened to ``(C_out, C_in * prod(kernel))``),
    so $I$ is ``in x in``: JPC's formula. It applies to every weight matrix and kernel
    (`weight_matrices`), where JPC's only reaches layers with a ``.weight`` attribute (none
    of its ``make_mlp`` layers).

    JPC's predictive-dendrites energy (``pdm_energy_fn(spectral_penalty=λ)``) differs in three
    ways: it takes the smaller Gram matrix ($\\lVert W W^\\top - I\\rVert_F^2$ when ``out < in``),
    has no factor $\\tfrac12$, and reaches only the forward weights of the hidden layers. The
    two Gram matrices share their non-zero eigenvalues, so the two forms differ by the constant
    ``in - out`` and have the same gradient. Tag those weights and use twice the coefficient:
    the gradients are JPC's exactly, the value is JPC's plus $\\lambda\\sum_\\ell \\max(0,
    \\mathrm{in}_\\ell - \\mathrm{out}_\\ell)$::

        for layer in model.layers[:-1]:   # a BidirectionalPCMLP(..., dendrites=True)
            layer.nn.weight.spectral = True
        model.regularisers = (SpectralPenalty(2 * lam, m(LayerParam).has(spectral=True)),)

    **Arguments:**

    - `coefficient`: $\\lambda \\ge 0$.
    - `params`: a filter of the parameters it applies to (default `LayerParam`, every weight).

    **Example:** ``model.regularisers = (SpectralPenalty(1e-3),)``
    """

    coefficient: float
    params: Any = LayerParam

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficient", _coefficient(self.coefficient, "SpectralPenalty"))

    def __call__(self, model: Any) -> Any:
        """$\\tfrac{\\lambda}{2}\\sum_\\ell \\lVert W_\\ell^\\top W_\\ell - I\\rVert_F^2$ for `model`'s weights."""
        total = 0.0
        for w in weight_matrices(model, self.params):
            w = jnp.reshape(w, (w.shape[0], -1))
            total = total + jnp.sum((w.T @ w - jnp.eye(w.shape[1], dtype=w.dtype)) ** 2)
        return 0.5 * self.coefficient * total


@dataclasses.dataclass(frozen=True)
class ActivityDecay(AbstractRegulariser):
    """$\\ell^2$ decay of the free activities, per sample $A(z_i) = \\tfrac{\\lambda}{2}\\sum_\\ell \\lVert z_{\\ell,i}\\rVert^2$.

    The sum runs over the nodes whose activity inference moves (``h`` not frozen): the
    hidden nodes, and a free input layer. A clamped output is not penalised: its value
    is the target. JPC's ``pc_energy_fn(activity_decay=...)`` also adds the last entry of
    its activity list, which plays no part in its energy (the output is ``y``); on the
    entries both use, the two agree (JPC takes the batch mean, as the engines do).

    **Arguments:**

    - `coefficient`: $\\lambda \\ge 0$.

    **Example:** ``model.regularisers = (ActivityDecay(1e-3),)``
    """

    coefficient: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficient", _coefficient(self.coefficient, "ActivityDecay"))

    def __call__(self, model: Any) -> Any:
        """$\\tfrac{\\lambda}{2}\\sum_\\ell \\lVert z_\\ell\\rVert^2$ over `model`'s free activities (one sample)."""
        free = [v.h.value for v in model.iter_vodes() if not v.h.__dict__.get("frozen", False)]
        return 0.5 * self.coefficient * sum(jnp.sum(z**2) for z in free if z is not None)


def check_regularisers(regularisers: Any, where: str) -> tuple[AbstractRegulariser, ...]:
    """`regularisers` as a tuple of `AbstractRegulariser`s, or an error saying what to pass.

    **Arguments:**

    - `regularisers`: a regulariser, or a tuple or list of them.
    - `where`: who asks (for the error message).

    **Returns:** a tuple.

    **Example:** ``check_regularisers(WeightDecay(0.1), "PCMLP")  # (WeightDecay(coefficient=0.1),)``
    """
    if isinstance(regularisers, AbstractRegulariser):
        regularisers = (regularisers,)
    if not isinstance(regularisers, (tuple, list)) or not all(isinstance(r, AbstractRegulariser) for r in regularisers):
        raise TypeError(
            f"{where}: regularisers must be a tuple of pcframe.pc regularisers such as (WeightDecay(1e-4),), "
            f"got {regularisers!r}."
        )
    return tuple(regularisers)
