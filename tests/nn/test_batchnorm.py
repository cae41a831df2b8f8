"""`BatchNorm` in PC training, against hand-written references.

The statistics are the batch's at the feedforward pass and stay fixed for inference; the
weight gradient differentiates through them (their values still the feedforward pass's); the
running statistics move by the momentum once per training step, are kept only when the step's
guard keeps the update, and are saved and restored with the weights.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from tests.inference.compiles import count_compilations

N, D_IN, D_HID, D_OUT = 64, 5, 8, 3
EPS, STEP, T, LR = 1e-5, 0.1, 3, 0.05


class NormNet(pxc.EnergyModule):
    """x -> Linear -> BatchNorm -> tanh -> node 0 -> Linear -> clamped output node."""

    def __init__(self):
        self.l1 = pxnn.Linear(D_IN, D_HID)
        self.norm = pxnn.BatchNorm(D_HID, eps=EPS)
        self.l2 = pxnn.Linear(D_HID, D_OUT)
        self.vodes = [pxc.Vode(), pxc.Vode()]
        self.vodes[1].h.frozen = True

    def __call__(self, x, y=None):
        h = self.vodes[0](jnp.tanh(self.norm(self.l1(x))))
        self.vodes[1](self.l2(h))
        if y is not None:
            self.vodes[1].set("h", y)
        return self.vodes[1].get("u")


def data(seed=0, n=N):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    x = 2.0 * jax.random.normal(kx, (n, D_IN)) + 1.0
    y = jax.nn.one_hot(jax.random.randint(ky, (n,), 0, D_OUT), D_OUT)
    return x, y


def params_of(model):
    return {
        "W1": model.l1.nn.weight.value,
        "b1": model.l1.nn.bias.value,
        "gamma": model.norm.weight.value,
        "beta": model.norm.bias.value,
        "W2": model.l2.nn.weight.value,
        "b2": model.l2.nn.bias.value,
    }


def hand_hidden(p, x, mean, var):
    return jnp.tanh(p["gamma"] * (x @ p["W1"].T + p["b1"] - mean) / jnp.sqrt(var + EPS) + p["beta"])


def hand_energy(p, h, x, y, mean, var):
    """Batch mean of 0.5||h - tanh(bn(W1 x + b1))||^2 + 0.5||y - W2 h - b2||^2, statistics fixed."""
    e_hidden = 0.5 * jnp.sum((h - hand_hidden(p, x, mean, var)) ** 2, axis=-1)
    e_out = 0.5 * jnp.sum((y - h @ p["W2"].T - p["b2"]) ** 2, axis=-1)
    return jnp.mean(e_hidden + e_out)


def batch_statistics(p, x):
    pre = x @ p["W1"].T + p["b1"]
    return pre.mean(0), pre.var(0)


def hand_step(p, x, y):
    """Feedforward statistics held for T activity steps z -= eta * N * dF/dz; one SGD weight step
    differentiating through the statistics (the normalised features are W1 x + b1, so their
    statistics at the weight step are the feedforward ones)."""
    mean, var = batch_statistics(p, x)
    h = hand_hidden(p, x, mean, var)
    for _ in range(T):
        h = h - STEP * x.shape[0] * jax.grad(hand_energy, argnums=1)(p, h, x, y, mean, var)
    grads = jax.grad(lambda p: hand_energy(p, h, x, y, *batch_statistics(p, x)))(p)
    return {k: p[k] - LR * grads[k] for k in p}, h, mean, var


def make(seed=0):
    px.RKG.seed(seed)
    model = NormNet()
    optim = pxu.Optim(optax.sgd(LR), pxu.Mask(pxnn.LayerParam)(model))
    return model, optim


INFERENCE = pxi.DiscreteInference(step_size=STEP, steps=T)


def test_step_uses_the_feedforward_statistics_throughout_and_moves_the_running_ones():
    model, optim = make()
    x, y = data()
    p_new, h, mean, var = hand_step(params_of(model), x, y)
    pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    for k, v in params_of(model).items():
        np.testing.assert_allclose(v, p_new[k], rtol=1e-4, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(model.vodes[0].h.value, h, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.norm.batch_mean.value, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.norm.batch_var.value, var, rtol=1e-5)
    np.testing.assert_allclose(model.norm.running_mean.value, 0.1 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.norm.running_var.value, 0.9 + 0.1 * var * N / (N - 1), rtol=1e-5)


def test_running_statistics_after_k_steps_are_the_exponential_average():
    """With the weights fixed (learning rate 0), k steps give (1 - 0.9^k) mu and 0.9^k + (1 - 0.9^k) s^2."""
    px.RKG.seed(0)
    model = NormNet()
    optim = pxu.Optim(optax.sgd(0.0), pxu.Mask(pxnn.LayerParam)(model))
    x, y = data()
    pre = x @ model.l1.nn.weight.value.T + model.l1.nn.bias.value
    for _ in range(5):
        pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    kept = 0.9**5
    np.testing.assert_allclose(model.norm.running_mean.value, (1 - kept) * pre.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.norm.running_var.value, kept + (1 - kept) * pre.var(0, ddof=1), rtol=1e-5)


def test_evaluation_uses_the_running_statistics_and_leaves_them_alone():
    model, optim = make()
    x, y = data()
    for _ in range(3):
        pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    running = (model.norm.running_mean.value, model.norm.running_var.value)
    x_test, y_test = data(seed=1, n=50)
    p = params_of(model)
    expected = hand_hidden(p, x_test, *running) @ p["W2"].T + p["b2"]
    np.testing.assert_allclose(pxi.predict(model, x_test), expected, rtol=1e-5, atol=1e-6)
    accuracy = pxi.evaluate_accuracy(model, x_test, y_test)
    assert float(accuracy) == pytest.approx(float(jnp.mean(expected.argmax(-1) == y_test.argmax(-1))))
    assert model.is_training  # the caller's mode is kept
    np.testing.assert_array_equal(model.norm.running_mean.value, running[0])
    np.testing.assert_array_equal(model.norm.running_var.value, running[1])
    model.eval()
    np.testing.assert_allclose(pxi.predict(model, x_test), expected, rtol=1e-5, atol=1e-6)


def test_statistics_of_conv_features_are_per_channel_over_batch_and_space():
    norm = pxnn.BatchNorm(4)

    @pxf.vmap(pxu.Mask(pxc.VodeParam, (None, 0)), in_axes=(0,), out_axes=0, axis_name="batch")
    def normalise(x, *, norm):
        return norm(x)

    x = jax.random.normal(jax.random.PRNGKey(2), (6, 4, 3, 5)) * jnp.arange(1.0, 5.0)[:, None, None] + 2.0
    with pxu.step(norm, pxc.STATUS.INIT):
        y = normalise(x, norm=norm)
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    np.testing.assert_allclose(norm.batch_mean.value, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.batch_var.value, var, rtol=1e-5)
    expected = (x - mean[:, None, None]) / jnp.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    n = 6 * 3 * 5
    np.testing.assert_allclose(norm.running_var.value, 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)


def test_rejected_step_leaves_the_running_statistics_and_weights():
    model, optim = make()
    x, y = data()
    pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    running = (np.asarray(model.norm.running_mean.value), np.asarray(model.norm.running_var.value))
    weights = {k: np.asarray(v) for k, v in params_of(model).items()}
    out = pxi.train_supervised(model, optim, x.at[3, 0].set(jnp.nan), y, inference=INFERENCE)
    assert not bool(out["finite"])
    np.testing.assert_array_equal(model.norm.running_mean.value, running[0])
    np.testing.assert_array_equal(model.norm.running_var.value, running[1])
    for k, v in params_of(model).items():
        np.testing.assert_array_equal(v, weights[k], err_msg=k)


def test_one_compilation_with_evaluations_between_and_a_changing_evaluation_batch():
    model, optim = make()
    x, y = data()
    pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    pxi.evaluate_accuracy(model, *data(seed=3, n=20))
    with count_compilations() as compiled:
        for _ in range(4):
            pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
            pxi.evaluate_accuracy(model, *data(seed=3, n=20))
    assert compiled[0] == 0


def test_files_and_checkpoints_hold_the_running_statistics(tmp_path):
    model, optim = make()
    x, y = data()
    for _ in range(2):
        pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    pxu.save_checkpoint(tmp_path / "ckpt.npz", model=model, optim=optim)
    pxu.save_params(model, tmp_path / "params.npz")
    for _ in range(2):
        pxi.train_supervised(model, optim, x, y, inference=INFERENCE)
    resumed, resumed_optim = make(seed=7)
    pxi.train_supervised(resumed, resumed_optim, x, y, inference=INFERENCE)  # build state of the same shapes
    pxu.load_checkpoint(tmp_path / "ckpt.npz", model=resumed, optim=resumed_optim)
    for _ in range(2):
        pxi.train_supervised(resumed, resumed_optim, x, y, inference=INFERENCE)
    for a, b in [
        (model.norm.running_mean, resumed.norm.running_mean),
        (model.norm.running_var, resumed.norm.running_var),
        (model.l1.nn.weight, resumed.l1.nn.weight),
    ]:
        np.testing.assert_array_equal(a.value, b.value)
    fresh, _ = make(seed=9)
    pxu.load_params(fresh, tmp_path / "params.npz")
    assert float(jnp.max(jnp.abs(fresh.norm.running_mean.value))) > 0  # the default file holds them


def test_clear_errors_outside_the_batch_and_without_a_feedforward_pass():
    model, _ = make()
    x, _ = data()
    with pytest.raises(ValueError, match=r"BatchNorm\(8\) in training mode needs the batch"):
        with pxu.step(model, pxc.STATUS.INIT):
            model(x[0])
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT):
        model(x[0])  # evaluation mode needs no batch
    model.train()
    fresh, _ = make()
    fresh.vodes[0].h.value = jnp.zeros((N, D_HID))
    with pytest.raises(ValueError, match="has no batch statistics"):
        pxi.batch_energy(fresh, x)  # inference's energy before any feedforward pass
    with pytest.raises(ValueError, match="features first"):
        model.norm(jnp.ones((3, D_HID)))


class DeepNormNet(pxc.EnergyModule):
    """x -> Linear -> node 0 -> Linear -> BatchNorm -> tanh -> node 1 -> Linear -> clamped output: normalised activities."""

    def __init__(self):
        self.l1 = pxnn.Linear(D_IN, D_HID)
        self.l2 = pxnn.Linear(D_HID, D_HID)
        self.norm = pxnn.BatchNorm(D_HID, eps=EPS)
        self.l3 = pxnn.Linear(D_HID, D_OUT)
        self.vodes = [pxc.Vode(), pxc.Vode(), pxc.Vode()]
        self.vodes[2].h.frozen = True

    def __call__(self, x, y=None):
        h = self.vodes[0](self.l1(x))
        h = self.vodes[1](jnp.tanh(self.norm(self.l2(h))))
        self.vodes[2](self.l3(h))
        if y is not None:
            self.vodes[2].set("h", y)
        return self.vodes[2].get("u")


def test_weight_gradient_differentiates_through_the_statistics_and_inference_holds_them():
    """At relaxed activities the weight gradient is d/dtheta of the energy with statistics that move with theta
    (their value the feedforward pass's); the activity gradient holds them fixed, so it is per sample."""
    px.RKG.seed(0)
    model = DeepNormNet()
    x, y = data()
    pxi.init_forward(model, x, y)
    h0 = model.vodes[0].h.value + 0.3 * jax.random.normal(jax.random.PRNGKey(7), (N, D_HID))
    h1 = model.vodes[1].h.value + 0.3 * jax.random.normal(jax.random.PRNGKey(8), (N, D_HID))
    model.vodes[0].h.value, model.vodes[1].h.value = h0, h1
    p0 = {name: getattr(model, name).nn.weight.value for name in ("l1", "l2", "l3")}
    p0.update({f"{name}_b": getattr(model, name).nn.bias.value for name in ("l1", "l2", "l3")})
    p0.update(gamma=model.norm.weight.value, beta=model.norm.bias.value)
    ff_pre = (x @ p0["l1"].T + p0["l1_b"]) @ p0["l2"].T + p0["l2_b"]  # the features at the feedforward pass
    ff_mean, ff_var = ff_pre.mean(0), ff_pre.var(0)

    def statistics(p):
        pre = h0 @ p["l2"].T + p["l2_b"]
        return pre.mean(0), pre.var(0)

    live0 = statistics(p0)

    def energy(p, h0, h1, mean, var):
        e0 = 0.5 * jnp.sum((h0 - x @ p["l1"].T - p["l1_b"]) ** 2, -1)
        u1 = jnp.tanh(p["gamma"] * (h0 @ p["l2"].T + p["l2_b"] - mean) / jnp.sqrt(var + EPS) + p["beta"])
        e1 = 0.5 * jnp.sum((h1 - u1) ** 2, -1)
        e2 = 0.5 * jnp.sum((y - h1 @ p["l3"].T - p["l3_b"]) ** 2, -1)
        return jnp.mean(e0 + e1 + e2)

    def moving(p):  # value ff_mean at p0, derivative that of this batch's statistics
        mean, var = statistics(p)
        return energy(p, h0, h1, ff_mean + mean - live0[0], ff_var + var - live0[1])

    value, grads = pxi.param_grad(model, x)
    np.testing.assert_allclose(value, energy(p0, h0, h1, ff_mean, ff_var), rtol=1e-5)
    expected = jax.grad(moving)(p0)
    got = {name: getattr(grads, name).nn.weight.value for name in ("l1", "l2", "l3")}
    got.update({f"{name}_b": getattr(grads, name).nn.bias.value for name in ("l1", "l2", "l3")})
    got.update(gamma=grads.norm.weight.value, beta=grads.norm.bias.value)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-4, atol=1e-6, err_msg=k)
    frozen = jax.grad(lambda p: energy(p, h0, h1, ff_mean, ff_var))(p0)
    assert float(jnp.max(jnp.abs(frozen["l2"] - expected["l2"]))) > 1e-4  # the statistics' path matters

    _, activity = pxi.activity_grad(model, x)
    want = jax.grad(energy, argnums=(1, 2))(p0, h0, h1, ff_mean, ff_var)
    for vode, g in zip(activity.vodes[:2], want):
        np.testing.assert_allclose(vode.h.value, g, rtol=1e-4, atol=1e-7)
