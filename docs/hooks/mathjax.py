"""An mkdocs hook that bundles MathJax into the site, so the maths renders without a network.

MathJax 3 comes from the ``django-static-mathjax`` package (a data-only wheel, in the ``dev`` extra). The site gets
the combined ``tex-mml-chtml.js``, the CommonHTML fonts it loads, and the TeX extensions its ``autoload`` fetches on
demand (``\\boldsymbol``, ``\\cancel``, ...), under ``assets/mathjax/``, where ``extra_javascript`` points.
"""

from __future__ import annotations

import importlib.util
import pathlib

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

TARGET = "assets/mathjax"
PARTS = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")


def mathjax_root() -> pathlib.Path:
    """The ``es5`` folder of the installed MathJax distribution."""
    spec = importlib.util.find_spec("mathjax")
    root = None
    if spec is not None and spec.submodule_search_locations:
        root = pathlib.Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if root is None or not (root / PARTS[0]).is_file():
        raise PluginError(
            "MathJax is not installed: the documentation bundles it for offline use. "
            'Install the documentation tools with pip install -e ".[dev]" (django-static-mathjax).'
        )
    return root


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the MathJax files to the site."""
    root = mathjax_root()
    for part in PARTS:
        source = root / part
        for path in [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file()):
            uri = f"{TARGET}/{path.relative_to(root).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
