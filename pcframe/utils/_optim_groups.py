"""Several optax optimisers in one `Optim`: one per group of parameters (`optax.multi_transform`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import optax

from ..core._tree import collect_params


@dataclasses.dataclass(frozen=True)
class GroupedTransformation:
    """`optax.multi_transform` of `transforms` over parameters labelled `labels`, compared by value.

    Equal transformations and labels make equal objects, so a new `Optim` over the same optax
    transformations has the same static structure and compiles nothing new (a fresh
    `optax.multi_transform` would be a new object every time).
    """

    transforms: tuple[tuple[str, optax.GradientTransformation], ...]
    labels: tuple[str, ...]

    def _multi(self) -> optax.GradientTransformation:
        return optax.multi_transform(dict(self.transforms), list(self.labels))

    def init(self, params: Any) -> Any:
        """The optimiser state of `params` (one entry per group)."""
        return self._multi().init(params)

    def update(self, updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        """Each group's updates from its own transformation."""
        return self._multi().update(updates, state, params)


def grouped(transforms: Mapping[str, optax.GradientTransformation], groups: Any) -> tuple[Any, Any]:
    """One `optax.multi_transform` over the parameters of `groups`, each group updated by its own transformation.

    **Arguments:**

    - `transforms`: ``{name: GradientTransformation}``.
    - `groups`: ``{name: parameters}`` with the same names (e.g. ``Mask(LayerParam)(model.layers[:-1])``).

    **Returns:** ``(tx, params)``: the transformation (a `GroupedTransformation`), labelled by group for the parameters in
    `collect_params` order of `params`, and `params` (the groups, as one pytree).
    """
    if not isinstance(groups, Mapping) or set(groups) != set(transforms):
        names = sorted(transforms)
        raise ValueError(
            f"Optim with a transformation per group ({names}) needs the parameters as a dict with the same names, "
            f"e.g. Optim({{'hidden': optax.adam(1e-3), 'head': optax.sgd(0.1)}}, {{'hidden': Mask(LayerParam)("
            f"model.layers[:-1]), 'head': Mask(LayerParam)(model.layers[-1])}}); got {type(groups).__name__}"
            + (f" with names {sorted(groups)}." if isinstance(groups, Mapping) else ".")
        )
    for name, tx in transforms.items():
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(f"Optim: the transformation of group {name!r} must be an optax GradientTransformation.")
    group_of: dict[int, str] = {}
    for name, selection in groups.items():
        params = collect_params(selection)
        if not params:
            raise ValueError(
                f"Optim: the group {name!r} contains no Param. Check its mask and that the model is built."
            )
        for param in params:
            if group_of.setdefault(id(param), name) != name:
                raise ValueError(
                    f"Optim: a parameter is in the groups {group_of[id(param)]!r} and {name!r}; each parameter "
                    "belongs to one group (one optimiser updates it)."
                )
    labels = [group_of[id(param)] for param in collect_params(groups)]
    return GroupedTransformation(tuple(sorted(transforms.items())), tuple(labels)), groups
