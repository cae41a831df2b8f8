"""`Param`: operator delegation, in-place updates, static metadata, `StaticParam` and repr."""

import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
from pcframe.core._structure import STRUCTURE

A = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0], [2.0, 1.0, 0.25]], dtype=np.float32)
B = np.array([[2.0, 0.5, -1.5], [1.0, -3.0, 2.0], [0.75, 2.5, 1.0]], dtype=np.float32)
I = np.array([[5, 12, 7], [9, 3, 14], [6, 11, 2]], dtype=np.int32)
J = np.array([[3, 5, 2], [4, 1, 6], [2, 3, 1]], dtype=np.int32)

ARITHMETIC = [
    ("add", operator.add, operator.iadd),
    ("sub", operator.sub, operator.isub),
    ("mul", operator.mul, operator.imul),
    ("truediv", operator.truediv, operator.itruediv),
    ("floordiv", operator.floordiv, operator.ifloordiv),
    ("mod", operator.mod, operator.imod),
    ("pow", operator.pow, operator.ipow),
    ("matmul", operator.matmul, operator.imatmul),
]
BITWISE = [
    ("and", operator.and_, operator.iand),
    ("or", operator.or_, operator.ior),
    ("xor", operator.xor, operator.ixor),
    ("lshift", operator.lshift, operator.ilshift),
    ("rshift", operator.rshift, operator.irshift),
]
ALL_OPS = [(*op, np.abs(A) if op[0] == "pow" else A, np.abs(B)) for op in ARITHMETIC] + [(*op, I, J) for op in BITWISE]
IDS = [op[0] for op in ALL_OPS]


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, op, iop, x, y", ALL_OPS, ids=IDS)
def test_binary_op_with_array_on_the_right(name, op, iop, x, y):
    _close(op(px.Param(jnp.asarray(x)), jnp.asarray(y)), op(x, y))


@pytest.mark.parametrize("name, op, iop, x, y", ALL_OPS, ids=IDS)
def test_binary_op_between_two_params(name, op, iop, x, y):
    _close(op(px.Param(jnp.asarray(x)), px.Param(jnp.asarray(y))), op(x, y))


@pytest.mark.parametrize("name, op, iop, x, y", ALL_OPS, ids=IDS)
def test_reflected_op(name, op, iop, x, y):
    # Called directly: `other <op> param` where `other` does not know Params.
    reflected = getattr(px.Param, f"__r{name}__")
    _close(reflected(px.Param(jnp.asarray(y)), jnp.asarray(x)), op(x, y))


@pytest.mark.parametrize("name, op, iop, x, y", [o for o in ALL_OPS if o[0] != "matmul"], ids=IDS[:7] + IDS[8:])
def test_reflected_op_with_python_scalar_on_the_left(name, op, iop, x, y):
    scalar = 3 if x.dtype.kind == "i" else 1.5
    result = op(scalar, px.Param(jnp.asarray(y)))
    assert not isinstance(result, px.Param)
    _close(result, op(scalar, y))


def test_reflected_matmul_with_arrays_on_the_left():
    p = px.Param(jnp.asarray(B))
    _close(jnp.asarray(A) @ p, A @ B)
    _close(A @ p, A @ B)


@pytest.mark.parametrize("name, op, iop, x, y", ALL_OPS, ids=IDS)
@pytest.mark.parametrize("rhs_is_param", [False, True], ids=["array", "param"])
def test_inplace_op_updates_the_same_param(name, op, iop, x, y, rhs_is_param):
    p = px.Param(jnp.asarray(x), tag="keep")
    before = STRUCTURE.value
    original = p
    rhs = px.Param(jnp.asarray(y)) if rhs_is_param else jnp.asarray(y)
    p = iop(p, rhs)
    assert p is original
    assert isinstance(p, px.Param) and p.tag == "keep"
    _close(p.value, op(x, y))
    assert STRUCTURE.value == before, "changing a value is not a structure change"


def test_augmented_assignment_syntax_on_module_attribute():
    class Box(px.Module):
        def __init__(self):
            self.w = px.Param(jnp.arange(3.0))

    box = Box()
    w = box.w
    box.w -= 1.0
    box.w *= 2.0
    box.w **= 2
    assert box.w is w
    _close(box.w.value, ((np.arange(3.0) - 1.0) * 2.0) ** 2)


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge], ids=["lt", "le", "gt", "ge"])
def test_comparisons(op):
    x = np.array([1.0, 2.0, 3.0], np.float32)
    y = np.array([3.0, 2.0, 1.0], np.float32)
    p, q = px.Param(jnp.asarray(x)), px.Param(jnp.asarray(y))
    np.testing.assert_array_equal(op(p, jnp.asarray(y)), op(x, y))
    np.testing.assert_array_equal(op(p, q), op(x, y))
    np.testing.assert_array_equal(op(p, 2.0), op(x, 2.0))
    np.testing.assert_array_equal(op(2.0, p), op(2.0, x))  # reflected: Python swaps lt <-> gt


def test_unary_ops():
    p = px.Param(jnp.asarray(A))
    _close(-p, -A)
    _close(+p, A)
    _close(abs(p), np.abs(A))
    np.testing.assert_array_equal(~px.Param(jnp.asarray(I)), ~I)
    assert bool(px.Param(jnp.array(True))) and not bool(px.Param(jnp.array(0.0)))


def test_indexing_len_iter_and_call():
    p = px.Param(jnp.asarray(A))
    _close(p[1], A[1])
    _close(p[:, 2], A[:, 2])
    _close(p[jnp.array([2, 0])], A[[2, 0]])
    assert len(p) == 3
    rows = list(p)
    assert len(rows) == 3
    _close(rows[2], A[2])
    f = px.Param(lambda a, b=1: a * 10 + b)
    assert f(2, b=3) == 23


def test_getattr_delegates_to_the_value():
    p = px.Param(jnp.asarray(A))
    assert p.shape == (3, 3)
    assert p.dtype == jnp.float32
    assert p.ndim == 2
    _close(p.T, A.T)
    _close(p.reshape(9), A.reshape(9))
    _close(p.sum(axis=0), A.sum(axis=0))
    with pytest.raises(AttributeError, match="no_such_attribute"):
        p.no_such_attribute  # noqa: B018


def test_getattr_without_a_value_explains_itself():
    with pytest.raises(AttributeError, match="holds no value to delegate to"):
        px.Param().shape  # noqa: B018


def test_dunder_lookups_are_not_delegated():
    p = px.Param(jnp.asarray(A))
    assert not hasattr(p, "__array_priority__")
    assert not hasattr(p, "__array_namespace__")


def test_jax_and_numpy_conversion():
    p = px.Param(jnp.asarray(A))
    assert p.__jax_array__() is p.value
    converted = jnp.asarray(p)
    assert isinstance(converted, jax.Array)
    _close(converted, A)
    _close(np.asarray(p), A)
    assert np.asarray(p, dtype=np.float64).dtype == np.float64
    _close(jnp.sin(p), np.sin(A))
    _close(jnp.stack([p, p]), np.stack([A, A]))


def test_pytree_children_are_the_value_only():
    value = jnp.asarray(A)
    p = px.Param(value, frozen=True, tag="w")
    leaves, treedef = jax.tree_util.tree_flatten(p)
    assert len(leaves) == 1 and leaves[0] is value
    rebuilt = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(2)])
    assert type(rebuilt) is px.Param
    assert rebuilt.metadata() == {"frozen": True, "tag": "w"}
    _close(rebuilt.value, np.zeros(2))


def test_metadata_lives_in_the_treedef():
    value = jnp.asarray(A)
    plain = jax.tree_util.tree_structure(px.Param(value))
    frozen = jax.tree_util.tree_structure(px.Param(value, frozen=True))
    also_frozen = jax.tree_util.tree_structure(px.Param(jnp.zeros(5), frozen=True))
    thawed = jax.tree_util.tree_structure(px.Param(value, frozen=False))
    assert frozen == also_frozen
    assert frozen != plain and frozen != thawed


def test_pytree_value_and_none_value():
    p = px.Param({"a": jnp.ones(2), "b": (jnp.zeros(3),)})
    assert [leaf.shape for leaf in jax.tree_util.tree_leaves(p)] == [(2,), (3,)]
    assert jax.tree_util.tree_leaves(px.Param()) == []
    assert jax.tree_util.tree_leaves(px.Param(None, frozen=True)) == []


def test_tree_map_keeps_type_and_metadata():
    class Custom(px.Param):
        pass

    p = Custom(jnp.ones(3), frozen=True)
    doubled = jax.tree_util.tree_map(lambda v: v * 2, p)
    assert type(doubled) is Custom and doubled is not p
    assert doubled.frozen is True
    _close(doubled.value, 2 * np.ones(3))
    _close(p.value, np.ones(3))


def test_metadata_is_static_under_jax_jit():
    traces = []

    @jax.jit
    def f(p):
        traces.append(p.scale)
        return p.value * p.scale  # a Python branch on metadata: must be a concrete value

    _close(f(px.Param(jnp.ones(2), scale=2.0)), np.full(2, 2.0))
    _close(f(px.Param(jnp.ones(2), scale=3.0)), np.full(2, 3.0))
    _close(f(px.Param(jnp.zeros(2), scale=3.0)), np.zeros(2))
    assert traces == [2.0, 3.0]


def test_metadata_accessors_and_structure_version():
    p = px.Param(jnp.ones(2), frozen=True)
    assert p.metadata() == {"frozen": True}
    assert p.frozen is True
    before = STRUCTURE.value
    p.value = jnp.zeros(2)
    p.set(jnp.ones(2))
    assert STRUCTURE.value == before
    assert p.get() is p.value
    p.frozen = False
    assert STRUCTURE.value > before
    before = STRUCTURE.value
    del p.frozen
    assert STRUCTURE.value > before
    assert p.metadata() == {}


def test_unhashable_metadata_still_flattens():
    tags = ["a", "b"]
    p = px.Param(jnp.ones(2), tags=tags)
    leaves, treedef = jax.tree_util.tree_flatten(p)
    assert jax.tree_util.tree_unflatten(treedef, leaves).tags is tags


def test_static_param_is_not_a_leaf():
    s = px.static(jnp.tanh)
    assert isinstance(s, px.StaticParam)
    assert jax.tree_util.tree_leaves(s) == []
    assert jax.tree_util.tree_leaves({"act": s, "w": px.Param(jnp.ones(2))})[0].shape == (2,)
    _close(s(jnp.asarray(A)), np.tanh(A))
    leaves, treedef = jax.tree_util.tree_flatten(s)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is px.StaticParam and rebuilt.value is jnp.tanh


def test_static_value_is_in_the_treedef():
    assert jax.tree_util.tree_structure(px.static(3)) == jax.tree_util.tree_structure(px.static(3))
    assert jax.tree_util.tree_structure(px.static(3)) != jax.tree_util.tree_structure(px.static(4))
    assert jax.tree_util.tree_structure(px.static(jnp.tanh)) != jax.tree_util.tree_structure(px.static(jnp.sin))
    values = [1, 2]  # unhashable: stored by identity
    leaves, treedef = jax.tree_util.tree_flatten(px.static(values))
    assert leaves == [] and jax.tree_util.tree_unflatten(treedef, []).value is values


def test_static_param_set_is_a_structure_change():
    s = px.static(2)
    before = STRUCTURE.value
    s.value = 3
    assert s.value == 3 and STRUCTURE.value > before
    before = STRUCTURE.value
    s.set(4)
    assert s.get() == 4 and STRUCTURE.value > before


def test_static_value_drives_a_python_branch_under_jit():
    @jax.jit
    def f(s, x):
        return x * 2 if s.value == "double" else x * 3

    _close(f(px.static("double"), jnp.ones(2)), np.full(2, 2.0))
    _close(f(px.static("triple"), jnp.ones(2)), np.full(2, 3.0))


def test_repr():
    assert repr(px.Param(jnp.ones((2, 3)))) == "Param(f32[2,3])"
    assert repr(px.Param(jnp.ones(4, jnp.int32), frozen=True)) == "Param(i32[4], frozen=True)"
    assert repr(px.Param(jnp.zeros(2, bool))) == "Param(bool[2])"
    assert repr(px.Param(jnp.zeros(2, jnp.uint8), tag="x")) == "Param(u8[2], tag='x')"
    assert repr(px.Param()) == "Param(None)"
    assert repr(px.Param({"a": jnp.ones(2)})) == "Param({a: f32[2]})"
    assert repr(px.static(3)) == "StaticParam(3)"

    class Custom(px.Param):
        pass

    assert repr(Custom(jnp.ones(1))) == "Custom(f32[1])"


def test_repr_of_bfloat16():
    assert repr(px.Param(jnp.zeros((2,), jnp.bfloat16))) in {"Param(bf16[2])", "Param(bfloat16[2])"}
