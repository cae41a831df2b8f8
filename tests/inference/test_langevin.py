"""Monte Carlo PC (Langevin inference) against hand-written references and closed-form Gaussian posteriors.

The linear-Gaussian checks use a model whose posterior is Gaussian: with $F = \\frac12\\|z - (W_1x + b_1)\\|^2 +
\\frac12\\|y - (W_2 z + b_2)\\|^2$ the activities' density $\\propto e^{-F}$ has precision $H = I + W_2^\\top W_2$ and
mean $H^{-1}(W_1x + b_1 + W_2^\\top(y - b_2))$. The unadjusted Langevin chain with step $\\eta$ has exactly this
mean and the covariance $H^{-1}(I - \\eta H/2)^{-1}$ at stationarity (solve $\\Sigma = A\\Sigma A^\\top + 2\\eta I$,
$A = I - \\eta H$), $O(\\eta)$ from $H^{-1}$. Means are compared within 4.5 standard errors, covariances within
4.5 standard errors of a sample covariance of independent chains.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP


def weights(model):
    return [(np.asarray(layer.nn.weight.value), np.asarray(layer.nn.bias.value)) for layer in model.layers]


def hand_noise(key, t, z):
    """The documented draw: leaf l, sample i at step t from fold_in(fold_in(fold_in(key, t), l), i)."""
    out = []
    for leaf, a in enumerate(z):
        k = jax.random.fold_in(jax.random.fold_in(key, t), leaf)
        out.append(jnp.stack([jax.random.normal(jax.random.fold_in(k, i), a.shape[1:]) for i in range(a.shape[0])]))
    return out


def test_langevin_steps_equal_the_hand_written_update():
    px.RKG.seed(0)
    model = PCMLP([3, 4, 2], act_fn=jnp.tanh)
    (w1, b1), (w2, b2) = weights(model)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (5, 2))
    key = jax.random.PRNGKey(7)
    eta, beta = 0.1, 2.0

    def energy(z):  # the batch sum of every sample's energy: its gradient is each sample's own
        return 0.5 * jnp.sum((z - jnp.tanh(x @ w1.T + b1)) ** 2) + 0.5 * jnp.sum((y - (z @ w2.T + b2)) ** 2)

    @jax.jit
    def reference(z):
        for t in range(3):
            z = z - eta * jax.grad(energy)(z) + jnp.sqrt(2 * eta / beta) * hand_noise(key, t, [z])[0]
        return z

    pxi.init_forward(model, x, y)
    z = reference(model.vodes[0].h.value)
    pxi.LangevinInference(step_size=eta, steps=3, beta=beta, key=key).run(model, x)
    np.testing.assert_allclose(model.vodes[0].h.value, z, rtol=1e-5, atol=1e-6)


def linear_gaussian(seed=0):
    """A linear PCMLP [3, 2, 3], two (x, y) pairs, and the closed-form posterior of the hidden activity."""
    px.RKG.seed(seed)
    model = PCMLP([3, 2, 3], act_fn="linear")
    (w1, b1), (w2, b2) = weights(model)
    xs = np.array([[0.5, -1.0, 0.3], [-0.2, 0.8, 1.1]], np.float32)
    ys = np.array([[1.0, 0.2, -0.5], [-0.7, 0.4, 0.9]], np.float32)
    precision = np.eye(2) + w2.T @ w2
    means = [np.linalg.solve(precision, w1 @ x + b1 + w2.T @ (y - b2)) for x, y in zip(xs, ys)]
    return model, xs, ys, precision, means


def check_gaussian(samples, mean, cov):
    n = len(samples)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 4.5 * np.sqrt(np.diag(cov) / n))
    sample_cov = np.cov(samples.T)
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)  # standard error of a sample covariance
    np.testing.assert_array_less(np.abs(sample_cov - cov), 4.5 * se)


def test_discrete_chain_samples_the_gaussian_posterior():
    model, xs, ys, precision, means = linear_gaussian()
    n, eta, beta = 3000, 0.05, 2.0
    x, y = np.repeat(xs, n, axis=0), np.repeat(ys, n, axis=0)
    pxi.init_forward(model, x, y)
    pxi.LangevinInference(step_size=eta, steps=250, beta=beta).run(model, x)
    z = np.asarray(model.vodes[0].h.value)
    # the chain's stationary covariance at step eta and temperature 1/beta; the exact posterior is O(eta) away
    chain_cov = np.linalg.inv(precision) @ np.linalg.inv(np.eye(2) - eta * precision / 2) / beta
    posterior_cov = np.linalg.inv(precision) / beta
    for k in range(2):
        check_gaussian(z[k * n : (k + 1) * n], means[k], chain_cov)
        np.testing.assert_allclose(np.cov(z[k * n : (k + 1) * n].T), posterior_cov, atol=0.045)


def test_without_noise_it_is_discrete_inference():
    model, xs, ys, _, _ = linear_gaussian()
    x, y = np.repeat(xs, 4, axis=0), np.repeat(ys, 4, axis=0)
    pxi.init_forward(model, x, y)
    pxi.DiscreteInference(step_size=0.1, steps=5).run(model, x)
    expected = np.asarray(model.vodes[0].h.value)
    pxi.init_forward(model, x, y)
    pxi.LangevinInference(step_size=0.1, steps=5, beta=float("inf")).run(model, x)
    np.testing.assert_allclose(model.vodes[0].h.value, expected, rtol=1e-6, atol=1e-7)


def test_sde_chain_samples_the_gaussian_posterior_reproducibly_and_without_noise_descends():
    model, xs, ys, precision, means = linear_gaussian(1)
    n, dt = 800, 0.05
    x, y = np.repeat(xs, n, axis=0), np.repeat(ys, n, axis=0)

    def run(strategy, seed=0):
        px.RKG.seed(seed)
        pxi.init_forward(model, x, y)
        stats = strategy.run(model, x)
        return np.asarray(model.vodes[0].h.value), stats

    sde = pxi.LangevinSDEInference(dt=dt, steps=120)
    z, stats = run(sde)
    assert int(stats["steps"]) == 120 and float(stats["t1"]) == pytest.approx(6.0)
    chain_cov = np.linalg.inv(precision) @ np.linalg.inv(np.eye(2) - dt * precision / 2)  # Euler-Maruyama
    for k in range(2):
        check_gaussian(z[k * n : (k + 1) * n], means[k], chain_cov)
    assert np.array_equal(run(sde)[0], z), "the same seed, the same paths"
    assert not np.allclose(run(sde, 1)[0], z)

    # without noise, Euler on the gradient flow is gradient descent with step dt (beta is traced: no new compile)
    flow = run(pxi.LangevinSDEInference(dt=dt, steps=120, beta=float("inf")))[0]
    descent = run(pxi.DiscreteInference(step_size=dt, steps=120))[0]
    np.testing.assert_allclose(flow, descent, rtol=1e-5, atol=1e-6)


def test_noise_is_reproducible_from_the_seed_and_per_sample():
    model, xs, ys, _, _ = linear_gaussian()
    x, y = np.repeat(xs, 4, axis=0), np.repeat(ys, 4, axis=0)
    strategy = pxi.LangevinInference(steps=5)

    def run(seed, rows=8):
        px.RKG.seed(seed)
        pxi.init_forward(model, x[:rows], y[:rows])
        strategy.run(model, x[:rows])
        return np.asarray(model.vodes[0].h.value)

    first, again, other = run(3), run(3), run(4)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.unique(first.round(5), axis=0).shape[0] == 8, "each sample its own noise"
    np.testing.assert_allclose(run(3, rows=3), first[:3], rtol=1e-6, atol=1e-6)  # not the batch size


def test_training_modes_take_langevin_inference():
    px.RKG.seed(0)
    images = jax.random.uniform(jax.random.PRNGKey(0), (16, 6))
    langevin = pxi.LangevinInference(step_size=0.05, steps=10)

    def fresh():
        px.RKG.seed(0)
        model = PCMLP([2, 8, 6], free_input=True)
        return model, pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))

    runs = []
    for _ in range(2):  # the same seed gives the same weights
        model, optim_w = fresh()
        out = pxi.train_unsupervised(model, optim_w, images, inference=langevin, sigma=0.1)
        runs.append(weights(model))
    assert bool(out["finite"]) and int(out["steps"]) == 10
    for (wa, ba), (wb, bb) in zip(*runs):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
    model, optim_w = fresh()
    px.RKG.seed(1)  # the same initial weights, another stream for the random start and the Langevin noise
    pxi.train_unsupervised(model, optim_w, images, inference=langevin, sigma=0.1)
    assert not np.allclose(weights(model)[0][0], runs[0][0][0])

    x = jax.random.normal(jax.random.PRNGKey(3), (16, 2))
    sup = PCMLP([2, 8, 6])
    optim_s = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(sup))
    assert bool(pxi.train_incremental(sup, optim_s, x, images, inference=langevin)["finite"])


def test_monte_carlo_averages_the_weight_gradient_over_the_chain():
    """K = 3 states after T = 4 noise-free updates of a linear network: the SGD step on the mean of their gradients."""
    model, xs, ys, _, _ = linear_gaussian()
    (w1, b1), (w2, b2) = weights(model)
    eta, lr, T, K = 0.1, 0.5, 4, 3

    def energy(params, z):  # the batch mean, as the weights see it
        w1, b1, w2, b2 = params
        return 0.5 * jnp.mean(jnp.sum((z - (xs @ w1.T + b1)) ** 2, 1) + jnp.sum((ys - (z @ w2.T + b2)) ** 2, 1))

    @jax.jit
    def reference(params):
        z = xs @ params[0].T + params[1]  # the feedforward start
        total = [0.0] * 4
        for t in range(T + K - 1):
            if t >= T:
                total = [a + g for a, g in zip(total, jax.grad(energy)(params, z))]
            z = z - eta * len(xs) * jax.grad(energy, argnums=1)(params, z)
        total = [a + g for a, g in zip(total, jax.grad(energy)(params, z))]
        return [p - lr * g / K for p, g in zip(params, total)]

    expected = reference((w1, b1, w2, b2))

    optim_w = pxu.Optim(optax.sgd(lr), pxu.Mask(pxnn.LayerParam)(model))
    langevin = pxi.LangevinInference(step_size=eta, steps=T, beta=float("inf"))
    out = pxi.train_monte_carlo(model, optim_w, xs, ys, inference=langevin, samples=K)
    assert int(out["steps"]) == T + K - 1 and bool(out["finite"])
    got = [a for pair in weights(model) for a in pair]
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


class LinearGenerator(pxc.EnergyModule):
    """x = W z + b + noise, z ~ N(0, I): the marginal of x is N(b, W W^T + I)."""

    def __init__(self, d_z, d_x):
        self.d_z = d_z
        self.layer = pxnn.Linear(d_z, d_x)
        self.latent = pxc.Vode((d_z,))  # predicts u = 0: the prior N(0, I)
        self.out = pxc.Vode((d_x,))
        self.out.h.frozen = True

    def __call__(self, x=None, y=None):
        z = self.latent(jnp.zeros(self.d_z))
        self.out(self.layer(z))
        if y is not None:
            self.out.set("h", y)
        return self.out.get("u")


def test_sample_draws_the_model_marginal():
    px.RKG.seed(0)
    model = LinearGenerator(2, 3)
    w, b = np.asarray(model.layer.nn.weight.value), np.asarray(model.layer.nn.bias.value)
    n, eta = 3000, 0.05
    samples, means = pxi.sample(model, n, inference=pxi.LangevinInference(step_size=eta, steps=300), sigma=0.5)
    assert samples.shape == (n, 3) and means.shape == (n, 3)
    assert model.out.h.frozen, "the output is clamped again after sampling"
    # the joint of (z, x) has precision H = [[I + W^T W, -W^T], [-W, I]]; its x block (ULA-corrected)
    h = np.block([[np.eye(2) + w.T @ w, -w.T], [-w, np.eye(3)]])
    cov = (np.linalg.inv(h) @ np.linalg.inv(np.eye(5) - eta * h / 2))[2:, 2:]
    check_gaussian(np.asarray(samples), b, cov)
    np.testing.assert_allclose(np.cov(np.asarray(samples).T), w @ w.T + np.eye(3), atol=0.15)
