"""Closed-form theory of deep linear PC networks against references written from the energy itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe.nn as pxnn
import pcframe.pc as pxc
from pcframe.analysis import (
    activity_hessian,
    activity_hessian_eigenvalues,
    linear_activity_solution,
    linear_equilibrium_energy,
    linear_rescaling_matrix,
    linear_weights,
)
from tests.conftest import x64 as double_precision

SIZES = {
    1: [3, 2],
    2: [3, 5, 2],
    3: [4, 6, 3, 2],
    4: [3, 5, 4, 6, 2],
}


@pytest.fixture
def x64():
    """Run a test in float64; the previous setting is restored afterwards."""
    with double_precision():
        yield


def random_problem(depth, n=7, seed=0):
    """Random weights (scale ~ 1/sqrt(fan-in)) and a batch (x, y) for the network of the given depth.

    Drawn with NumPy (no per-shape compilation); converted to the current JAX default float dtype.
    """
    rng = np.random.default_rng(seed)
    sizes = SIZES[depth]
    ws = [jnp.asarray(rng.normal(size=(d_out, d_in)) / np.sqrt(d_in)) for d_in, d_out in zip(sizes[:-1], sizes[1:])]
    x = jnp.asarray(rng.normal(size=(n, sizes[0])))
    y = jnp.asarray(rng.normal(size=(n, sizes[-1])))
    return ws, x, y


def sample_energy(ws, hidden, x, y):
    """sum_l 0.5 ||z_l - W_l z_{l-1}||^2 for one sample; `hidden` = [z_1, ..., z_{L-1}]."""
    zs = [x, *hidden, y]
    return sum(0.5 * jnp.sum((zs[l + 1] - w @ zs[l]) ** 2) for l, w in enumerate(ws))


def batch_energy(ws, hidden, x, y):
    """(1/N) sum_i sum_l 0.5 ||z_{l,i} - W_l z_{l-1,i}||^2 with rows as samples; `hidden` = [(N, d_l), ...]."""
    zs = [x, *hidden, y]
    return sum(0.5 * jnp.sum((zs[l + 1] - zs[l] @ w.T) ** 2) for l, w in enumerate(ws)) / x.shape[0]


def unflatten(flat, dims):
    return list(jnp.split(flat, np.cumsum(dims)[:-1]))


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_hessian_matches_autodiff(x64, depth):
    ws, x, y = random_problem(depth)
    dims = SIZES[depth][1:-1]
    z = jnp.asarray(np.random.default_rng(1).normal(size=sum(dims)))
    reference = jax.jit(jax.hessian(lambda flat: sample_energy(ws, unflatten(flat, dims), x[0], y[0])))(z)
    h = jax.jit(activity_hessian)(ws)
    assert h.shape == (sum(dims), sum(dims))
    np.testing.assert_allclose(h, reference, rtol=1e-12, atol=1e-12)
    eig = jax.jit(activity_hessian_eigenvalues)(ws)
    np.testing.assert_allclose(eig, np.linalg.eigvalsh(np.asarray(reference)), rtol=1e-10, atol=1e-12)
    assert eig[0] > 0


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_activity_solution_is_the_energy_minimum(x64, depth):
    ws, x, y = random_problem(depth)
    hidden = jax.jit(linear_activity_solution)(ws, x, y)
    assert [h.shape for h in hidden] == [(x.shape[0], d) for d in SIZES[depth][1:-1]]
    assert all(h.dtype == jnp.float64 for h in hidden)
    f_min, grads = jax.jit(jax.value_and_grad(lambda hs: batch_energy(ws, hs, x, y)))(hidden)
    for g in grads:
        np.testing.assert_allclose(g, 0.0, atol=1e-12)
    f_star = jax.jit(linear_equilibrium_energy)(ws, x, y)
    assert f_star.shape == ()
    assert abs(f_min - f_star) / f_star < 1e-6
    # any other activities have higher energy (strict convexity)
    rng = np.random.default_rng(1)
    bumped = [h + 1e-3 * rng.normal(size=h.shape) for h in hidden]
    assert jax.jit(batch_energy)(ws, bumped, x, y) > f_star


@pytest.mark.parametrize("depth", [2, 4])
def test_gradient_descent_reaches_closed_form(x64, depth):
    ws, x, y = random_problem(depth, seed=3)
    n = x.shape[0]
    hidden = [jnp.zeros((n, d)) for d in SIZES[depth][1:-1]]
    lr = 0.05  # step on the per-sample energy (N * F); small enough for these weight scales

    @jax.jit
    def descend(hidden):
        def body(_, hs):
            grads = jax.grad(lambda hs: n * batch_energy(ws, hs, x, y))(hs)
            return [h - lr * g for h, g in zip(hs, grads)]

        return jax.lax.fori_loop(0, 20_000, body, hidden)

    hidden = descend(hidden)
    f_gd = jax.jit(batch_energy)(ws, hidden, x, y)
    f_star = jax.jit(linear_equilibrium_energy)(ws, x, y)
    assert abs(f_gd - f_star) / f_star < 1e-6
    for h_gd, h_exact in zip(hidden, jax.jit(linear_activity_solution)(ws, x, y)):
        np.testing.assert_allclose(h_gd, h_exact, atol=1e-6)


def test_rescaling_matrix_written_out(x64):
    ws, x, y = random_problem(3)
    w1, w2, w3 = ws
    expected = jnp.eye(2) + (w3 @ w2) @ (w3 @ w2).T + w3 @ w3.T
    np.testing.assert_allclose(linear_rescaling_matrix(ws), expected, rtol=1e-12)
    r = y - x @ (w3 @ w2 @ w1).T
    expected_energy = 0.5 * np.mean([ri @ np.linalg.solve(expected, ri) for ri in np.asarray(r)])
    np.testing.assert_allclose(linear_equilibrium_energy(ws, x, y), expected_energy, rtol=1e-12)


def test_single_layer_is_half_mse(x64):
    ws, x, y = random_problem(1)
    expected = 0.5 * jnp.mean(jnp.sum((y - x @ ws[0].T) ** 2, axis=1))
    np.testing.assert_allclose(linear_equilibrium_energy(ws, x, y), expected, rtol=1e-12)
    np.testing.assert_allclose(linear_rescaling_matrix(ws), jnp.eye(2))
    assert linear_activity_solution(ws, x, y) == []
    assert activity_hessian(ws).shape == (0, 0)


def test_weight_gradient_of_closed_form_is_equilibrium_weight_gradient(x64):
    """d F*/d W equals dF/dW at the equilibrium activities (held fixed): the PC weight update at convergence."""
    ws, x, y = random_problem(3)
    hidden = jax.jit(linear_activity_solution)(ws, x, y)
    expected = jax.jit(jax.grad(lambda ws: batch_energy(ws, hidden, x, y)))(ws)
    got = jax.jit(jax.grad(linear_equilibrium_energy))(ws, x, y)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)


def test_float32_eager_and_jit():
    ws, x, y = random_problem(3)
    eager = linear_equilibrium_energy(ws, x, y)
    assert eager.dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(linear_equilibrium_energy)(ws, x, y), eager, rtol=1e-5)
    hidden = jax.jit(linear_activity_solution)(ws, x, y)
    assert all(h.dtype == jnp.float32 for h in hidden)
    with double_precision():
        ws64, x64_, y64 = random_problem(3)
        exact = jax.jit(linear_activity_solution)(ws64, x64_, y64)
    for h, h64 in zip(hidden, exact):
        np.testing.assert_allclose(h, h64, rtol=1e-4, atol=1e-5)


def test_shape_errors():
    ws, x, y = random_problem(2)
    with pytest.raises(ValueError, match="do not chain"):
        linear_equilibrium_energy([ws[0], ws[0]], x, y)
    with pytest.raises(ValueError, match="features"):
        linear_equilibrium_energy(ws, y, y)
    with pytest.raises(ValueError, match="batches"):
        linear_activity_solution(ws, x[0], y[0])
    with pytest.raises(ValueError, match="at least one"):
        activity_hessian([])


class LinearPC(pxc.EnergyModule):
    """A PC network of Linear layers (no activation), clamped output."""

    def __init__(self, sizes, bias=False):
        self.layers = [pxnn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode((s,)) for s in sizes[1:]]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y=None):
        for layer, vode in zip(self.layers, self.vodes):
            x = vode(layer(x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


def test_linear_weights_from_model():
    model = LinearPC([3, 5, 4, 2])
    ws = linear_weights(model)
    assert [w.shape for w in ws] == [(5, 3), (4, 5), (2, 4)]
    for w, layer in zip(ws, model.layers):
        np.testing.assert_array_equal(w, layer.nn.weight.value)
    x = jnp.ones((4, 3))
    y = jnp.zeros((4, 2))
    assert jnp.isfinite(jax.jit(linear_equilibrium_energy)(ws, x, y))


def test_linear_weights_rejects_bias_and_empty_models():
    with pytest.raises(ValueError, match="bias"):
        linear_weights(LinearPC([3, 5, 2], bias=True))
    with pytest.raises(ValueError, match="no pcframe.nn.Linear"):
        linear_weights(pxc.Vode((3,)))
