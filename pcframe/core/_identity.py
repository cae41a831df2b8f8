"""Hashable stand-ins for unhashable static values."""

from __future__ import annotations

from typing import Any


class ById:
    """Wraps an unhashable object so it can sit in a hashable structure: equal only to itself."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ById) and other.obj is self.obj

    def __repr__(self) -> str:
        return f"ById({self.obj!r})"


def hashable(value: Any) -> Any:
    """`value` itself if it can be hashed (and is not an array), else a `ById` wrapper."""
    if hasattr(value, "__array__") or hasattr(value, "__jax_array__"):
        return ById(value)
    try:
        hash(value)
    except TypeError:
        return ById(value)
    return value


def unwrap(value: Any) -> Any:
    """Undo `hashable`."""
    return value.obj if isinstance(value, ById) else value
