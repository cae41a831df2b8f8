"""The README runs: every ``python`` block on its own, in a fresh interpreter, and its set-up matches CI.

Each block runs as ``python -c`` in an empty folder, so it must import and define every name it uses. A block that
prints ``test accuracy`` must print the accuracy its ``# 0.970`` comment announces (on a CPU exactly; elsewhere within
3 test samples). The reloading block reads ``results/pc_params.npz``: the test writes that file first by running the
main job itself for one epoch, and the block must print a trained network's accuracy. ``docs/getting-started.md``
shows the same blocks. On a CPU the blocks take about 5-15 s each, the main job's epoch about 15 s.
"""

import ast
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
BLOCKS = [
    (TEXT[: found.start(2)].count("\n"), found.group(2)) for found in FENCE.finditer(TEXT) if found.group(1) == "python"
]
BASH = [found.group(2) for found in FENCE.finditer(TEXT) if found.group(1) == "bash"]
ACCURACY = re.compile(r"test accuracy (\d\.\d+)")
# the suite's own rule (pyproject.toml): a step that keeps recompiling fails
WARNINGS = "error:pcframe.functional.jit:RuntimeWarning"


def run(args: list[str], cwd: pathlib.Path) -> str:
    """Run ``python *args`` in `cwd`; fail with its output unless it succeeds; return its standard output."""
    result = subprocess.run(
        [sys.executable, "-W", WARNINGS, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_readme_is_short_and_has_code():
    assert len(TEXT.splitlines()) <= 150
    assert len(BLOCKS) >= 3


def test_setup_is_two_commands_and_ci_runs_the_readmes_test_command():
    """The set-up block holds the venv line and two commands; `.ci/run` runs the second verbatim."""
    setup = BASH[0]
    commands = [line for line in setup.splitlines() if line and not line.startswith("#")]
    assert commands[0] == "python3 -m venv .venv && source .venv/bin/activate"
    assert commands[1] == 'pip install -e ".[tutorials]" && python tutorials/main_job.py'
    assert len(commands) == 3
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_command = ci[ci.index("# --- the README's test command ---") + 1]
    assert commands[2] == ci_command


def test_getting_started_shows_the_readmes_programs():
    """docs/getting-started.md holds the README's python blocks, formatted alike or not: running these runs those."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    shown = [found.group(2) for found in FENCE.finditer(page) if found.group(1) == "python"]
    assert [ast.dump(ast.parse(block)) for block in shown] == [ast.dump(ast.parse(block)) for _, block in BLOCKS]


def test_relative_links_exist():
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", TEXT))
    for target in re.findall(r"\]\(([^)#]+)\)", prose):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.parametrize("offset, block", BLOCKS, ids=[f"README.md:{offset}" for offset, _ in BLOCKS])
def test_block_runs_on_its_own(offset, block, tmp_path):
    announced = re.findall(r"test accuracy .*# .*?(\d\.\d+)\s*$", block, flags=re.MULTILINE)
    if "results/pc_params.npz" in block:  # the main job's file: write it with the main job (one epoch)
        (tmp_path / "tutorials").mkdir()
        shutil.copy(ROOT / "tutorials" / "main_job.py", tmp_path / "tutorials")
        run(["tutorials/main_job.py", "--epochs", "1", "--out", "results"], tmp_path)
    output = run(["-c", "\n" * offset + block], tmp_path)  # tracebacks give README.md's line numbers
    printed = [float(value) for value in ACCURACY.findall(output)]
    if "results/pc_params.npz" in block:  # one epoch reaches about 0.85; the untrained network about 0.1
        assert printed and printed[-1] > 0.5, output
    if announced:
        assert printed, output
        tolerance = 1e-9 if jax.default_backend() == "cpu" else 3 / 297
        assert abs(printed[-1] - float(announced[-1])) <= tolerance, output
        assert printed[-1] >= 0.9
