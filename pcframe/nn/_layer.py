"""`LayerParam` and `Layer`, the generic wrapper that makes any equinox layer stateful."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax

from ..core._module import Module
from ..core._param import Param
from ..core._tree import is_param


class LayerParam(Param):
    """A trainable weight of a layer (what the weight optimiser and `save_params` select by default)."""

    saved_by_default = True


class Layer(Module):
    """Wraps an `equinox.nn` layer; its arrays become `LayerParam`s, so pcframe can track them.

    The wrapped layer is kept in ``self.nn`` with every array field replaced by
    a `LayerParam` (``layer.nn.weight``); calling the `Layer` calls the equinox
    layer with the current values. Use it directly for any equinox layer that
    pcframe does not wrap by name.

    **Arguments:**

    - `module`: an `equinox.Module` (e.g. ``eqx.nn.GRUCell(4, 8, key=RKG())``).

    **Example:**

    ```python
    gru = Layer(eqx.nn.GRUCell(4, 8, key=RKG()))
    h = gru(x, h)
    ```
    """

    def __init__(self, module: eqx.Module) -> None:
        if not isinstance(module, eqx.Module):
            raise TypeError(f"Layer wraps an equinox Module (e.g. eqx.nn.Linear), got {type(module).__name__}.")
        self.nn = jax.tree_util.tree_map(lambda x: LayerParam(x) if eqx.is_array(x) else x, module)

    def module(self) -> eqx.Module:
        """The equinox layer with the current parameter values filled in."""
        return jax.tree_util.tree_map(lambda x: x.value if isinstance(x, Param) else x, self.nn, is_leaf=is_param)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module()(*args, **kwargs)
