"""Models and their weights are freed after `del`: no cache of pcframe's keeps them alive.

The structures `pxf.jit` caches hold the keyword modules weakly and go when they are collected;
a compiled step refers to an optimiser's parameters by position, not by identity.
"""

import gc
import weakref

import numpy as np
import optax

import pcframe as px
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.core import RandomKeyGenerator
from pcframe.models import PCMLP
from tests.conftest import MLP
from tests.pc.test_training_step import forward, make_train_step

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 32)]
INFERENCE = pxi.DiscreteInference(optax.sgd(0.1), 4)
TX = optax.adam(1e-2)
TUTORIAL_STEP = make_train_step(use_scan=True, overwrites=pxc.VodeParam)


def _references(model, optim):
    return [weakref.ref(model), weakref.ref(optim), *(weakref.ref(p) for p in model.parameters(pxnn.LayerParam))]


def test_a_model_trained_by_the_packaged_steps_is_freed_after_del():
    model = PCMLP([4, 8, 3])
    optim = pxu.Optim(TX, pxu.Mask(pxnn.LayerParam)(model))
    for _ in range(2):
        pxi.train_supervised(model, optim, X, Y, inference=INFERENCE)
        pxi.evaluate_accuracy(model, X[:10], Y[:10])
    refs = _references(model, optim)
    del model, optim
    gc.collect()
    assert [ref() for ref in refs] == [None] * len(refs)


def test_a_model_trained_by_a_tutorial_style_step_is_freed_after_del():
    model = MLP([4, 8, 3], out_energy=pxc.ce_energy)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(X, Y, model=model)
    optim_h = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxc.VodeParam)(model))
    optim = pxu.Optim(TX, pxu.Mask(pxnn.LayerParam)(model))
    TUTORIAL_STEP(3, X, Y, model=model, optim_w=optim, optim_h=optim_h)
    refs = _references(model, optim)
    del model, optim, optim_h
    gc.collect()
    assert [ref() for ref in refs] == [None] * len(refs)


def test_models_made_one_after_another_each_train_on_their_own_weights():
    """Ids of freed models are reused by new ones: each new model must still train as it would alone."""
    results = []
    for seed in range(4):
        model = PCMLP([4, 8, 3], rkg=RandomKeyGenerator(seed))
        optim = pxu.Optim(TX, pxu.Mask(pxnn.LayerParam)(model))
        pxi.train_supervised(model, optim, X, Y, inference=INFERENCE)
        results.append([np.asarray(p.value) for p in optim.params])
        del model, optim
        gc.collect()
    for seed, got in enumerate(results):
        model = PCMLP([4, 8, 3], rkg=RandomKeyGenerator(seed))
        optim = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))  # another step: its own compile
        pxi.train_supervised(model, optim, X, Y, inference=INFERENCE)
        for a, b in zip(got, optim.params):
            np.testing.assert_array_equal(a, b.value)


def test_the_cache_stays_small_when_many_models_come_and_go():
    """One finalizer per model and jitted function; entries go with their models, also from the global RKG's set."""
    step = px.training._step._compiled_step
    for _ in range(20):
        model = PCMLP([4, 8, 3])
        optim = pxu.Optim(TX, pxu.Mask(pxnn.LayerParam)(model))
        pxi.train_supervised(model, optim, X, Y, inference=INFERENCE)
    del model, optim
    gc.collect()  # once: collecting a large test session's heap takes a while
    assert len(step._structures) <= 2
    assert all(len(keys) <= len(step._structures) for keys in step._keys_of.values())
