"""Parsing of `Vode` rules.

A rule is a string, active under one status:

- ``"h, u <- u"`` (a *set* rule): when ``u`` is set, write the value to ``h``
  and ``u``. ``"h <- u:tform"`` applies the transform named ``tform`` first
  (several may be chained: ``u:a:b``).
- ``"h -> u"`` (a *get* rule): reading ``h`` returns the value of ``u``
  (``"h -> u:tform"`` transforms it).

Without a matching rule a value is written to, and read from, its own slot.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class SetRule(NamedTuple):
    """When `source` is set, write it (after `tforms`) to each of `targets`.

    **Arguments:**

    - `source`: the slot being set.
    - `targets`: the slots the value is written to.
    - `tforms`: names of the transforms applied to the value first, in order.
    """

    source: str
    targets: tuple[str, ...]
    tforms: tuple[str, ...]


class GetRule(NamedTuple):
    """Reading `key` returns `source` (after `tforms`).

    **Arguments:**

    - `key`: the slot a `get` asks for.
    - `source`: the slot whose value is returned instead.
    - `tforms`: names of the transforms applied to the value, in order.
    """

    key: str
    source: str
    tforms: tuple[str, ...]


def _names(text: str, rule: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(n.isidentifier() for n in names):
        raise ValueError(f"Vode rule {rule!r}: {text!r} is not a comma-separated list of slot names.")
    return names


def _source(text: str, rule: str) -> tuple[str, tuple[str, ...]]:
    parts = [p.strip() for p in text.split(":")]
    if not all(p.isidentifier() for p in parts):
        raise ValueError(f"Vode rule {rule!r}: {text!r} must be 'slot' or 'slot:tform[:tform...]'.")
    return parts[0], tuple(parts[1:])


def parse_rule(rule: str) -> SetRule | GetRule:
    """Parse one rule string (see the module docstring for the syntax).

    **Arguments:**

    - `rule`: a rule such as ``"h, u <- u"`` (set rule) or ``"h -> u:tform"`` (get rule).
    """
    if not isinstance(rule, str):
        raise TypeError(f"A Vode rule must be a string such as 'h, u <- u', got {rule!r}.")
    if "<-" in rule:
        left, right = rule.split("<-", 1)
        source, tforms = _source(right, rule)
        return SetRule(source, tuple(_names(left, rule)), tforms)
    if "->" in rule:
        left, right = rule.split("->", 1)
        (key,) = _names(left, rule)
        source, tforms = _source(right, rule)
        return GetRule(key, source, tforms)
    raise ValueError(f"Vode rule {rule!r} has neither '<-' (set rule) nor '->' (get rule).")


def parse_ruleset(ruleset: dict[Any, Any], tforms: dict[str, Any]) -> dict[Any, tuple]:
    """Parse ``{status: rules}`` (rules: one string or a sequence) and check the transforms exist."""
    parsed = {}
    for status, rules in ruleset.items():
        rules = (rules,) if isinstance(rules, str) else tuple(rules)
        parsed[status] = tuple(parse_rule(r) for r in rules)
        for rule in parsed[status]:
            missing = [t for t in rule.tforms if t not in tforms]
            if missing:
                raise ValueError(
                    f"Vode rule for status {status!r} uses transform(s) {missing} that are not in tforms "
                    f"(known: {sorted(tforms)}). Pass tforms={{'name': fn(vode, key, value, rkg)}}."
                )
    return parsed
