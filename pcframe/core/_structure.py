"""A global counter that changes whenever the *structure* of any model changes.

Stateful transforms cache the list of parameters reachable from their keyword
arguments. Walking a model to find them is the expensive part of a call, so the
walk is skipped while this counter is unchanged: every change that can add,
remove or re-label a parameter (setting a module attribute, mutating a list or
dict held by a module, changing a parameter's static metadata) bumps it.
Changing a parameter's *value* does not.
"""


class _StructureVersion:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


STRUCTURE = _StructureVersion()


def bump_structure() -> None:
    """Mark every cached parameter index as stale."""
    STRUCTURE.value += 1
