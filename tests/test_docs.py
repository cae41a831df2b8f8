"""The documentation site (mkdocs + mkdocstrings) builds with ``--strict``: any warning fails the build.

The build needs the documentation tools of the ``dev`` extra (mkdocs, mkdocstrings[python]); the test does not
skip without them. It takes about 2 s.
"""

import pathlib
import subprocess
import sys

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


def test_docs_build_strict(tmp_path):
    """The site builds without a warning and the API pages hold every subpackage's public names."""
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
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
        html = (tmp_path / "site" / "api" / page / "index.html").read_text()
        for anchor in anchors:
            assert f'id="{anchor}"' in html, f"{anchor} missing from the {page} API page"


def test_docs_build_fails_on_a_warning(tmp_path):
    """Strict mode is on: a navigation entry to a missing page makes the build fail."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(ROOT / "docs")
    config["nav"].append({"Missing": "no-such-page.md"})
    broken = tmp_path / "mkdocs.yml"
    broken.write_text(yaml.safe_dump(config))
    result = build(broken, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr
