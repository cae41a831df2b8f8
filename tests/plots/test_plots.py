"""pcframe.plots: each figure draws exactly the numbers it is given, and bad input names the argument."""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import pcframe.plots as pxp  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """Every test's figures are closed after it."""
    yield
    plt.close("all")


def lines(ax):
    """``{legend label: (x, y)}`` of the lines on `ax`."""
    return {line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata())) for line in ax.get_lines()}


# ----------------------------------------------------------------------------------------------- importing


def test_import_pcframe_does_not_import_matplotlib():
    code = "import sys, pcframe, pcframe.inference, pcframe.training; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_missing_matplotlib_says_how_to_install():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "try:\n    import pcframe.plots\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "pcframe[plots]"' in result.stdout


# ----------------------------------------------------------------------------------------------- inference energies


def test_inference_energies_draws_each_layer_and_the_total():
    energies = np.array([[0.0, 4.0], [0.5, 2.0], [0.4, 1.0], [0.3, 0.5]])
    ax = pxp.inference_energies(energies, layer_names=["hidden", "output"])
    drawn = lines(ax)
    assert set(drawn) == {"hidden", "output", "total"}
    np.testing.assert_array_equal(drawn["hidden"][0], np.arange(4))
    np.testing.assert_allclose(drawn["hidden"][1], energies[:, 0])
    np.testing.assert_allclose(drawn["output"][1], energies[:, 1])
    np.testing.assert_allclose(drawn["total"][1], energies.sum(axis=1))
    assert ax.get_yscale() == "log", "energies spanning a factor of 10 get a log axis"
    assert "step" in ax.get_xlabel() and "energy" in ax.get_ylabel()


def test_inference_energies_total_only_every_and_linear_scale():
    ax = pxp.inference_energies([3.0, 2.9, 2.8], every=5)
    ((x, y),) = lines(ax).values()
    np.testing.assert_array_equal(x, [0, 5, 10])
    np.testing.assert_allclose(y, [3.0, 2.9, 2.8])
    assert ax.get_yscale() == "linear"


def test_inference_energies_reads_stats_and_drops_the_unused_ode_buffer():
    trace = np.array([[2.0, 1.0], [1.0, 0.5], [np.nan, np.nan], [np.nan, np.nan]])
    ax = pxp.inference_energies({"steps": 2, "energies": trace}, total=False, log=False)
    drawn = lines(ax)
    assert set(drawn) == {"layer 1", "layer 2"}
    np.testing.assert_allclose(drawn["layer 2"][1], [1.0, 0.5])
    assert ax.get_yscale() == "linear"


def test_inference_energies_from_a_recording_strategy():
    jax = pytest.importorskip("jax")
    import pcframe as px
    import pcframe.inference as pxi
    from pcframe.models import PCMLP

    px.RKG.seed(0)
    model = PCMLP([3, 8, 2])
    x, y = jax.random.normal(jax.random.PRNGKey(0), (4, 3)), jax.nn.one_hot(np.array([0, 1, 0, 1]), 2)
    pxi.init_forward(model, x, y)
    stats = pxi.DiscreteInference(step_size=0.1, steps=6, record_energies=True).run(model, x)
    recorded = np.asarray(stats["energies"])
    ax = pxp.inference_energies(stats)
    np.testing.assert_allclose(lines(ax)["total"][1], recorded.sum(axis=1), rtol=1e-6)
    assert len(ax.get_lines()) == recorded.shape[1] + 1


def test_inference_energies_draws_into_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert pxp.inference_energies([1.0, 0.5], ax=right, label="PC") is right
    assert not left.get_lines() and lines(right).keys() == {"PC"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(energies=np.zeros((2, 3, 4))), "energies: expected"),
        (dict(energies=[]), "energies is empty"),
        (dict(energies=[[np.nan, np.nan]]), "every value is NaN"),
        (dict(energies={"steps": 3}), "record_energies=True"),
        (dict(energies=np.ones((3, 2)), layer_names=["a"]), "layer_names has 1 names"),
        (dict(energies=np.ones((3, 2)), x=[0, 1]), "x has 2 values"),
        (dict(energies=np.ones(3), every=0), "every must be a positive int"),
    ],
)
def test_inference_energies_bad_input(kwargs, message):
    energies = kwargs.pop("energies")
    with pytest.raises(ValueError, match=message):
        pxp.inference_energies(energies, **kwargs)


# ----------------------------------------------------------------------------------------------- training curves


def test_training_curves_one_panel_per_metric_train_and_test_together():
    history = {
        "energy": [1.0, 0.1, 0.02],
        "train_accuracy": [0.5, 0.8, 0.9],
        "test_accuracy": [0.4, 0.7, 0.85],
        "time": 12.5,  # not a sequence: skipped
    }
    ax_energy, ax_accuracy = pxp.training_curves(history)
    ((x, y),) = lines(ax_energy).values()
    np.testing.assert_array_equal(x, [1, 2, 3])
    np.testing.assert_allclose(y, history["energy"])
    assert ax_energy.get_yscale() == "log" and ax_accuracy.get_yscale() == "linear"
    drawn = lines(ax_accuracy)
    np.testing.assert_allclose(drawn["train"][1], history["train_accuracy"])
    np.testing.assert_allclose(drawn["test"][1], history["test_accuracy"])
    assert ax_energy.get_xlabel() == "epoch" and ax_accuracy.get_ylabel() == "accuracy (fraction correct)"


def test_training_curves_nested_history_two_runs_and_x_per_key():
    fig, ax = plt.subplots()
    pxp.training_curves({"train": {"loss": [3.0, 2.0]}, "test": {"loss": [3.5, 2.5]}}, ax=ax, label="PC")
    pxp.training_curves({"loss": [2.0, 1.0, 0.5, 0.4]}, ax=[ax], label="BP", x={"loss": [0, 10, 20, 30]})
    drawn = lines(ax)
    assert set(drawn) == {"PC train", "PC test", "BP"}
    np.testing.assert_allclose(drawn["PC test"][1], [3.5, 2.5])
    np.testing.assert_array_equal(drawn["BP"][0], [0, 10, 20, 30])


def test_training_curves_chooses_metrics_and_labels():
    (ax,) = pxp.training_curves({"loss_val": [1, 2], "loss_train": [3, 4], "acc": [0.1, 0.2]}, metrics=["loss"])
    assert set(lines(ax)) == {"val", "train"} and ax.get_ylabel() == "loss (batch mean)"


@pytest.mark.parametrize(
    ("history", "kwargs", "message"),
    [
        ({}, {}, "history is empty"),
        ([1, 2, 3], {}, "history: expected a dict"),
        ({"time": 3.0}, {}, "no list of numbers"),
        ({"energy": []}, {}, r"history\['energy'\] is empty"),
        ({"test_loss": [[1, 2], [3, 4]]}, {}, r"history\['test_loss'\]: expected a 1-d array"),
        ({"train": {"loss": ["a", "b"]}}, {}, r"history\['train'\]\['loss'\]: expected numbers"),
        ({"train": {}}, {}, r"history\['train'\] is empty"),
        ({"loss": [1, 2]}, {"metrics": ["accuracy"]}, "metrics: history has no metric 'accuracy'"),
        ({"loss": [1, 2], "acc": [1, 2]}, {"ax": "one"}, r"ax: 2 metrics .* need 2 Axes"),
        ({"loss": [1, 2]}, {"x": [1, 2, 3]}, r"x for history\['loss'\] has 3 values"),
        ({"loss": [[1, 2], [3]]}, {}, r"history\['loss'\]: expected numbers"),
    ],
)
def test_training_curves_bad_input(history, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pxp.training_curves(history, **kwargs)


# ----------------------------------------------------------------------------------------------- norms


def test_layer_norms_one_line_per_layer():
    norms = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 40.0]])
    ax = pxp.layer_norms(norms, names=["hidden", "output"], title="errors", x=[10, 20, 30])
    drawn = lines(ax)
    np.testing.assert_array_equal(drawn["hidden"][0], [10, 20, 30])
    np.testing.assert_allclose(drawn["output"][1], norms[:, 1])
    assert ax.get_title() == "errors" and ax.get_yscale() == "log" and "norm" in ax.get_ylabel()


def test_metrics_norms_from_step_outputs():
    outs = [
        {"energy": 1.0, "activity_norms": np.array([1.0, 2.0]) * s, "grad_norms": np.array([0.1, 0.2, 0.3]) / s}
        for s in (1, 2, 3)
    ]
    ax_activity, ax_grad = pxp.metrics_norms(outs)
    np.testing.assert_allclose(lines(ax_activity)["layer 2"][1], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(lines(ax_grad)["parameter 3"][1], [0.3, 0.15, 0.1])
    assert ax_grad.get_title() == "parameter gradients" and ax_grad.get_xlabel() == "training step"


def test_metrics_norms_from_a_training_run():
    jax = pytest.importorskip("jax")
    import optax

    import pcframe as px
    import pcframe.inference as pxi
    import pcframe.nn as pxnn
    import pcframe.utils as pxu
    from pcframe.models import PCMLP

    px.RKG.seed(0)
    model = PCMLP([3, 8, 2])
    optim_w = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    x, y = jax.random.normal(jax.random.PRNGKey(0), (4, 3)), jax.nn.one_hot(np.array([0, 1, 0, 1]), 2)
    metrics = pxi.Metrics(activity_norms=True, param_norms=True, grad_norms=True)
    inference = pxi.DiscreteInference(step_size=0.1, steps=3)
    outs = [pxi.train_supervised(model, optim_w, x, y, inference=inference, metrics=metrics) for _ in range(3)]
    axes = pxp.metrics_norms(outs)
    assert [ax.get_title() for ax in axes] == [
        "free activities after inference",
        "parameters after the update",
        "parameter gradients",
    ]
    param_norms = np.stack([np.asarray(out["param_norms"]) for out in outs])
    np.testing.assert_allclose(lines(axes[1])["parameter 1"][1], param_norms[:, 0], rtol=1e-6)


@pytest.mark.parametrize(
    ("outputs", "kwargs", "message"),
    [
        ([], {}, "outputs is empty"),
        ({}, {}, "outputs is empty"),
        ([{"energy": 1.0}], {}, r"none of \['activity_norms'"),
        ([{"grad_norms": [1.0]}, 3], {}, r"outputs\[1\]: expected a training step's output"),
        ([{"grad_norms": [1.0]}, {"grad_norms": [1.0, 2.0]}], {}, "differ in shape"),
        ({"grad_norms": np.ones(3)}, {}, r"outputs\['grad_norms'\]: expected a 2-d array"),
        ({"grad_norms": np.ones((3, 2))}, {"keys": ["param_norms"]}, "keys: outputs have no 'param_norms'"),
        ({"grad_norms": np.ones((3, 2))}, {"names": {"grad_norms": ["w"]}}, "has 1 names but the data has 2"),
    ],
)
def test_metrics_norms_bad_input(outputs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pxp.metrics_norms(outputs, **kwargs)


def test_layer_norms_bad_input():
    with pytest.raises(ValueError, match="norms: expected a 2-d array"):
        pxp.layer_norms([1.0, 2.0])
    with pytest.raises(ValueError, match="norms is empty"):
        pxp.layer_norms(np.zeros((0, 3)))


def test_plot_keywords_reach_every_line():
    ax = pxp.inference_energies(np.ones((3, 2)), lw=0.5, color="C3")
    assert {line.get_linewidth() for line in ax.get_lines()} == {0.5}
    assert {line.get_color() for line in ax.get_lines()} == {"C3"}, "the caller's colour wins over the total's black"
    (ax,) = pxp.training_curves({"run A": {"loss": [3, 2]}, "run B": {"loss": [4, 1]}}, marker="s")
    assert set(lines(ax)) == {"run A", "run B"} and {line.get_marker() for line in ax.get_lines()} == {"s"}
    ax = pxp.layer_norms(np.ones((2, 1)), label="PC", ls=":")
    assert set(lines(ax)) == {"PC"} and ax.get_lines()[0].get_linestyle() == ":"
