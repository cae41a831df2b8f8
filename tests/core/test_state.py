"""The split/merge primitive and what it guarantees: no stale traces, no leaked tracers, no lost state."""

import dataclasses
import gc
import signal
import sys
import weakref

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.models import PCMLP


class Scaled(px.Module):
    def __init__(self):
        self.w = px.Param(jnp.arange(1.0, 4.0))
        self.hyper = {"scale": 1.0}
        self.factors = [1.0]
        self.mask = np.ones(3, dtype=np.float32)


@pxf.jit
def _scaled(*, model):
    return model.w.value * model.hyper["scale"] * model.factors[0] * model.mask


class CompileCounter:
    """Counts XLA compilations reported through `jax.monitoring`."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


COMPILES = CompileCounter()


def test_split_and_merge_round_trip_with_sharing():
    shared = px.Param(jnp.zeros(2))
    tree = {"a": [shared, px.Param(jnp.ones(3))], "b": shared}
    assert px.split(tree)[0].params[-1] is px.RKG.key  # the global key generator is tracked by default
    structure, values = px.split(tree, implicit=())
    assert len(structure.params) == 2 and structure.params[0] is shared
    assert structure.paths[:2] == ("a[0]", "a[1]")
    px.merge(structure, [jnp.full(2, 5.0), jnp.full(3, 7.0)])
    np.testing.assert_array_equal(tree["b"].value, [5.0, 5.0])
    np.testing.assert_array_equal(tree["a"][1].value, [7.0, 7.0, 7.0])


def test_structure_key_compares_by_value():
    first, second = Scaled(), Scaled()
    key = px.split({"model": first})[0].key
    assert key == px.split({"model": second})[0].key
    second.hyper["scale"] = 2.0
    assert key != px.split({"model": second})[0].key
    assert px.core.freeze(1) != px.core.freeze(1.0)
    assert px.core.freeze({"a": [1, 2]}) == px.core.freeze({"a": [1, 2]})


def test_call_is_pure_and_reports_only_changed_parameters():
    model = Scaled()
    structure, values = px.split({"model": model}, implicit=())

    def double(*, model):
        model.w.value = model.w.value * 2
        return model.mask.sum()

    out, updates = structure.call(double, [jnp.ones(3), np.zeros(3, np.float32)])
    assert float(out) == 0.0
    assert list(updates) == [0]
    np.testing.assert_array_equal(updates[0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(model.w.value, [1.0, 2.0, 3.0])  # nothing installed outlives the call
    assert model.mask.sum() == 3


def test_dict_list_and_numpy_edits_take_effect():
    model = Scaled()
    np.testing.assert_allclose(_scaled(model=model), [1.0, 2.0, 3.0])
    model.hyper["scale"] = 5.0
    np.testing.assert_allclose(_scaled(model=model), [5.0, 10.0, 15.0])
    model.factors[0] = 2.0
    np.testing.assert_allclose(_scaled(model=model), [10.0, 20.0, 30.0])
    model.mask[0] = 0.0
    np.testing.assert_allclose(_scaled(model=model), [0.0, 20.0, 30.0])


def test_batches_passed_by_keyword_are_traced_and_not_kept():
    model = Scaled()

    @pxf.jit
    def add(*, model, x):
        model.w.value = model.w.value + x
        return jnp.sum(x)

    add(model=model, x=jnp.ones(3))
    batches = [jnp.asarray(np.full(3, i, np.float32)) for i in range(10)]
    batch = np.full(3, 2.0, dtype=np.float32)
    handle = weakref.ref(batch)
    before = COMPILES.count
    for i, x in enumerate(batches):
        assert float(add(model=model, x=x)) == 3.0 * i
    add(model=model, x=batch)
    assert COMPILES.count == before
    del batch
    gc.collect()
    assert handle() is None
    np.testing.assert_allclose(model.w.value, np.arange(1.0, 4.0) + 1 + 45 + 2)


def test_jit_cache_does_not_keep_the_model_alive():
    model = Scaled()
    _scaled(model=model)
    handle = weakref.ref(model)
    del model
    _scaled._structures.clear()
    gc.collect()
    assert handle() is None


def _supervised_parts():
    model = PCMLP([4, 8, 3])
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    y = jax.nn.one_hot(jnp.arange(5) % 3, 3)
    return model, optim, x, y, pxi.DiscreteInference(optax.sgd(0.1), 3)


@pytest.mark.parametrize("wrapper", ["pxf.jit closure", "jax.jit closure"])
def test_closure_capture_raises_naming_the_parameter_and_leaves_the_model_usable(wrapper, tmp_path):
    model, optim, x, y, inference = _supervised_parts()

    def step(x, y):
        return pxi.train_supervised(model, optim, x, y, inference=inference)["energy"]

    compiled = pxf.jit(step) if wrapper == "pxf.jit closure" else jax.jit(step)
    with pytest.raises(px.core.LeakedTracerError, match=r"model\.layers\[0\]\.nn\.weight .*pcframe\.functional\.jit"):
        compiled(x, y)
    assert not any(isinstance(p.value, jax.core.Tracer) for p in model.parameters())
    pxu.save_params(model, tmp_path / "after")
    pxi.train_supervised(model, optim, x, y, inference=inference)


def test_eqx_filter_jit_around_a_step_names_pxf_jit():
    model, optim, x, y, inference = _supervised_parts()

    @eqx.filter_jit
    def step(model, x, y):
        return pxi.train_supervised(model, optim, x, y, inference=inference)["energy"]

    with pytest.raises(ValueError, match="copies of a model.*pcframe.functional.jit"):
        step(model, x, y)


def test_tracer_written_directly_under_jax_jit_is_refused():
    model = Scaled()

    @jax.jit
    def leak(x):
        model.w.value = model.w.value * x
        return x

    with pytest.raises(px.core.LeakedTracerError, match="pcframe.functional.jit"):
        leak(2.0)
    np.testing.assert_array_equal(model.w.value, [1.0, 2.0, 3.0])


def test_nested_scans_three_deep_trace_each_body_once():
    traces = {"outer": 0, "middle": 0, "inner": 0}
    model = Scaled()

    def inner(t, c, *, model):
        traces["inner"] += 1
        model.w.value = model.w.value + 1.0
        return c, None

    def middle(t, c, *, model):
        traces["middle"] += 1
        return pxf.scan(inner, length=3)(c, model=model)[0], None

    def outer(t, c, *, model):
        traces["outer"] += 1
        return pxf.scan(middle, length=3)(c, model=model)[0], None

    pxf.scan(outer, length=3)(jnp.zeros(()), model=model)
    assert traces == {"outer": 1, "middle": 1, "inner": 1}
    np.testing.assert_allclose(model.w.value, np.arange(1.0, 4.0) + 27)


def _params(*objects):
    return [p for obj in objects for p in obj.parameters()]


def _leaves(params):
    return [np.asarray(leaf) for p in params for leaf in jax.tree_util.tree_leaves(p.value)]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _interrupt_at(n, files, call):
    """Run `call`, raising KeyboardInterrupt before the n-th line run in `files`; return that line's code or None."""
    seen, where = 0, []

    def local(frame, event, arg):
        nonlocal seen
        if event == "line":
            seen += 1
            if seen == n:
                where.append(frame.f_code)
                raise KeyboardInterrupt
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename in files else None)
    try:
        call()
    except BaseException:  # JAX re-raises an interrupt inside its cache lookup as a ValueError
        if not where:
            raise
        return where[0]
    finally:
        sys.settrace(None)
    return None


def _every_interrupt(params, call, files, write_back):
    """Interrupt `call` at each line in turn; check all-old-or-all-new, and all-old inside the write-back."""
    start = [p.value for p in params]
    call()
    after = _leaves(params)
    before = None
    outcomes = []
    for n in range(1, 10_000):
        for p, v in zip(params, start):
            p.value = v
        before = _leaves(params)
        code = _interrupt_at(n, files, call)
        state = _leaves(params)
        assert _same(state, before) or _same(state, after), f"half-written state after an interrupt at line {n}"
        if code in write_back:
            assert _same(state, before), f"an interrupt inside {code.co_name} changed the state"
        if code is None:
            return outcomes
        outcomes.append((code.co_name, "old" if _same(state, before) else "new"))
    raise AssertionError("the call never finished")


def test_interrupt_at_every_line_of_a_jit_call_leaves_all_old_or_all_new_state():
    from pcframe.core import _state
    from pcframe.functional import _jit, _lift

    model, optim, x, y, _ = _supervised_parts()

    @pxf.jit
    def train(x, *, model, optim):
        def loss(x, *, model):
            return jnp.sum(model.layers[1](jnp.tanh(model.layers[0](x[0]))))

        _, grads = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, (False, True)))(loss)(x, model=model)
        optim.step(model, grads["model"])

    params = _params(model, optim)
    train(x, model=model, optim=optim)  # compiled: the interrupts below hit the cached call path
    write_back = {_state.merge.__code__, _state.assign.__code__, _state._install.__code__}
    outcomes = _every_interrupt(
        params, lambda: train(x, model=model, optim=optim), _files(_jit, _lift, _state), write_back
    )
    assert {"merge", "assign", "_install"} <= {name for name, _ in outcomes}
    assert {outcome for _, outcome in outcomes} == {"old", "new"}


def test_interrupt_at_every_line_of_an_eager_optim_step_leaves_the_old_state():
    from pcframe.core import _state
    from pcframe.utils import _optim

    model, optim, x, y, _ = _supervised_parts()
    optim = pxu.Optim(optax.adam(1e-2), pxu.Mask(pxnn.LayerParam)(model))
    grads = {p: jnp.ones_like(p.value) for p in optim.params}
    params = _params(model, optim)
    outcomes = _every_interrupt(
        params,
        lambda: optim.apply([grads[p] for p in optim.params]),
        _files(_optim, _state),
        {_state.assign.__code__, _state._install.__code__},
    )
    assert len(outcomes) > 5 and {outcome for _, outcome in outcomes} == {"old"}


def _files(*modules):
    return {module.__file__ for module in modules}


def test_donation_with_runtime_checks_is_refused_before_anything_is_donated():
    model = PCMLP([4, 8, 3])
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    inference = pxi.DiscreteInference(optax.sgd(0.1), 3, check_finite=True)
    x = jnp.full((5, 4), jnp.nan)
    y = jax.nn.one_hot(jnp.arange(5) % 3, 3)

    @pxf.jit(donate_params=True)
    def step(x, y, *, model, optim):
        pxi.init_forward(model, x, y)
        inference.run(model, x)
        _, grads = pxi.param_grad(model, x)
        optim.step(model, grads)

    weights = _leaves(optim.params)
    with pytest.raises(ValueError, match="donate_params=True.*run-time checks"):
        step(x, y, model=model, optim=optim)
    assert not any(leaf.is_deleted() for p in optim.params for leaf in jax.tree_util.tree_leaves(p.value))
    assert _same(_leaves(optim.params), weights)


def test_donating_call_interrupted_by_ctrl_c_keeps_a_complete_state():
    model = Scaled()

    @pxf.jit(donate_params=True)
    def bump(*, model):
        model.w.value = model.w.value + 1.0

    bump(model=model)
    fired = []

    def trace(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "merge" and not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGINT)
        return None

    sys.settrace(trace)
    try:
        with pytest.raises(KeyboardInterrupt):
            bump(model=model)
    finally:
        sys.settrace(None)
    assert not model.w.value.is_deleted()
    np.testing.assert_allclose(model.w.value, np.arange(1.0, 4.0) + 2.0)


class _InterruptedOnCompare:
    """Pytree metadata whose comparison is where Ctrl-C lands (JAX compares metadata in Python before a call)."""

    def __hash__(self):
        return 0

    def __eq__(self, other):
        raise KeyboardInterrupt


@jax.tree_util.register_pytree_node_class
class _Tagged:
    def __init__(self, value, tag):
        self.value, self.tag = value, tag

    def tree_flatten(self):
        return (self.value,), self.tag

    @classmethod
    def tree_unflatten(cls, tag, children):
        return cls(children[0], tag)


def test_ctrl_c_landing_in_jaxs_argument_checks_is_a_keyboard_interrupt_and_changes_nothing():
    model = Scaled()

    @pxf.jit
    def shift(step, *, model):
        model.w.value = model.w.value + step.value

    shift(_Tagged(1.0, _InterruptedOnCompare()), model=model)
    with pytest.raises(KeyboardInterrupt):  # JAX itself reports it as a ValueError raised from the interrupt
        shift(_Tagged(1.0, _InterruptedOnCompare()), model=model)
    np.testing.assert_allclose(model.w.value, np.arange(1.0, 4.0) + 1.0)


def test_interrupt_at_every_line_of_load_params_leaves_the_model_untouched(tmp_path):
    from pcframe.core import _state
    from pcframe.io import _archive, _format, _params, _reader, _stored

    model = PCMLP([4, 8, 3])
    path = pxu.save_params(model, tmp_path / "saved")
    for p in model.parameters(pxnn.LayerParam):
        p.value = p.value + 1.0
    outcomes = _every_interrupt(
        model.parameters(pxnn.LayerParam),
        lambda: pxu.load_params(model, path),
        _files(_params, _reader, _archive, _format, _stored, _state),
        {_state.assign.__code__, _state._install.__code__},
    )
    assert len(outcomes) > 50 and {outcome for _, outcome in outcomes} == {"old"}


def test_arrays_in_tuples_and_equinox_modules_are_traced_data():
    class Holder(px.Module):
        def __init__(self):
            self.w = px.Param(jnp.ones(3))
            self.pair = (jnp.ones(3), 2.0)
            self.linear = eqx.nn.Linear(3, 3, key=jax.random.PRNGKey(0))

    traces = []

    @pxf.jit
    def f(*, model):
        traces.append(1)
        model.w.value = model.w.value * model.pair[0] + model.linear(model.pair[0])
        return model.pair[1]

    model = Holder()
    f(model=model)
    for scale in (2.0, 3.0):
        new = jnp.asarray(np.full(3, scale, np.float32))  # jnp.full(3, 2.0) would be weak-typed: a new trace
        model.pair = (new, 2.0)
        model.linear = eqx.tree_at(lambda l: l.bias, model.linear, new)
        before = np.asarray(model.w.value)
        f(model=model)
        expected = before * scale + np.asarray(model.linear.weight) @ np.full(3, scale) + scale
        np.testing.assert_allclose(model.w.value, expected, rtol=1e-5)
    assert len(traces) == 1
    assert isinstance(model.pair[0], jax.Array) and not isinstance(model.linear.bias, jax.core.Tracer)


def test_scalar_keyword_arguments_are_static_values_compared_each_call():
    """A NumPy or Python scalar passed by keyword is static: a new value retraces, never reuses the old one."""
    model = Scaled()

    @pxf.jit
    def scale(*, model, factor):
        return model.w.value * factor

    for factor in (np.float32(2.0), np.float32(3.0), 4.0, 4.0):
        np.testing.assert_allclose(scale(model=model, factor=factor), np.arange(1.0, 4.0) * float(factor))


def test_a_container_subclass_jax_does_not_know_is_refused_with_advice():
    class Batches(list):
        pass

    with pytest.raises(TypeError, match=r"cannot track x: a Batches is a list subclass .*register_pytree_node"):
        px.split({"x": Batches([jnp.ones(2)])})


@dataclasses.dataclass
class _Settings:
    scale: float = 2.0


class _Configured(px.Module):
    def __init__(self):
        self.w = px.Param(jnp.ones(2))
        self.pair = (1.0, [2.0])  # a list inside a tuple: the Module cannot track it
        self.settings = _Settings()
        self.constant = px.static([3.0])


@pxf.jit
def _configured(*, model):
    return model.w.value * model.pair[1][0] * model.settings.scale * model.constant.value[0]


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda m: m.pair[1].__setitem__(0, 5.0), 5.0 * 2.0 * 3.0),
        (lambda m: setattr(m.settings, "scale", 10.0), 2.0 * 10.0 * 3.0),
        (lambda m: m.constant.value.__setitem__(0, 7.0), 2.0 * 2.0 * 7.0),
    ],
    ids=["list-in-tuple", "dataclass-field", "static-param-list"],
)
def test_static_values_edited_in_place_unseen_by_pcframe_still_take_effect(edit, expected):
    model = _Configured()
    np.testing.assert_allclose(_configured(model=model), 12.0)
    edit(model)
    np.testing.assert_allclose(_configured(model=model), expected)
    np.testing.assert_allclose(_configured(model=model), expected)
