"""A short soak (benchmarks/soak.py): no recompilation after warm-up and flat memory."""

import pytest

from benchmarks.soak import Counter, soak


@pytest.fixture(scope="module")
def counter():
    return Counter()


@pytest.mark.parametrize(("kind", "distinct"), [("packaged", False), ("tutorial", False), ("keyword", True)])
def test_short_soak_never_recompiles_and_keeps_memory_flat(counter, kind, distinct):
    """A batch never seen before at every step, passed by keyword, compiles nothing new either."""
    before = counter.compilations
    result = soak(kind, steps=300, warmup=20, counter=counter, distinct=distinct)
    assert counter.compilations > before  # the listener does see compilations (during warm-up)
    assert result["recompiles"] == 0
    assert result["growth_pct"] < 5.0
