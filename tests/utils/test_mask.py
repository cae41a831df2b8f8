"""`m` filters and `Mask`: selecting parameters by type, attributes and predicates."""

import typing

import jax
import jax.numpy as jnp
import pytest

import pcframe as px
import pcframe.nn as pxnn
from pcframe.utils import Mask, m


class A(px.Param):
    pass


class B(px.Param):
    pass


class C(A):
    pass


a = A(jnp.ones(1))
b = B(jnp.ones(1))
c = C(jnp.ones(1))
a_frozen = A(jnp.ones(1), frozen=True)
b_frozen = B(jnp.ones(1), frozen=True, tag="x")
a_thawed = A(jnp.ones(1), frozen=False)
plain = px.Param(jnp.ones(1))
ALL = [a, b, c, a_frozen, b_frozen, a_thawed, plain]


def selected(filter):
    return [p for p in ALL if filter(p)]


def test_type_filters_and_subclasses():
    assert selected(m(A)) == [a, c, a_frozen, a_thawed]
    assert selected(m(C)) == [c]
    assert selected(m(A, B)) == [a, b, c, a_frozen, b_frozen, a_thawed]
    assert selected(m(px.Param)) == ALL


def test_union_types():
    assert selected(m(A | B)) == selected(m(A, B))
    assert selected(Mask(B | C).predicate) == [b, c, b_frozen]
    assert selected(m((B, C))) == [b, c, b_frozen]


def test_combinators():
    assert selected(m(A) | m(B)) == selected(m(A, B))
    assert selected(m(A) | B) == selected(m(A, B))
    assert selected(B | m(C)) == [b, c, b_frozen]  # type on the left: m.__ror__
    assert selected(m(A) & m(lambda p: "frozen" in p.metadata())) == [a_frozen, a_thawed]
    assert selected(m(lambda p: "frozen" in p.metadata()) & A) == [a_frozen, a_thawed]
    assert selected(A & m(lambda p: "frozen" in p.metadata())) == [a_frozen, a_thawed]
    assert selected(~m(A)) == [b, b_frozen, plain]
    assert selected(~(m(A) | m(B))) == [plain]
    assert selected(~~m(C)) == [c]


def test_has_and_has_not():
    assert selected(m(px.Param).has(frozen=True)) == [a_frozen, b_frozen]
    assert selected(m(A).has(frozen=True)) == [a_frozen]
    assert selected(m(B).has(frozen=True, tag="x")) == [b_frozen]
    assert selected(m(px.Param).has(frozen=True, tag="y")) == []
    # a missing attribute counts as "not having it"
    assert selected(m(A).has_not(frozen=True)) == [a, c, a_thawed]
    assert selected(m(px.Param).has_not(frozen=True, tag="x")) == [a, b, c, a_thawed, plain]
    assert selected(m(A).has(frozen=False)) == [a_thawed]  # missing is not False
    assert selected(m(px.Param).has(missing=None)) == []
    assert selected(m(px.Param).has_not(missing=None)) == ALL


def test_has_looks_at_metadata_not_at_the_value():
    # `shape` reaches the value through Param.__getattr__, but it is not a static attribute
    assert selected(m(px.Param).has(shape=(1,))) == []


def test_predicates_are_plain_callables():
    assert m(A)(a) is True and m(A)(b) is False
    assert selected(m(lambda p: p.value.shape == (1,)) & ~m(A)) == [b, b_frozen, plain]


class Net(px.Module):
    def __init__(self):
        self.layer = pxnn.Linear(2, 3)
        self.items = [A(jnp.zeros(2)), {"b": B(jnp.zeros(4), frozen=True)}]
        self.raw = jnp.ones(5)
        self.act = px.static(jnp.tanh)
        self.n = 3


def test_mask_keeps_the_same_param_objects():
    net = Net()
    masked = Mask(pxnn.LayerParam)(net)
    assert type(masked) is Net
    assert masked.layer.nn.weight is net.layer.nn.weight
    assert masked.layer.nn.bias is net.layer.nn.bias
    assert masked.items[0] is None and masked.items[1]["b"] is None
    assert masked.raw is None
    assert masked.n == 3
    leaves = jax.tree_util.tree_leaves(masked, is_leaf=lambda x: isinstance(x, px.Param))
    assert [id(p) for p in leaves] == [id(net.layer.nn.weight), id(net.layer.nn.bias)]


def test_mask_with_m_filter_and_union():
    net = Net()
    masked = Mask(m(px.Param).has(frozen=True))(net)
    assert masked.items[1]["b"] is net.items[1]["b"]
    assert masked.items[0] is None and masked.layer.nn.weight is None
    masked = Mask(A | B)(net)
    assert masked.items[0] is net.items[0] and masked.items[1]["b"] is net.items[1]["b"]
    assert masked.layer.nn.bias is None


def test_mask_map_to():
    net = Net()
    axes = Mask(A | B, (None, 0))(net)
    assert axes.items[0] == 0 and axes.items[1]["b"] == 0
    assert axes.layer.nn.weight is None and axes.raw is None
    flags = Mask(pxnn.LayerParam, [False, True])(net)
    assert flags.layer.nn.weight is True and flags.layer.nn.bias is True
    assert flags.items[0] is False and flags.raw is False
    assert Mask(A, ("no", "yes")).value_for(net.items[0]) == "yes"
    assert Mask(A, ("no", "yes")).value_for(net.layer.nn.weight) == "no"
    assert Mask(A).value_for(net.items[0]) is net.items[0]
    assert Mask(A).value_for(net.layer.nn.weight) is None


def test_mask_on_plain_containers():
    tree = {"x": A(jnp.ones(1)), "y": [B(jnp.ones(1)), jnp.zeros(2)]}
    masked = Mask(B)(tree)
    assert masked["x"] is None and masked["y"][0] is tree["y"][0] and masked["y"][1] is None


@pytest.mark.parametrize("bad", [3, "LayerParam", (A, "B"), None, [A]], ids=["int", "str", "tuple", "None", "list"])
def test_bad_filters_raise_a_helpful_type_error(bad):
    message = r"Cannot use .* as a parameter filter: give a Param type \(e\.g\. LayerParam\)"
    with pytest.raises(TypeError, match=message):
        m(bad)
    with pytest.raises(TypeError, match=message):
        Mask(bad)


def test_bad_filter_error_names_the_filter():
    with pytest.raises(TypeError, match="Cannot use 'LayerParam' as a parameter filter"):
        Mask("LayerParam")


@pytest.mark.parametrize(
    "combine", [lambda f: m(A) | f, lambda f: m(A) & f, lambda f: f | m(A)], ids=["or", "and", "ror"]
)
def test_combining_with_a_bad_filter_fails_at_once(combine):
    with pytest.raises(TypeError, match="Cannot use 3 as a parameter filter"):
        combine(3)


def test_empty_m_is_refused():
    with pytest.raises(TypeError, match=r"m\(\.\.\.\) needs at least one type or predicate"):
        m()


@pytest.mark.parametrize("map_to", [(1, 2, 3), (0,), 0, "ab"])
def test_bad_map_to(map_to):
    with pytest.raises(TypeError, match=r"Mask map_to must be a pair \(value_if_false, value_if_true\)"):
        Mask(A, map_to)


def test_typing_union_works_like_a_union_type():
    union = typing.Union[B, C]  # noqa: UP007
    assert selected(Mask(union).predicate) == [b, c, b_frozen]
