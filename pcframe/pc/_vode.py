"""`Vode`: a node of a predictive coding network, and its parameter types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from ..core._module import Module
from ..core._param import Param
from ..core._random import RKG
from ..nn._checks import positive_int
from ._energies import se_energy
from ._rules import GetRule, SetRule, parse_ruleset
from ._status import STATUS

_ENERGY = "E"


class VodeParam(Param):
    """The activity ``h`` of a `Vode` (the value inference optimises; set anew for every batch)."""

    per_batch = True

    class Cache(Param):
        """Per-step values of a `Vode` other than ``h``: the prediction ``u``, the energy ``E``, ...

        Its value is a dict (or `None` once cleared). Clear it after each step
        with ``pcframe.utils.step(model, clear_params=VodeParam.Cache)``.
        """

        per_batch = True


def plus_error(vode: Vode, key: str, value: Any, rkg: Any) -> Any:
    """The transform of `STATUS.ERRORS`: ``u + h`` where ``h`` holds the error $\\epsilon$ (``h`` itself if frozen)."""
    if vode.h.__dict__.get("frozen", False):
        return vode.h.value  # a clamped node keeps its value (or stays empty)
    return value + vode._read("h")


class Vode(Module):
    """A predictive coding node: an activity ``h`` predicted by ``u`` from the layer below.

    Calling a Vode with a prediction, ``x = vode(u)``, stores ``u`` and returns
    the node's activity ``h``; the node's energy (by default
    $\\tfrac12\\lVert h - u\\rVert^2$) measures the prediction error. Rules decide,
    per status, which slots a `set` writes and what a `get` returns. The default rules:
    ``STATUS.INIT: ("h, u <- u",)`` makes a forward pass under `STATUS.INIT` initialise
    ``h = u``; ``STATUS.ERRORS: ("h <- u:plus_error", "u <- u")`` is error-parametrised
    inference (ePC): a free node's ``h`` holds its prediction error $\\epsilon$, and
    ``vode(u)`` sets ``h = u + \\epsilon`` (a frozen node keeps its ``h``).

    **Arguments:**

    - `shape`: the per-sample shape of ``h`` (checked on every write; leading
      batch dimensions are allowed).
    - `energy_fn`: ``energy_fn(vode, rkg) -> scalar`` (default `se_energy`).
    - `ruleset`: ``{status: rules}`` added to (and overriding) the default rules;
      see `pcframe.pc` rule syntax (``"h, u <- u:tform"``, ``"h -> u"``).
    - `tforms`: ``{name: fn(vode, key, value, rkg) -> value}`` used by rules.

    **Example:**

    ```python
    vode = Vode((32,))
    with step(model, STATUS.INIT):
        h = vode(u)          # h == u
    vode.energy()            # 0.5 * ||h - u||^2, cached until the next write
    ```
    """

    def __init__(
        self,
        shape: tuple[int, ...] | None = None,
        energy_fn: Callable[..., Any] = se_energy,
        ruleset: dict[Any, Any] | None = None,
        tforms: dict[str, Callable[..., Any]] | None = None,
    ) -> None:
        if shape is not None and not isinstance(shape, (tuple, list)):
            raise TypeError(f"Vode shape must be a tuple such as (3,), got {shape!r}. Write Vode(({shape!r},)).")
        if not callable(energy_fn):
            raise TypeError(f"Vode energy_fn must be a function such as se_energy, got {energy_fn!r}.")
        self.h = VodeParam()
        self.cache = VodeParam.Cache()
        self.shape = None if shape is None else tuple(positive_int(n, f"Vode shape[{i}]") for i, n in enumerate(shape))
        self.energy_fn = energy_fn
        self.ruleset = {STATUS.INIT: ("h, u <- u",), STATUS.ERRORS: ("h <- u:plus_error", "u <- u"), **(ruleset or {})}
        self.tforms = {"plus_error": plus_error, **(tforms or {})}
        self._rules = parse_ruleset(self.ruleset, self.tforms)

    def __call__(self, u: Any, output: str = "h") -> Any:
        """Set the prediction ``u`` and return the slot `output` (``h`` by default)."""
        self.set("u", u)
        return self.get(output)

    def set(self, key: str, value: Any) -> None:
        """Write `value` into slot `key`, following the set rules of the current status."""
        self._check_shape(key, value)
        rules = [r for r in self._rules.get(self._status, ()) if isinstance(r, SetRule) and r.source == key]
        if not rules:
            self._write(key, value)
        for rule in rules:
            transformed = self._transform(rule.tforms, key, value)
            for target in rule.targets:
                self._write(target, transformed)

    def get(self, key: str) -> Any:
        """Read slot `key`, following the get rules of the current status."""
        for rule in self._rules.get(self._status, ()):
            if isinstance(rule, GetRule) and rule.key == key:
                return self._transform(rule.tforms, rule.source, self._read(rule.source))
        return self._read(key)

    def energy(self) -> Any:
        """This node's energy ``energy_fn(self, RKG)``, computed once per step and cached."""
        cache = self.cache.value
        if cache and _ENERGY in cache:
            return cache[_ENERGY]
        energy = self.energy_fn(self, RKG)
        self.cache.value = {**(cache or {}), _ENERGY: energy}
        return energy

    def _transform(self, names: tuple[str, ...], key: str, value: Any) -> Any:
        for name in names:
            value = self.tforms[name](self, key, value, RKG)
        return value

    def _write(self, key: str, value: Any) -> None:
        self._check_shape(key, value)
        if key == "h":
            self.h.value = value
            cache = self.cache.value
            if cache and _ENERGY in cache:
                self.cache.value = {k: v for k, v in cache.items() if k != _ENERGY}
            return
        cache = {k: v for k, v in (self.cache.value or {}).items() if k != _ENERGY}
        cache[key] = value
        self.cache.value = cache

    def _read(self, key: str) -> Any:
        if key == "h":
            if self.h.value is None:
                raise ValueError(
                    f"Vode{self.shape or ''}: 'h' has no value. Run a forward pass under STATUS.INIT "
                    "first (with step(model, STATUS.INIT): ...), which initialises h from u."
                )
            return self.h.value
        cache = self.cache.value or {}
        if key not in cache:
            raise ValueError(
                f"Vode{self.shape or ''}: slot {key!r} is empty (known now: {sorted(cache)}). "
                "Call the Vode with its input first (vode(u) sets 'u'); caches are cleared after each step."
            )
        return cache[key]

    def _check_shape(self, key: str, value: Any) -> None:
        if self.shape is None or value is None or key not in ("h", "u"):
            return
        shape = jnp.shape(value)
        if key == "u" and shape == ():
            return
        if tuple(shape[len(shape) - len(self.shape) :]) != self.shape or len(shape) < len(self.shape):
            raise ValueError(
                f"Vode with shape {self.shape} was given {key!r} of shape {tuple(shape)}. Its values must end "
                f"with the per-sample shape {self.shape}: check the layer feeding it, or the Vode's shape. "
                "(Batched values need vmap or extra leading dimensions.)"
            )
