"""The package a user installs: the wheel and the sdist carry the Apache-2.0 LICENSE that pyproject declares, and
importing it leaves JAX unstarted."""

import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_repository_has_the_apache_license():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_the_built_wheel_and_sdist_carry_the_license(tmp_path):
    pytest.importorskip("hatchling")
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        license_name = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(license_name) == (ROOT / "LICENSE").read_bytes()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    sdist = next(SdistBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("/LICENSE") for name in archive.getnames())


def test_importing_pcframe_starts_no_jax_runtime():
    """So ``jax.distributed.initialize`` (or ``pcframe.utils.initialize_distributed``) may follow the imports."""
    code = (
        "import pcframe, pcframe.inference, pcframe.models, pcframe.diagnosis\n"
        "from jax._src import xla_bridge\n"
        "assert not xla_bridge.backends_are_initialized(), 'a backend started at import'\n"
        "import jax, numpy as np\n"
        "assert np.array_equal(np.asarray(pcframe.RKG.key.value), jax.random.PRNGKey(0))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
