"""The README's main job (tutorials/main_job.py), run in-process with a short schedule.

Measured with 3 epochs (batch 32, T=8): PC test accuracy 0.956 / 0.953 / 0.944 / 0.953
and BP 0.950 / 0.958 / 0.947 / 0.953 for seeds 0-3, so the floor is 0.92.
"""

import argparse
import importlib.util
import io
import pathlib
import re
import time

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")
pytest.importorskip("matplotlib")

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "tutorials" / "main_job.py"
EPOCH_LINE = re.compile(
    r"^(PC|BP) epoch (\d+)/(\d+)  energy (\S+)  train_acc (\S+)  test_acc (\S+)  time (\S+)s$", re.MULTILINE
)


@pytest.fixture(scope="module")
def main_job():
    """tutorials/main_job.py imported as a module."""
    spec = importlib.util.spec_from_file_location("main_job", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_job_trains_saves_and_plots(main_job, tmp_path, capsys):
    """A 3-epoch run prints one line per epoch, writes the parameters and the plot, reloads identically, and learns."""
    results = main_job.main(["--epochs", "3", "--out", str(tmp_path), "--seed", "0"])
    assert pathlib.Path(results["params_path"]) == tmp_path / "pc_params.npz"
    assert (tmp_path / "pc_params.npz").stat().st_size > 0
    assert (tmp_path / "main_job.png").stat().st_size > 0
    assert results["reloaded_accuracy"] == results["pc_accuracy"]
    assert results["pc_accuracy"] >= 0.92
    assert results["bp_accuracy"] >= 0.92
    assert len(results["pc_history"]["energy"]) == len(results["bp_history"]["test_accuracy"]) == 3
    assert results["pc_history"]["energy"][-1] < results["pc_history"]["energy"][0]

    captured = capsys.readouterr()
    assert "it/s" not in captured.out + captured.err, "no progress bar when the output is not a terminal"
    rows = EPOCH_LINE.findall(captured.out)
    assert [(name, int(epoch), int(epochs)) for name, epoch, epochs, *_ in rows] == [
        (name, e, 3) for name in ("PC", "BP") for e in (1, 2, 3)
    ], captured.out
    for name in ("PC", "BP"):
        energy, train_acc, test_acc, seconds = ([float(row[i]) for row in rows if row[0] == name] for i in range(3, 7))
        assert energy[-1] < energy[0], f"{name}'s printed energy decreases"
        assert all(0 <= a <= 1 for a in train_acc + test_acc) and train_acc[-1] > 0.85 and test_acc[-1] >= 0.92
        history = results[f"{name.lower()}_history"]
        assert all(s >= 0 for s in seconds) and sum(seconds) <= history["time"] + 0.01
        assert test_acc == pytest.approx(history["test_accuracy"], abs=5e-4), "the line prints the history"
        assert energy == pytest.approx(history["energy"], rel=1e-3)


def test_progress_bar_shows_the_running_energy_on_a_terminal(main_job, monkeypatch, capsys):
    """On a terminal the bar carries the running energy and accuracy while the epoch runs; the line still follows."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(main_job.sys, "stderr", terminal)
    data = main_job.load_data(32)
    args = argparse.Namespace(epochs=1, batch_size=32, seed=0)

    def train_step(x, y):
        time.sleep(0.01)  # lets tqdm redraw (at most every 0.1 s) with the postfix set
        return 0.25, 0.5

    history = main_job.run_epochs("PC", data, args, train_step, lambda: 0.75)
    assert "energy=0.2500" in terminal.getvalue() and "train_acc=0.500" in terminal.getvalue()
    assert EPOCH_LINE.search(capsys.readouterr().out).groups()[:6] == ("PC", "1", "1", "0.2500", "0.500", "0.750")
    assert history["energy"] == [0.25] and history["test_accuracy"] == [0.75]


def test_main_job_help_lists_options(main_job, capsys):
    """``--help`` documents every option."""
    with pytest.raises(SystemExit) as exit_info:
        main_job.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--epochs", "--batch-size", "--T", "--seed", "--out"):
        assert option in text
