"""Lists and dicts that report their own mutation.

A module that holds ``self.layers = [...]`` keeps it as a `TrackedList`, so that
``self.layers.append(...)`` marks the model's structure as changed just like
setting an attribute does. Both behave exactly like `list` / `dict` otherwise
and are pytrees with the same layout as their built-in counterparts.
"""

from __future__ import annotations

from typing import Any

import jax

from ._structure import bump_structure


def _mutator(base: type, name: str):
    method = getattr(base, name)

    def mutate(self, *args, **kwargs):
        bump_structure()
        return method(self, *map(track, args), **{k: track(v) for k, v in kwargs.items()})

    mutate.__name__ = name
    mutate.__doc__ = method.__doc__
    return mutate


class TrackedList(list):
    """A `list` that marks the model structure as changed when mutated.

    Lists and dicts put into it are converted to tracked ones too, so a change
    anywhere below a module is noticed.
    """

    def __iadd__(self, other):
        self.extend(other)
        return self

    def extend(self, values):
        """Append every item of `values` (marks the structure as changed)."""
        bump_structure()
        list.extend(self, map(track, values))

    def __imul__(self, n):
        bump_structure()
        return list.__imul__(self, n)


for _name in ("append", "insert", "pop", "remove", "clear", "sort", "reverse", "__setitem__", "__delitem__"):
    setattr(TrackedList, _name, _mutator(list, _name))


class TrackedDict(dict):
    """A `dict` that marks the model structure as changed when mutated (nested containers included)."""

    def __ior__(self, other):
        self.update(other)
        return self


for _name in ("__setitem__", "__delitem__", "pop", "popitem", "clear", "update", "setdefault"):
    setattr(TrackedDict, _name, _mutator(dict, _name))


def track(value: Any) -> Any:
    """Convert (nested) plain lists and dicts into their tracked versions."""
    if type(value) is list:
        return TrackedList(track(v) for v in value)
    if type(value) is dict:
        return TrackedDict((k, track(v)) for k, v in value.items())
    return value


jax.tree_util.register_pytree_with_keys(
    TrackedList,
    lambda xs: ([(jax.tree_util.SequenceKey(i), x) for i, x in enumerate(xs)], None),
    lambda _, children: TrackedList(children),
    flatten_func=lambda xs: (list(xs), None),
)
jax.tree_util.register_pytree_with_keys(
    TrackedDict,
    lambda d: ([(jax.tree_util.DictKey(k), v) for k, v in d.items()], tuple(d)),
    lambda keys, children: TrackedDict(zip(keys, children)),
    flatten_func=lambda d: (list(d.values()), tuple(d)),
)
