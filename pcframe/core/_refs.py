"""`ParamRefs`: a static reference to parameters, part of a structure by position rather than by identity."""

from __future__ import annotations

from typing import Any

from ._param import Param


class ParamRefs:
    """The parameters a module refers to without owning them (e.g. those an `Optim` updates).

    Held as a *static* attribute of a module. In the signature a compiled function is cached
    under, it stands for the positions of its parameters among those the call tracks, plus
    `signature()` (compared by value), not for the objects themselves: two optimisers over the
    same places of two models of one architecture share a compiled step, and the compiled step
    keeps no parameter (nor its arrays) alive.

    **Arguments:**

    - `params`: the parameters referred to, in order.

    **Example:** ``ParamRefs(tuple(model.parameters(LayerParam)))``
    """

    __slots__ = ("params", "__weakref__")

    def __init__(self, params: tuple[Param, ...]) -> None:
        self.params = tuple(params)

    def signature(self) -> Any:
        """What else, besides the positions of the parameters, decides a compiled function (hashable; by value)."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params)} params)"
