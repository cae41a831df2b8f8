"""Vode rules, statuses, transforms, caches and energies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe.pc as pxc
import pcframe.utils as pxu


class One(pxc.EnergyModule):
    def __init__(self, **kwargs):
        self.vode = pxc.Vode((3,), **kwargs)


def test_default_rules_forward_initialise_only_under_init():
    model = One()
    u = jnp.array([1.0, 2.0, 3.0])
    with pxu.step(model, pxc.STATUS.INIT):
        h = model.vode(u)
    np.testing.assert_array_equal(h, u)
    with pxu.step(model):
        model.vode(u + 1)
        np.testing.assert_array_equal(model.vode.get("h"), u)
        np.testing.assert_array_equal(model.vode.get("u"), u + 1)


def test_status_matches_exactly():
    model = One()
    model.vode.h.value = jnp.zeros(3)
    with pxu.step(model, "initialise"):
        model.vode(jnp.ones(3))
    np.testing.assert_array_equal(model.vode.h.value, jnp.zeros(3))


def test_custom_rules_and_transforms():
    model = One(
        ruleset={pxc.STATUS.INIT: ("h, u <- u:double",), "forward": ("h -> u:negate",)},
        tforms={"double": lambda vode, key, value, rkg: 2 * value, "negate": lambda vode, key, value, rkg: -value},
    )
    with pxu.step(model, pxc.STATUS.INIT):
        model.vode(jnp.ones(3))
    np.testing.assert_array_equal(model.vode.h.value, 2 * jnp.ones(3))
    with pxu.step(model, "forward"):
        model.vode.set("u", jnp.full(3, 5.0))
        np.testing.assert_array_equal(model.vode.get("h"), -jnp.full(3, 5.0))


def test_unknown_transform_and_bad_rule_are_errors():
    with pytest.raises(ValueError, match="not in tforms"):
        pxc.Vode((2,), ruleset={"s": ("h <- u:missing",)})
    with pytest.raises(ValueError, match="neither '<-'"):
        pxc.Vode((2,), ruleset={"s": ("h = u",)})


def test_energy_is_cached_per_step_and_invalidated_by_writes():
    model = One()
    model.vode.h.value = jnp.zeros(3)
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        model.vode(jnp.array([1.0, 2.0, 2.0]))
        assert float(model.vode.energy()) == pytest.approx(0.5 * 9)
        assert "E" in model.vode.cache.value
        model.vode.set("u", jnp.zeros(3))
        assert float(model.vode.energy()) == 0.0
    assert model.vode.cache.value is None


def test_energy_functions_closed_forms():
    model = One(energy_fn=pxc.ce_energy)
    logits = jnp.array([0.5, -1.0, 2.0])
    target = jnp.array([0.0, 1.0, 0.0])
    model.vode.h.value = target
    with pxu.step(model):
        model.vode(logits)
        expected = -np.log(np.exp(-1.0) / np.sum(np.exp(np.asarray(logits))))
        assert float(model.vode.energy()) == pytest.approx(expected, rel=1e-6)
    zero = One(energy_fn=pxc.zero_energy)
    zero.vode.h.value = jnp.ones(3)
    with pxu.step(zero):
        zero.vode(jnp.zeros(3))
        assert float(zero.energy()) == 0.0


def test_custom_energy_function():
    def l1_energy(vode, rkg):
        return jnp.sum(jnp.abs(vode.get("h") - vode.get("u")))

    model = One(energy_fn=l1_energy)
    model.vode.h.value = jnp.array([1.0, -1.0, 0.0])
    with pxu.step(model):
        model.vode(jnp.zeros(3))
        assert float(model.energy()) == 2.0


def test_wrong_shape_is_a_clear_error():
    model = One()
    with (
        pxu.step(model, pxc.STATUS.INIT),
        pytest.raises(ValueError, match=r"shape \(3,\) was given 'u' of shape \(4,\)"),
    ):
        model.vode(jnp.ones(4))


def test_reading_an_empty_slot_is_a_clear_error():
    model = One()
    with pytest.raises(ValueError, match="'h' has no value"):
        model.vode.get("h")
    model.vode.h.value = jnp.zeros(3)
    with pytest.raises(ValueError, match="slot 'u' is empty"):
        model.vode.get("u")


def test_energy_module_energy_is_sum_of_vode_energies():
    class Two(pxc.EnergyModule):
        def __init__(self):
            self.nodes = {"a": pxc.Vode((2,)), "b": pxc.Vode((2,), pxc.ce_energy)}

    model = Two()
    for vode, h in zip(model.iter_vodes(), (jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))):
        vode.h.value = h
    with pxu.step(model):
        for vode in model.iter_vodes():
            vode(jnp.array([0.5, 0.5]))
        expected = 0.5 * (0.25 + 0.25) - np.log(0.5)
        np.testing.assert_allclose(model.energy(), expected, rtol=1e-6)
        assert len(model.energies()) == 2


def test_energy_of_a_model_without_vodes_is_an_error():
    with pytest.raises(ValueError, match="has no Vode"):
        pxc.EnergyModule().energy()


def test_step_resets_status_and_clears_even_on_error():
    model = One()
    model.vode.cache.value = {"u": jnp.ones(3)}
    with pytest.raises(RuntimeError), pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        assert model.vode.status == pxc.STATUS.INIT
        raise RuntimeError
    assert model.vode.status is None
    assert model.vode.cache.value is None


def test_vode_in_jit_under_vmap_with_leading_batch_dims():
    model = One()
    with pxu.step(model, pxc.STATUS.INIT):
        model.vode(jnp.ones((5, 3)))
    assert model.vode.h.value.shape == (5, 3)
    assert jax.tree_util.tree_leaves(model)[0].shape == (5, 3)
