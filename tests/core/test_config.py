"""`Config` keyword arguments: floats and arrays traced, everything else static, the object read once."""

import jax.numpy as jnp
import numpy as np
import optax

import pcframe as px
import pcframe.functional as pxf
from pcframe.core import Config, split
from tests.inference.compiles import count_compilations


class Descent(Config):
    step_size: float
    steps: int = 3
    tx: optax.GradientTransformation | None = None


class Holder(px.Module):
    def __init__(self):
        self.w = px.Param(jnp.ones(4))


@pxf.jit
def relax(*, m, how):
    for _ in range(how.steps):
        m.w.value = m.w.value - how.step_size * m.w.value
    return m.w.value


def test_floats_are_traced_and_ints_static():
    m = Holder()
    relax(m=m, how=Descent(0.5))
    with count_compilations() as compiled:
        for step_size in (0.1, 0.2, 0.3):
            m.w.value = jnp.ones(4)
            out = relax(m=m, how=Descent(step_size))  # a new object, a new value: the same program
            np.testing.assert_allclose(out, (1 - step_size) ** 3, rtol=1e-6)
    assert compiled[0] == 0
    with count_compilations() as compiled:
        m.w.value = jnp.ones(4)
        np.testing.assert_allclose(relax(m=m, how=Descent(0.5, steps=1)), 0.5)
    assert compiled[0] == 1


def test_split_puts_the_hyperparameters_among_the_values_and_the_rest_in_the_signature():
    tx = optax.sgd(0.1)
    structure, values = split({"how": Descent(0.25, 2, tx)}, implicit=())
    assert values == [0.25]
    same, _ = split({"how": Descent(0.75, 2, tx)}, implicit=())
    other, _ = split({"how": Descent(0.25, 3, tx)}, implicit=())
    assert same.key is structure.key and other.key is not structure.key
    rebuilt = structure.kwargs([0.5])["how"]
    assert isinstance(rebuilt, Descent) and rebuilt.step_size == 0.5 and rebuilt.tx == tx
