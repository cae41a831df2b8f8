"""ePC (`ErrorInference`): the error-parametrised energy against its formula, JPC's conventions, and PC's minima.

The formula (Goemaere et al.): with $z_0 = x$ and $z_\\ell = f_\\ell(z_{\\ell-1}) + \\epsilon_\\ell$,
$\\tilde F(\\epsilon) = \\sum_{\\ell<L} \\frac12\\lVert\\epsilon_\\ell\\rVert^2 + \\frac12\\lVert y - f_L(z_{L-1})\\rVert^2$.
JPC's ``epc_energy_fn`` is re-implemented by hand from its source (JPC is not a dependency).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP

SIZES = [5, 7, 6, 3]


def _data(n=4, seed=0):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(kx, (n, SIZES[0])), jax.random.normal(ky, (n, SIZES[-1]))


def _layers(model):
    """The model's layer functions $f_\\ell$ as pure JAX (tanh hidden, linear output)."""
    Ws = [layer.nn.weight.value for layer in model.layers]
    bs = [layer.nn.bias.value for layer in model.layers]
    fs = [lambda z, W=W, b=b: jnp.tanh(z @ W.T + b) for W, b in zip(Ws[:-1], bs[:-1])]
    return fs + [lambda z, W=Ws[-1], b=bs[-1]: z @ W.T + b], (Ws, bs)


def epc_formula(fs, errors, x, y):
    """Goemaere et al.'s ePC energy, summed over the batch (pcframe's per-sample convention)."""
    z = x
    for f, e in zip(fs[:-1], errors):
        z = f(z) + e
    return sum(0.5 * jnp.sum(e**2) for e in errors) + 0.5 * jnp.sum((y - fs[-1](z)) ** 2)


def jpc_epc_energy(fs, errors, y, x):
    """JPC's ``epc_energy_fn`` (supervised, mse, sp): its error list ends with an output error that
    enters the output prediction, ``zL = f_L(z_{L-1}) - errors[-1]``, and is not penalised."""
    z = x
    for f, e in zip(fs[:-1], errors[:-1]):
        z = f(z) + e
    zL = fs[-1](z) - errors[-1]
    total = sum(0.5 * jnp.sum(e**2) for e in errors[:-1]) + 0.5 * jnp.sum((y - zL) ** 2)
    return total / y.shape[0]


def _energy(model, x, y, batch_mean=False):
    pxi.init_forward(model, x, y)
    activity = pxi.ActivityEnergy(pxi.EnergyFunction(model, x), batch_mean=batch_mean)
    return pxi.ErrorEnergy(activity)


def _random_errors(energy, seed=3):
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    return [0.5 * jax.random.normal(k, e.shape) for k, e in zip(keys, energy.initial())]


def test_error_energy_and_gradient_equal_the_formula():
    model = PCMLP(SIZES)
    x, y = _data()
    energy = _energy(model, x, y)
    errors = _random_errors(energy)
    fs, _ = _layers(model)
    (value, per_layer), grads = energy.value_and_grad(errors)
    expected, expected_grads = jax.value_and_grad(lambda e: epc_formula(fs, e, x, y))(errors)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    for g, h in zip(grads, expected_grads):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-6)
    # per node: the hidden errors' own penalties and the output's squared error (batch means)
    np.testing.assert_allclose(per_layer[:-1], [0.5 * jnp.sum(e**2) / len(x) for e in errors], rtol=1e-6)


def test_states_are_the_error_perturbed_forward_pass_and_initial_errors_invert_it():
    model = PCMLP(SIZES)
    x, y = _data()
    energy = _energy(model, x, y)
    for e in energy.initial():  # feedforward initialisation: every error is zero
        assert float(jnp.max(jnp.abs(e))) == 0.0
    errors = _random_errors(energy)
    fs, _ = _layers(model)
    z, expected = x, []
    for f, e in zip(fs[:-1], errors):
        z = f(z) + e
        expected.append(z)
    states = energy.states(errors)
    for s, t in zip(states, expected):
        np.testing.assert_allclose(s, t, rtol=1e-6, atol=1e-6)
    pxi.EnergyFunction(model, x).write(states)  # activities z(eps) give back eps
    again = pxi.ErrorEnergy(pxi.ActivityEnergy(pxi.EnergyFunction(model, x))).initial()
    for a, b in zip(again, errors):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_agrees_with_jpc_when_its_output_error_is_zero():
    """JPC's convention (batch-mean energy, errors as variables) with its extra output error at zero."""
    model = PCMLP(SIZES)
    x, y = _data()
    energy = _energy(model, x, y, batch_mean=True)
    errors = _random_errors(energy)
    fs, _ = _layers(model)
    jpc_errors = errors + [jnp.zeros_like(y)]
    (value, _), grads = energy.value_and_grad(errors)
    jpc_value, jpc_grads = jax.value_and_grad(lambda e: jpc_epc_energy(fs, e, y, x))(jpc_errors)
    np.testing.assert_allclose(value, jpc_value, rtol=1e-6)
    for g, h in zip(grads, jpc_grads[:-1]):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-7)


def test_jpc_output_error_absorbs_the_loss_and_pcframe_has_none():
    """The documented difference: inferring JPC's unpenalised output error drives the output loss
    to zero (nothing left to learn from); pcframe's output stays clamped and the weights get a gradient."""
    model = PCMLP(SIZES)
    x, y = _data()
    fs, _ = _layers(model)
    errors = [jnp.zeros((len(x), n)) for n in SIZES[1:]]
    grad = jax.jit(jax.grad(lambda e: jpc_epc_energy(fs, e, y, x)))
    for _ in range(300):
        errors = [e - 0.5 * g for e, g in zip(errors, grad(errors))]
    jpc_final = float(jpc_epc_energy(fs, errors, y, x))
    assert jpc_final < 1e-4, "JPC's output error explains the target away"
    optim = pxu.Optim(optax.sgd(0.0), pxu.Mask(pxnn.LayerParam)(model))
    out = pxi.train_supervised(
        model,
        optim,
        x,
        y,
        inference=pxi.ErrorInference(pxi.DiscreteInference(step_size=0.1, steps=300)),
        metrics=pxi.Metrics(grad_norms=True),
    )
    assert float(out["energy"]) > 0.05 and float(out["energies"][-1]) > 0.01
    assert float(jnp.sum(out["grad_norms"])) > 1e-2


def test_same_minimum_as_pc_and_the_weight_gradient_there():
    """ePC and PC minimise the same energy: the equilibria, energies and (local) weight gradients agree."""
    x, y = _data()
    results = []
    model = PCMLP(SIZES)
    for inference in (
        pxi.DiscreteInference(step_size=0.1, steps=3000),
        pxi.ErrorInference(pxi.DiscreteInference(step_size=0.1, steps=600)),
    ):
        pxi.init_forward(model, x, y)
        inference.run(model, x)
        energy, grads = pxi.param_grad(model, x)
        z = [v.h.value for v in model.vodes[:-1]]
        results.append((energy, jax.tree_util.tree_leaves(grads), z))
    (e_pc, g_pc, z_pc), (e_epc, g_epc, z_epc) = results
    np.testing.assert_allclose(e_pc, e_epc, rtol=1e-4)
    for a, b in zip(z_pc, z_epc):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for a, b in zip(g_pc, g_epc):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_jpc_fixed_error_weight_gradient_equals_pc_only_at_equilibrium():
    """JPC differentiates the ePC energy at fixed errors; pcframe uses PC's gradient at z(eps).
    Away from equilibrium they differ; at it they agree."""
    x, y = _data()
    model = PCMLP(SIZES)
    _, (Ws, bs) = _layers(model)

    def jpc_weight_grad(errors):
        def energy(params):
            Ws, bs = params
            fs = [lambda z, W=W, b=b: jnp.tanh(z @ W.T + b) for W, b in zip(Ws[:-1], bs[:-1])]
            fs = fs + [lambda z: z @ Ws[-1].T + bs[-1]]
            return jpc_epc_energy(fs, list(errors) + [jnp.zeros_like(y)], y, x)

        return jax.tree_util.tree_leaves(jax.grad(energy)((Ws, bs)))

    def pc_weight_grad():
        _, grads = pxi.param_grad(model, x)
        leaves = {id(p): g for p, g in zip(_params(model), jax.tree_util.tree_leaves(grads))}
        return [leaves[id(p)] for p in _ordered(model)]

    pxi.init_forward(model, x, y)
    energy = pxi.ErrorEnergy(pxi.ActivityEnergy(pxi.EnergyFunction(model, x), batch_mean=True))
    errors = energy.initial()
    far = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jpc_weight_grad(errors), pc_weight_grad()))
    assert far > 1e-2, "before inference the two gradients differ"
    pxi.ErrorInference(pxi.DiscreteInference(step_size=0.1, steps=800)).run(model, x)
    errors = pxi.ErrorEnergy(pxi.ActivityEnergy(pxi.EnergyFunction(model, x))).initial()
    near = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jpc_weight_grad(errors), pc_weight_grad()))
    assert near < 1e-4


def _params(model):
    return [p for p in model.parameters(pxnn.LayerParam)]


def _ordered(model):
    weights = [layer.nn.weight for layer in model.layers]
    biases = [layer.nn.bias for layer in model.layers]
    return weights + biases


def test_ode_and_discrete_errors_reach_the_same_energy():
    x, y = _data()
    energies = []
    model = PCMLP(SIZES)
    for inner in (pxi.DiscreteInference(step_size=0.1, steps=600), pxi.ODEInference(max_t1=60.0)):
        pxi.init_forward(model, x, y)
        stats = pxi.ErrorInference(inner).run(model, x)
        energies.append(float(pxi.batch_energy(model, x)[0]))
    assert bool(stats["steady"])
    np.testing.assert_allclose(energies[0], energies[1], rtol=1e-3)


def test_unsupervised_free_input_is_an_unpenalised_variable():
    """JPC's unsupervised ePC raises IndexError; here the free input is inferred as itself."""
    model = PCMLP(SIZES, free_input=True)
    _, y = _data()
    pxi.init_random(model, None, y, sigma=0.3)
    energy = pxi.ErrorEnergy(pxi.ActivityEnergy(pxi.EnergyFunction(model, None)))
    errors = _random_errors(energy)
    fs, _ = _layers(model)
    assert errors[-1].shape == (len(y), SIZES[0])  # the input node is the model's last attribute

    def formula(e):
        z = e[-1]
        for f, ei in zip(fs[:-1], e[:-1]):
            z = f(z) + ei
        return sum(0.5 * jnp.sum(ei**2) for ei in e[:-1]) + 0.5 * jnp.sum((y - fs[-1](z)) ** 2)

    (value, _), grads = energy.value_and_grad(errors)
    expected, expected_grads = jax.value_and_grad(formula)(errors)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    for g, h in zip(grads, expected_grads):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-6)
    optim = pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.ErrorInference(pxi.DiscreteInference(step_size=0.1, steps=20))
    first = pxi.train_unsupervised(model, optim, y, inference=inference)
    assert bool(first["finite"]) and float(first["energy"]) < float(value) / len(y)


def test_per_sample_errors_do_not_depend_on_the_batch():
    x, y = _data(n=6)
    inference = pxi.ErrorInference(pxi.DiscreteInference(step_size=0.2, steps=15))
    model = PCMLP(SIZES)
    pxi.init_forward(model, x, y)
    inference.run(model, x)
    batch = model.vodes[0].h.value[:1]
    pxi.init_forward(model, x[:1], y[:1])
    inference.run(model, x[:1])
    np.testing.assert_allclose(model.vodes[0].h.value, batch, atol=1e-6)


def test_inner_must_be_a_strategy():
    with pytest.raises(TypeError, match="ErrorInference needs"):
        pxi.ErrorInference(optax.sgd(0.1))
    with pytest.raises(TypeError, match="twice"):
        pxi.ErrorInference(pxi.ErrorInference(pxi.DiscreteInference()))


def test_inferred_errors_are_readable_after_inference():
    """After ePC, `prediction_errors` gives the errors of a hand-written descent on the ePC energy."""
    x, y = _data(n=64)
    model = PCMLP(SIZES)
    fs, _ = _layers(model)
    eta, steps = 0.1, 40
    hand = [jnp.zeros((64, s)) for s in SIZES[1:-1]]
    for _ in range(steps):
        grads = jax.grad(lambda e: epc_formula(fs, e, x, y))(hand)
        hand = [e - eta * g for e, g in zip(hand, grads)]
    z = x
    for f, e in zip(fs[:-1], hand):
        z = f(z) + e
    output_error = y - fs[-1](z)

    pxi.init_forward(model, x, y)
    pxi.ErrorInference(pxi.DiscreteInference(step_size=eta, steps=steps)).run(model, x)
    activities = [v.h.value for v in model.vodes]
    for _ in range(2):  # reading them changes nothing
        errors = pxi.prediction_errors(model, x)
        assert list(errors) == ["vodes[0]", "vodes[1]", "vodes[2]"]
        for got, expected in zip(errors.values(), [*hand, output_error]):
            np.testing.assert_allclose(got, expected, atol=2e-5)
        for vode, before in zip(model.vodes, activities):
            np.testing.assert_array_equal(vode.h.value, before)
    assert float(jnp.max(jnp.abs(hand[0]))) > 1e-3  # the errors moved away from zero


def test_prediction_errors_need_activities():
    model = PCMLP(SIZES)
    with pytest.raises(ValueError, match="node vodes\\[0\\] of PCMLP holds no activity; run init_forward"):
        pxi.prediction_errors(model, _data()[0])
