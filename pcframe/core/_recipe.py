"""`Recipe`: how a call rebuilds one keyword argument around its traced values."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from ._config import Config, is_hyperparameter
from ._walk import DATA, Walk, freeze


class Recipe(NamedTuple):
    """How a call rebuilds one keyword argument around its traced values.

    - `kind`: ``"array"`` (the argument is one traced array), ``"module"`` (the module itself,
      held weakly: `obj` is a weak reference), ``"tree"`` or ``"config"`` (rebuilt from `treedef`
      and `kept`, whose `DATA` entries take traced values; a config's own values are `data`), or
      ``"object"`` (passed as it is: `obj`).
    """

    kind: str
    treedef: Any = None
    kept: tuple = ()
    obj: Any = None
    data: tuple = ()

    @property
    def n_data(self) -> int:
        """How many traced values the argument takes."""
        if self.kind == "array":
            return 1
        return sum(leaf is DATA for leaf in self.kept)


def config_recipe(config: Config, name: str, walk: Walk) -> Recipe:
    """The recipe of a `Config`: its hyperparameters traced, the rest static."""
    leaves, treedef = jax.tree_util.tree_flatten(config)
    walk.signature.append(("kwarg config", name, treedef))
    kept, hyperparameters = [], []
    for leaf in leaves:
        if is_hyperparameter(leaf):
            walk.signature.append(("data",))
            hyperparameters.append(leaf)
            kept.append(DATA)
        else:
            walk.signature.append(("static leaf", freeze(leaf)))
            kept.append(leaf)
    return Recipe("config", treedef, tuple(kept), config, tuple(hyperparameters))
