"""Random key generators whose state is a tracked `Param`."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ._module import Module
from ._param import Param
from ._tracing import serialised


class RandomKeyParam(Param):
    """The `Param` type holding a generator's current PRNG key.

    pcframe's `vmap` gives every batch element its own key by splitting
    parameters of this type along the batch axis.
    """


class RandomKeyGenerator(Module):
    """A stateful source of JAX PRNG keys: each call returns a fresh key.

    Its key lives in a `RandomKeyParam`, so inside pcframe transforms the key is
    traced and advanced like any other state: a jitted function that draws keys
    returns different numbers on every call, and inside `vmap` each batch
    element draws from its own stream. The global generator is `RKG`.

    **Arguments:**

    - `seed`: integer seed.

    **Example:**

    ```python
    rkg = RandomKeyGenerator(0)
    noise = jax.random.normal(rkg(), (3,))
    ```
    """

    def __init__(self, seed: int = 0) -> None:
        self.key = RandomKeyParam(_initial_key(seed))

    @serialised
    def seed(self, seed: int) -> None:
        """Reset the generator to the stream of `seed`."""
        self.key.value = jax.random.PRNGKey(seed)

    @serialised
    def __call__(self, n: int | None = None) -> jax.Array:
        """Return one new key, or an array of `n` keys, and advance the generator.

        **Arguments:**

        - `n`: number of keys to return (default: a single key).
        """
        if n is None:
            self.key.value, subkey = jax.random.split(self.key.value)
            return subkey
        keys = jax.random.split(self.key.value, n + 1)
        self.key.value = keys[0]
        return keys[1:]


def _initial_key(seed: int) -> Any:
    """``jax.random.PRNGKey(seed)``, as a NumPy array where that is the same key, so nothing starts JAX's backend.

    Creating a generator (the global `RKG` at import) then leaves JAX uninitialised, and
    `jax.distributed.initialize` can still be called after ``import pcframe``. The threefry key
    of a seed $0 \\le s < 2^{32}$ is the pair ``(0, s)``; other seeds and key types take JAX's path.
    """
    if jax.config.jax_default_prng_impl == "threefry2x32" and isinstance(seed, int) and 0 <= seed < 2**32:
        return np.array([0, seed], dtype=np.uint32)
    return jax.random.PRNGKey(seed)


RKG = RandomKeyGenerator(0)
"""The global random key generator (seed 0 until `RKG.seed(...)` is called)."""
