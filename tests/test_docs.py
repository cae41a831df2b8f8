"""The documentation site (mkdocs + mkdocstrings) builds with ``--strict``: any warning fails the build.

The build needs the documentation tools of the ``dev`` extra (mkdocs, mkdocstrings[python], django-static-mathjax);
the test does not skip without them. It takes about 2 s. The site works offline: it loads no script or stylesheet
from another host, and carries its own MathJax.
"""

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def build(config: pathlib.Path, site: pathlib.Path) -> subprocess.CompletedProcess:
    """Run ``mkdocs build --strict`` on `config` into `site`."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once for this module's tests."""
    site = tmp_path_factory.mktemp("docs") / "site"
    result = build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def test_docs_build_strict(site):
    """The site builds without a warning and the API pages hold every subpackage's public names."""
    pages = {
        "pcframe": ["pcframe.Module", "pcframe.Param", "pcframe.RKG"],
        "pc": ["pcframe.pc.Vode", "pcframe.pc.EnergyModule", "pcframe.pc.se_energy"],
        "nn": ["pcframe.nn.Linear", "pcframe.nn.LayerParam"],
        "functional": ["pcframe.functional.jit", "pcframe.functional.vmap"],
        "utils": ["pcframe.utils.Optim", "pcframe.utils.save_checkpoint"],
        "inference": ["pcframe.inference.train_supervised", "pcframe.inference.ODEInference"],
        "models": ["pcframe.models.PCMLP"],
        "analysis": ["pcframe.analysis.linear_equilibrium_energy"],
    }
    for page, anchors in pages.items():
        html = (site / "api" / page / "index.html").read_text()
        for anchor in anchors:
            assert f'id="{anchor}"' in html, f"{anchor} missing from the {page} API page"


def test_site_loads_nothing_from_the_network(site):
    """No page loads a script or stylesheet from another host (the old pages took MathJax and highlight.js from CDNs)."""
    remote = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.IGNORECASE)
    for page in site.rglob("*.html"):
        found = remote.search(page.read_text())
        assert found is None, f"{page.relative_to(site)} loads {found.group(0)!r}"


def test_mathjax_is_bundled_with_its_fonts(site):
    """Pages load the bundled MathJax; the site holds it, the fonts it asks for and the extensions it autoloads."""
    mathjax = site / "assets" / "mathjax"
    bundle = (mathjax / "tex-mml-chtml.js").read_text()
    assert "output/chtml/fonts/woff-v2" in bundle
    fonts = {font.name for font in (mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff")}
    assert {"MathJax_Main-Regular.woff", "MathJax_Math-Italic.woff", "MathJax_Size1-Regular.woff"} <= fonts
    assert (mathjax / "input" / "tex" / "extensions" / "boldsymbol.js").is_file()
    html = (site / "concepts" / "index.html").read_text()
    assert html.index('src="../javascripts/mathjax.js"') < html.index('src="../assets/mathjax/tex-mml-chtml.js"')
    assert (site / "javascripts" / "mathjax.js").is_file()
    assert not (site / "hooks").exists()


@pytest.mark.parametrize("page", ["concepts", "getting-started", "api/inference"])
def test_pages_with_maths_mark_it_for_mathjax(site, page):
    """Arithmatex wraps the maths of the pages in the spans and blocks MathJax is configured to typeset."""
    html = (site / page / "index.html").read_text()
    assert '<span class="arithmatex">\\(' in html
    if page == "concepts":
        assert '<div class="arithmatex">\\[' in html


def test_docs_build_fails_on_a_warning(tmp_path):
    """Strict mode is on: a navigation entry to a missing page makes the build fail."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(ROOT / "docs")
    config["hooks"] = [str(ROOT / hook) for hook in config["hooks"]]
    config["nav"].append({"Missing": "no-such-page.md"})
    broken = tmp_path / "mkdocs.yml"
    broken.write_text(yaml.safe_dump(config))
    result = build(broken, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr
