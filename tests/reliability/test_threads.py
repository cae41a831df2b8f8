"""Two threads, two models: each trains as it would alone, and no thread sees another's traced values.

Every stateful transform holds one re-entrant lock from reading its parameters to writing
them back, and tracking state is per thread; see `pcframe.core._tracing.STATE_LOCK`.
"""

import threading

import jax
import numpy as np
import optax

import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.core import RKG
from pcframe.inference import DiscreteInference, train_supervised
from pcframe.models import PCMLP
from tests.conftest import MLP, weights
from tests.pc.test_training_step import forward, make_train_step

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 64)]
INFERENCE = DiscreteInference(optax.sgd(0.1), 5)
STEPS = 12


def _in_threads(*jobs):
    """Run each job in its own thread at once; return the errors they raised."""
    errors = []
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        try:
            job()
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _packaged(seed):
    RKG.seed(seed)
    model = PCMLP([4, 16, 3])
    optim = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))

    def train():
        for _ in range(STEPS):
            train_supervised(model, optim, X, Y, inference=INFERENCE)

    return model, optim, train


def _arrays(optim):
    return [np.asarray(p.value) for p in optim.params]


def test_two_threads_train_two_models_as_each_trains_alone():
    expected = []
    for seed in (1, 2):
        _, optim, train = _packaged(seed)
        train()
        expected.append(_arrays(optim))
    runs = [_packaged(1), _packaged(2)]
    errors = _in_threads(*(train for _, _, train in runs))
    assert errors == []
    assert not isinstance(RKG.key.value, jax.core.Tracer)
    for (_, optim, _), arrays in zip(runs, expected):
        for got, want in zip(_arrays(optim), arrays):
            np.testing.assert_array_equal(got, want)


def _tutorial(train_step, seed):
    RKG.seed(seed)
    model = MLP([4, 8, 3], out_energy=pxc.ce_energy)  # two models of one structure share a compiled step
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(X, Y, model=model)
    optim_h = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(optax.sgd(0.05), pxu.Mask(pxnn.LayerParam)(model))

    def train():
        for _ in range(STEPS):
            train_step(3, X, Y, model=model, optim_w=optim_w, optim_h=optim_h)

    return model, train


def test_two_threads_with_tutorial_steps_of_one_structure_match_each_alone():
    expected = []
    for seed in (3, 4):
        model, train = _tutorial(make_train_step(use_scan=True), seed)
        train()
        expected.append(weights(model))
    step = make_train_step(use_scan=True)  # one jitted function, traced for the first time by two threads
    runs = [_tutorial(step, 3), _tutorial(step, 4)]
    assert _in_threads(*(train for _, train in runs)) == []
    for (model, _), arrays in zip(runs, expected):
        for (w, b), (w_ref, b_ref) in zip(weights(model), arrays):
            np.testing.assert_array_equal(w, w_ref)
            np.testing.assert_array_equal(b, b_ref)
