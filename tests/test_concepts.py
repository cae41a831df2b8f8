"""The code of the concepts page (``docs/concepts.md``) runs: every ``python`` block, in order, in one namespace.

The blocks assert their own results, so a statement of the page that stops being true fails here.
"""

import pathlib
import re

import pytest

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "concepts.md"
TEXT = PAGE.read_text()
BLOCKS = [
    (TEXT[: found.start(1)].count("\n"), found.group(1))
    for found in re.finditer(r"^```python\n(.*?)^```$", TEXT, flags=re.MULTILINE | re.DOTALL)
]


def test_the_page_has_code():
    assert len(BLOCKS) >= 10


def test_every_block_runs_in_order():
    namespace: dict = {"__name__": "concepts"}
    for offset, block in BLOCKS:
        code = compile("\n" * offset + block, str(PAGE), "exec")  # tracebacks give the page's line numbers
        try:
            exec(code, namespace)
        except Exception as error:
            pytest.fail(f"the block at docs/concepts.md:{offset + 1} raised {error!r}")
