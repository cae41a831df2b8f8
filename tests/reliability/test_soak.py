"""A short soak (benchmarks/soak.py): no recompilation after warm-up and flat memory."""

import pytest

from benchmarks.soak import Counter, soak


@pytest.fixture(scope="module")
def counter():
    return Counter()


@pytest.mark.parametrize(
    ("kind", "distinct", "evaluate_every"),
    [
        ("packaged", False, 0),
        ("tutorial", False, 0),
        ("keyword", True, 0),
        ("packaged", False, 10),
        ("tutorial", False, 10),
    ],
)
def test_short_soak_never_recompiles_and_keeps_memory_flat(counter, kind, distinct, evaluate_every):
    """A batch never seen before at every step, passed by keyword, compiles nothing new either; nor do
    evaluations on a test batch of another size between the steps (activities cleared, as the tutorials do)."""
    before = counter.compilations
    result = soak(kind, steps=300, warmup=20, counter=counter, distinct=distinct, evaluate_every=evaluate_every)
    assert counter.compilations > before  # the listener does see compilations (during warm-up)
    assert result["recompiles"] == 0
    assert result["growth_pct"] < 5.0
