"""Energy functions of a single `Vode`.

An energy function has the signature ``energy_fn(vode, rkg) -> scalar`` and
reads the node's activity ``vode.get("h")`` and prediction ``vode.get("u")``.
Write your own with the same signature and pass it as ``Vode(shape, energy_fn=...)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def se_energy(vode: Any, rkg: Any = None) -> jax.Array:
    """Squared-error energy of a Gaussian node with unit variance.

    $$E = \\tfrac{1}{2} \\lVert h - u \\rVert_2^2$$

    **Arguments:**

    - `vode`: the node (its ``h`` and ``u`` are read).
    - `rkg`: random key generator (unused).

    **Returns:** the scalar energy (summed over the node's elements).

    **Example:** ``Vode((64,), energy_fn=se_energy)``
    """
    error = vode.get("h") - vode.get("u")
    return 0.5 * jnp.sum(error * error)


def ce_energy(vode: Any, rkg: Any = None) -> jax.Array:
    """Cross-entropy energy of a categorical node: `u` are logits, `h` a (one-hot) target.

    $$E = -\\sum_i h_i \\log \\operatorname{softmax}(u)_i$$

    **Arguments:**

    - `vode`: the node (its ``h`` and ``u`` are read).
    - `rkg`: random key generator (unused).

    **Returns:** the scalar energy.

    **Example:** ``Vode((10,), energy_fn=ce_energy)`` as the output node of a classifier.
    """
    return -jnp.sum(vode.get("h") * jax.nn.log_softmax(vode.get("u")))


def zero_energy(vode: Any, rkg: Any = None) -> jax.Array:
    """A node without energy (e.g. a free input layer with no prior): $E = 0$.

    **Arguments:**

    - `vode`: the node (unused).
    - `rkg`: random key generator (unused).

    **Returns:** ``0.0``.

    **Example:** ``Vode((784,), energy_fn=zero_energy)``
    """
    return jnp.zeros(())
