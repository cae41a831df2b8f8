"""`Module`: pytree layout, modes, tracked containers, traversal, repr; `RandomKeyGenerator`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.nn as pxnn
import pcframe.utils as pxu
from pcframe.core import TrackedDict, TrackedList
from pcframe.core._structure import STRUCTURE


class Tagged(px.Param):
    """A second Param type to filter on."""


class Leaf(px.Module):
    def __init__(self, n):
        self.w = px.Param(jnp.full((n, 2), float(n)), frozen=True)
        self.size = n
        self.name = f"leaf{n}"
        self.fn = jnp.tanh
        self.act = px.static(jax.nn.relu)


class Tree(px.Module):
    def __init__(self):
        self.first = Leaf(1)
        self.items = [Leaf(2), {"t": Tagged(jnp.arange(3.0))}]
        self.table = {"b": px.Param(jnp.zeros(4)), "sub": Leaf(3)}
        self.raw = jnp.ones(5)
        self.shared = self.first.w
        self.lr = 0.1


def test_tree_leaves_are_the_param_values_and_arrays():
    t = Tree()
    leaves = jax.tree_util.tree_leaves(t)
    expected = [t.first.w.value, t.items[0].w.value, t.items[1]["t"].value, t.table["b"].value]
    expected += [t.table["sub"].w.value, t.raw, t.first.w.value]
    assert len(leaves) == len(expected)
    assert all(a is b for a, b in zip(leaves, expected))


def test_static_attributes_stay_out_of_the_leaves():
    t = Tree()
    for leaf in jax.tree_util.tree_leaves(t):
        assert isinstance(leaf, jax.Array)
    statics = jax.tree_util.tree_structure(t)
    t.lr = 0.2
    assert jax.tree_util.tree_structure(t) != statics
    t.lr = 0.1
    t.first.act = px.static(jax.nn.sigmoid)
    assert jax.tree_util.tree_structure(t) != statics


def test_tree_map_rebuilds_the_module_with_static_state():
    t = Tree().eval()
    doubled = jax.tree_util.tree_map(lambda v: v * 2, t)
    assert type(doubled) is Tree and doubled is not t
    assert not doubled.is_training
    assert doubled.lr == 0.1 and doubled.first.fn is jnp.tanh and doubled.first.act.value is jax.nn.relu
    assert doubled.first.w.frozen is True
    np.testing.assert_array_equal(doubled.table["sub"].w.value, np.full((3, 2), 6.0))
    np.testing.assert_array_equal(t.table["sub"].w.value, np.full((3, 2), 3.0))
    assert isinstance(doubled.items, TrackedList) and isinstance(doubled.items[1], TrackedDict)


def test_module_passes_through_jax_jit():
    t = Tree()
    out = jax.jit(lambda m: m.first.w.value * m.lr + jnp.sum(m.raw))(t)
    np.testing.assert_allclose(out, np.full((1, 2), 0.1 + 5.0), rtol=1e-6)


def test_train_eval_recursive():
    t = Tree()
    modules = list(t.modules())
    assert len(modules) == 4
    assert all(m.is_training for m in modules)
    assert t.eval() is t
    assert not any(m.is_training for m in modules)
    assert t.items[0].train() is t.items[0]
    assert t.items[0].is_training and not t.is_training and not t.table["sub"].is_training
    t.train()
    assert all(m.is_training for m in modules)


def test_mode_reaches_modules_inside_equinox_modules():
    class EqxBox(eqx.Module):
        inner: px.Module

    class Outer(px.Module):
        def __init__(self):
            self.box = EqxBox(Leaf(1))

    outer = Outer().eval()
    assert not outer.box.inner.is_training


def test_lists_and_dicts_become_tracked_recursively():
    t = Tree()
    assert type(t.items) is TrackedList
    assert type(t.items[1]) is TrackedDict
    assert type(t.table) is TrackedDict

    class Nested(px.Module):
        def __init__(self):
            self.x = [[1, [2]], {"a": [3, {"b": 4}]}]

    n = Nested()
    assert type(n.x[0][1]) is TrackedList and type(n.x[1]["a"][1]) is TrackedDict
    assert n.x == [[1, [2]], {"a": [3, {"b": 4}]}]
    # same pytree layout as the built-in containers
    assert jax.tree_util.tree_leaves(n.x) == [1, 2, 3, 4]
    paths = [path[:2] for path, _ in jax.tree_util.tree_flatten_with_path(t.items)[0]]
    assert paths == [
        (jax.tree_util.SequenceKey(0), jax.tree_util.GetAttrKey("w")),
        (jax.tree_util.SequenceKey(1), jax.tree_util.DictKey("t")),
    ]


LIST_MUTATIONS = {
    "append": lambda xs: xs.append(9),
    "extend": lambda xs: xs.extend([9]),
    "insert": lambda xs: xs.insert(0, 9),
    "pop": lambda xs: xs.pop(),
    "remove": lambda xs: xs.remove(1),
    "clear": lambda xs: xs.clear(),
    "sort": lambda xs: xs.sort(),
    "reverse": lambda xs: xs.reverse(),
    "setitem": lambda xs: xs.__setitem__(0, 9),
    "setslice": lambda xs: xs.__setitem__(slice(0, 1), [7, 8]),
    "delitem": lambda xs: xs.__delitem__(0),
    "iadd": lambda xs: xs.__iadd__([9]),
    "imul": lambda xs: xs.__imul__(2),
}
DICT_MUTATIONS = {
    "setitem": lambda d: d.__setitem__("z", 9),
    "delitem": lambda d: d.__delitem__("a"),
    "pop": lambda d: d.pop("a"),
    "popitem": lambda d: d.popitem(),
    "clear": lambda d: d.clear(),
    "update": lambda d: d.update(z=9),
    "setdefault": lambda d: d.setdefault("z", 9),
}


class Holder(px.Module):
    def __init__(self):
        self.xs = [3, 1, 2]
        self.d = {"a": 1, "b": 2}


@pytest.mark.parametrize("mutate", LIST_MUTATIONS.values(), ids=LIST_MUTATIONS.keys())
def test_list_mutation_bumps_structure(mutate):
    h = Holder()
    before = STRUCTURE.value
    mutate(h.xs)
    assert STRUCTURE.value > before


@pytest.mark.parametrize("mutate", DICT_MUTATIONS.values(), ids=DICT_MUTATIONS.keys())
def test_dict_mutation_bumps_structure(mutate):
    h = Holder()
    before = STRUCTURE.value
    mutate(h.d)
    assert STRUCTURE.value > before


def test_attribute_changes_bump_structure_but_values_do_not():
    t = Tree()
    before = STRUCTURE.value
    t.first.w.value = jnp.zeros((1, 2))
    t.table["b"].set(jnp.ones(4))
    t.first.w -= 1.0
    t.first = t.first  # the very same object: nothing changed
    _ = t.items[0], t.table["b"], list(t.items), dict(t.table)  # reading is not a change
    assert STRUCTURE.value == before
    t.lr = 0.5
    assert STRUCTURE.value > before
    before = STRUCTURE.value
    t.table["b"].frozen = True
    assert STRUCTURE.value > before
    before = STRUCTURE.value
    del t.lr
    assert STRUCTURE.value > before


def test_dict_inplace_union_bumps_structure():
    h = Holder()
    before = STRUCTURE.value
    h.d |= {"z": 9}
    assert h.d["z"] == 9
    assert STRUCTURE.value > before


def test_jit_sees_a_param_added_with_dict_inplace_union():
    class Bag(px.Module):
        def __init__(self):
            self.d = {"a": px.Param(jnp.ones(2))}

    @pxf.jit
    def total(*, bag):
        return sum(jnp.sum(p.value) for p in bag.parameters())

    bag = Bag()
    assert float(total(bag=bag)) == 2.0
    bag.d |= {"b": px.Param(jnp.ones(3))}
    assert float(total(bag=bag)) == 5.0


def test_container_inserted_later_is_tracked_too():
    h = Holder()
    h.xs.append([1, 2])
    h.d["new"] = {"k": 1}
    before = STRUCTURE.value
    h.xs[-1].append(px.Param(jnp.ones(2)))
    assert STRUCTURE.value > before, "appending a Param to a nested list went unnoticed"
    before = STRUCTURE.value
    h.d["new"]["p"] = px.Param(jnp.ones(2))
    assert STRUCTURE.value > before, "adding a Param to a nested dict went unnoticed"


def test_modules_depth_first_each_once():
    t = Tree()
    t.alias = t.items[0]  # the same module reachable twice
    names = [m.name if isinstance(m, Leaf) else type(m).__name__ for m in t.modules()]
    assert names == ["Tree", "leaf1", "leaf2", "leaf3"]


def test_parameters_dedup_and_filters():
    t = Tree()
    params = t.parameters()
    expected = [t.first.w, t.items[0].w, t.items[1]["t"], t.table["b"], t.table["sub"].w]
    assert len(params) == len(expected) and all(a is b for a, b in zip(params, expected))
    assert not any(isinstance(p, px.StaticParam) for p in params)
    assert t.parameters(Tagged) == [t.items[1]["t"]]
    frozen = t.parameters(pxu.m(px.Param).has(frozen=True))
    assert [id(p) for p in frozen] == [id(t.first.w), id(t.items[0].w), id(t.table["sub"].w)]
    assert [id(p) for p in t.parameters(Tagged | pxnn.LayerParam)] == [id(t.items[1]["t"])]
    by_shape = t.parameters(lambda p: p.value.shape == (4,))
    assert len(by_shape) == 1 and by_shape[0] is t.table["b"]


def test_parameters_rejects_a_bad_filter():
    with pytest.raises(TypeError, match="Cannot use 3 as a parameter filter"):
        Tree().parameters(3)


def test_clear_params():
    t = Tree()
    t.clear_params(pxu.m(px.Param).has(frozen=True))
    assert t.first.w.value is None and t.items[0].w.value is None and t.table["sub"].w.value is None
    np.testing.assert_array_equal(t.items[1]["t"].value, np.arange(3.0))
    np.testing.assert_array_equal(t.table["b"].value, np.zeros(4))
    assert t.first.act.value is jax.nn.relu
    assert len(jax.tree_util.tree_leaves(t)) == 3  # the two unfrozen params and `raw`


def test_repr_shows_structure_and_shapes():
    class Net(px.Module):
        def __init__(self):
            self.layers = [pxnn.Linear(3, 4), pxnn.Linear(4, 2, bias=False)]
            self.state = {"h": px.Param(jnp.zeros((8, 4)), frozen=True)}
            self.act = px.static(jnp.tanh)
            self.scale = 2
            self._private = 1

    text = repr(Net())
    assert text.startswith("Net(\n")
    for part in [
        "layers=[",
        "weight=LayerParam(f32[4,3])",
        "bias=LayerParam(f32[4])",
        "bias=None",
        "weight=LayerParam(f32[2,4])",
        "'h': Param(f32[8,4], frozen=True)",
        "act=static(",
        "scale=2",
    ]:
        assert part in text, part
    assert "_private" not in text
    static_text = repr(Holder())
    assert static_text.startswith("Holder(\n  xs=[3, 1, 2],\n  d={") and static_text.endswith("}\n)")

    class Empty(px.Module):
        pass

    assert repr(Empty()) == "Empty()"


def test_rkg_seed_reproducibility():
    a, b = px.RandomKeyGenerator(7), px.RandomKeyGenerator(7)
    seq_a = [np.asarray(a()) for _ in range(3)]
    seq_b = [np.asarray(b()) for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(seq_a, seq_b))
    a.seed(7)
    assert np.array_equal(a(), seq_a[0])
    other = px.RandomKeyGenerator(8)
    assert not np.array_equal(other(), seq_a[0])


def test_rkg_gives_fresh_keys_each_call():
    rkg = px.RandomKeyGenerator(0)
    keys = [tuple(np.asarray(rkg()).tolist()) for _ in range(20)]
    assert len(set(keys)) == 20
    samples = [float(jax.random.normal(rkg())) for _ in range(5)]
    assert len(set(samples)) == 5
    assert isinstance(rkg.key, px.core.RandomKeyParam)


def test_rkg_n_returns_n_distinct_keys_and_advances():
    rkg = px.RandomKeyGenerator(1)
    single = jnp.asarray(rkg())
    keys = rkg(4)
    assert keys.shape == (4, *single.shape) and keys.dtype == single.dtype
    after = rkg()
    rows = {tuple(np.asarray(k).tolist()) for k in keys} | {tuple(np.asarray(after).tolist())}
    rows.add(tuple(np.asarray(single).tolist()))
    assert len(rows) == 6
    again = px.RandomKeyGenerator(1)
    again()
    np.testing.assert_array_equal(again(4), keys)


def test_global_rkg_is_a_generator():
    assert isinstance(px.RKG, px.RandomKeyGenerator)
    px.RKG.seed(3)
    first = px.RKG()
    px.RKG.seed(3)
    np.testing.assert_array_equal(px.RKG(), first)
