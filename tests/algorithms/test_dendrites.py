"""Predictive dendrites (`BidirectionalPCMLP(dendrites=True)`): JPC's ``pdm_energy_fn`` and its gradients.

The activity gradient of each hidden node is the gradient of its own energy only (JPC's
``compute_pdm_activity_grad``); weight gradients are those of one energy for every weighting, where JPC's
switch to bPC's when both weights equal exactly 1.
"""

import jax
import numpy as np
import pytest

import pcframe as px
import pcframe.inference as pxi
from tests.algorithms import _bidirectional_reference as ref
from tests.algorithms.test_bidirectional import SIZES, _assert_trees_close, _setup


@pytest.mark.parametrize("a_d, a_g", [(1.0, 1.0), (0.7, 1.3)])
def test_energy_and_local_activity_gradients_equal_jpc(a_d, a_g):
    model, x, y, z = _setup(a_d, a_g, dendrites=True)
    params = ref.weights(model)
    kwargs = {"forward_energy_weight": a_d, "backward_energy_weight": a_g}
    energy = pxi.ActivityEnergy(pxi.EnergyFunction(model, x), batch_mean=True)  # JPC's convention
    (value, per_layer), grads = energy.value_and_grad(z)
    np.testing.assert_allclose(value, ref.jpc_pdm_energy(params, z, y, x, **kwargs), rtol=1e-6)
    for l in range(len(z)):  # each hidden node holds its own layer energy
        np.testing.assert_allclose(per_layer[l], ref.jpc_pdm_layer_energy(params, z, y, x, l, **kwargs), rtol=1e-6)
    _assert_trees_close(grads, ref.jpc_pdm_activity_grads(params, z, y, x, **kwargs), rtol=1e-5, atol=1e-7)
    # local: dF_l/dz_l = a_d (z_l - u_l) + a_g (z_l - u_gen_l), not the gradient of the total energy
    total = jax.grad(lambda z: ref.jpc_pdm_energy(params, z, y, x, **kwargs))(z)
    assert max(float(abs(a - b).max()) for a, b in zip(grads, total)) > 1e-3


def test_weight_gradients_equal_jpc_away_from_one_and_stay_continuous_at_one():
    """JPC's gradients jump at a_d = a_g = 1 (to bPC's); pcframe's are the PDM energy's on both sides."""
    grads = {}
    for a_d in (1.0, 1.0 + 1e-6):
        model, x, y, z = _setup(a_d, 1.0, dendrites=True, rkg=px.RandomKeyGenerator(7))  # the same weights
        params = ref.weights(model)
        _, g = pxi.param_grad(model, x)
        ours = ref.model_param_grads(model, g)
        pdm = jax.grad(ref.jpc_pdm_energy)(params, z, y, x, forward_energy_weight=a_d)
        _assert_trees_close(ours, pdm, rtol=1e-5, atol=1e-7)
        grads[a_d] = (ours, ref.jpc_pdm_param_grads(params, z, y, x, forward_energy_weight=a_d))
    (ours_one, jpc_one), (ours_near, jpc_near) = grads[1.0], grads[1.0 + 1e-6]
    _assert_trees_close(ours_one, ours_near, atol=1e-5)
    jump = float(abs(jpc_one[0][-1][0] - jpc_near[0][-1][0]).max())  # JPC's output weight W_L
    assert jump > 1e-2, "JPC's W_L gradient jumps from bPC's to zero"
    assert float(abs(ours_one[0][-1][0]).max()) == 0.0, "W_L is not in the PDM energy"


def test_clamped_errors_give_jpc_bpc_gradients_at_one_and_every_weighting():
    model, x, y, z = _setup(1.0, 1.0, dendrites=True, clamped_errors=True)
    params = ref.weights(model)
    _, g = pxi.param_grad(model, x)
    _assert_trees_close(ref.model_param_grads(model, g), ref.jpc_pdm_param_grads(params, z, y, x), rtol=1e-5, atol=1e-7)
    model, x, y, z = _setup(0.7, 1.3, dendrites=True, clamped_errors=True)
    params = ref.weights(model)
    _, g = pxi.param_grad(model, x)
    expected = jax.grad(
        lambda p: ref.jpc_bpc_energy(p, z, y, x, forward_energy_weight=0.7, backward_energy_weight=1.3)
    )(params)
    _assert_trees_close(ref.model_param_grads(model, g), expected, rtol=1e-5, atol=1e-7)


def test_local_inference_settles_at_the_weighted_mean_of_the_two_predictions():
    """With fixed neighbours each node's equilibrium is (a_d u + a_g u_gen) / (a_d + a_g); inference converges."""
    model, x, y, _ = _setup(0.7, 1.3, dendrites=True)
    pxi.init_forward(model, x, y)
    pxi.DiscreteInference(step_size=0.2, steps=400).run(model, x)
    energy = pxi.ActivityEnergy(pxi.EnergyFunction(model, x))
    _, grads = energy.value_and_grad(energy.initial())
    assert max(float(abs(g).max()) for g in grads) < 1e-4
    assert len(grads) == len(SIZES) - 2
