"""The code of the self-contained documentation pages runs: each page's ``python`` blocks, in order, in one namespace."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = ["deep-networks.md", "diagnosis.md"]


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_page_runs(page, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    text = (DOCS / page).read_text()
    blocks = [
        (text[: found.start(1)].count("\n"), found.group(1))
        for found in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    ]
    assert blocks, f"docs/{page} has no python block"
    namespace: dict = {"__name__": page}
    for offset, block in blocks:
        try:
            exec(compile("\n" * offset + block, str(DOCS / page), "exec"), namespace)
        except Exception as error:
            pytest.fail(f"the block at docs/{page}:{offset + 1} raised {error!r}")
