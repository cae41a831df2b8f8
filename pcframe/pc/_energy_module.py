"""`EnergyModule`: a model whose energy is the sum of its nodes' energies."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ..core._module import Module
from ._regularisers import AbstractRegulariser, check_regularisers
from ._vode import Vode


class EnergyModule(Module):
    """Base class for predictive coding models.

    Subclass it, put `Vode`s between ordinary layers, and call them in
    ``__call__``. The model's energy is the sum of its nodes' energies,

    $$\\mathcal{F} = \\sum_{\\ell} E_\\ell(h_\\ell, u_\\ell),$$

    which inference minimises w.r.t. the activities and learning w.r.t. the weights.
    Regularisers set with ``model.regularisers = (WeightDecay(1e-4), ...)`` add their
    terms to it (see `pcframe.pc.WeightDecay`).

    **Example:**

    ```python
    class Model(EnergyModule):
        def __init__(self):
            self.layer = nn.Linear(2, 3)
            self.vode = Vode((3,))
        def __call__(self, x):
            return self.vode(self.layer(x))
    ```
    """

    @property
    def regularisers(self) -> tuple[AbstractRegulariser, ...]:
        """The energy regularisers of this model (empty by default); assign a tuple to set them."""
        return self.__dict__.get("_regularisers", ())

    @regularisers.setter
    def regularisers(self, value: Any) -> None:
        object.__setattr__(self, "_regularisers", check_regularisers(value, type(self).__name__))

    def regularisation(self) -> Any:
        """The sum of the regularisers' terms for the sample the model holds (`None` without regularisers)."""
        if not self.regularisers:
            return None
        return sum(regulariser(self) for regulariser in self.regularisers)

    def iter_vodes(self) -> list[Vode]:
        """Every `Vode` of the model, in depth-first attribute order."""
        return [m for m in self.modules() if isinstance(m, Vode)]

    def energies(self) -> list[Any]:
        """The energy of each `Vode`, in the order of `iter_vodes`."""
        return [vode.energy() for vode in self.iter_vodes()]

    def energy(self) -> Any:
        """The total energy: the sum of every `Vode`'s energy, plus the `regularisation` if any."""
        energies = self.energies()
        if not energies:
            raise ValueError(f"{type(self).__name__} has no Vode, so it has no energy. Add Vode nodes to the model.")
        return with_regularisation(self, jnp.sum(jnp.stack([jnp.sum(e) for e in energies])))


def with_regularisation(model: EnergyModule, energy: Any) -> Any:
    """`energy` plus ``model.regularisation()`` (unchanged when the model has no regulariser).

    **Arguments:**

    - `model`: the model being evaluated (one sample).
    - `energy`: the sum of its nodes' energies.

    **Returns:** the regularised energy.

    **Example:** ``total = with_regularisation(model, jnp.sum(per_layer))``
    """
    extra = model.regularisation()
    return energy if extra is None else energy + extra
