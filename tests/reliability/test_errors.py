"""An error catalogue: every public entry point given bad input fails with a message that names
the object at fault and says what to do."""

import diffrax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP
from tests.conftest import BATCHED, MLP

GRAD_W = pxu.Mask(pxnn.LayerParam, (False, True))
SGD = pxi.DiscreteInference(optax.sgd(0.1), 2)
X, Y = jnp.ones((4, 3)), jnp.ones((4, 2))


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model):
    return model(x, y)


def built(sizes=(3, 4, 2), batch=4):
    model = MLP(list(sizes))
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.ones((batch, sizes[0])), jnp.ones((batch, sizes[-1])), model=model)
    return model


def pcmlp_and_optim():
    model = PCMLP([3, 4, 2])
    return model, pxu.Optim(optax.adam(1e-3), pxu.Mask(pxnn.LayerParam)(model))


def weight_grads(model):
    def energy(x, *, model):
        return jnp.sum(model.layers[0](x)) + jnp.sum(model.layers[-1].nn.bias)

    return pxf.grad(GRAD_W)(energy)(jnp.ones(3), model=model)["model"]


def optim_on_a_grads_of_b():
    a, b = built(), built()
    pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(a)).step(b, weight_grads(b))


def optim_after_structure_change():
    model = built()
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    model.layers[0] = pxnn.Linear(3, 4)  # a new layer: new parameters the optimiser does not own
    optim.step(model, weight_grads(model))


def optim_with_stale_grads():
    model = built()
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    grads = weight_grads(model)
    grads.layers[0].nn.bias.value = jnp.ones(7)
    optim.step(model, grads)


def with_extra(model):
    model.extra = pxnn.Linear(2, 2)
    return model


def optim_cleared():
    model = built()
    optim = pxu.Optim(optax.sgd(0.1), pxu.Mask(pxnn.LayerParam)(model))
    optim.clear()
    optim.step(model, weight_grads(model))


def tutorial_step_with_new_batch_size():
    model = built(batch=4)
    forward(jnp.ones((6, 3)), jnp.ones((6, 2)), model=model)


def vode_get(slot, status=None):
    vode = pxc.Vode((3,))
    vode.set_status(status)
    return vode.get(slot)


def vode_get_u_after_step():
    model = built()
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        pass
    return model.vodes[0].get("u")


def scan_changing_shape():
    model = built()

    def body(x, c, *, model):
        model.vodes[0].h.value = jnp.ones((9, 4))
        return c, None

    pxf.scan(body, xs=jnp.arange(2))(0.0, model=model)


def save(tmp, model=None, **kw):
    return pxu.save_params(built() if model is None else model, tmp / "m", **kw)


def load_into(tmp, target, source=None, **kw):
    pxu.save_params(built() if source is None else source, tmp / "m")
    pxu.load_params(target, tmp / "m", **kw)


class NoVodes(pxc.EnergyModule):
    def __init__(self):
        self.layer = pxnn.Linear(2, 2)


class Unclamped(pxc.EnergyModule):
    def __init__(self):
        self.vode = pxc.Vode((2,))

    def __call__(self, x, y=None):
        return self.vode(x)


def train(model=None, optim=None, x=X, y=Y, **kw):
    if model is None:
        model, optim = pcmlp_and_optim()
    kw.setdefault("inference", SGD)
    return pxi.train_supervised(model, optim, x, y, **kw)


CASES = {
    # parameters, modules, masks
    "param-without-value-attribute": (
        lambda: px.Param().shape,
        AttributeError,
        "Param has no attribute 'shape' and holds no value",
    ),
    "parameters-filter-string": (
        lambda: built().parameters("LayerParam"),
        TypeError,
        "Cannot use 'LayerParam' as a parameter filter: give a Param type",
    ),
    "clear-params-int": (lambda: built().clear_params(3), TypeError, "Cannot use 3 as a parameter filter"),
    "step-on-non-module": (
        lambda: pxu.step(3).__enter__(),
        TypeError,
        r"step\(\.\.\.\) needs a pcframe Module .* got int",
    ),
    "mask-filter-none": (lambda: pxu.Mask(None), TypeError, "Cannot use None as a parameter filter"),
    "mask-map-to-triple": (
        lambda: pxu.Mask(pxnn.LayerParam, (1, 2, 3)),
        TypeError,
        r"Mask map_to must be a pair \(value_if_false, value_if_true\)",
    ),
    "m-empty": (
        lambda: pxu.m(),
        TypeError,
        r"m\(\.\.\.\) needs at least one type or predicate, e\.g\. m\(LayerParam\)",
    ),
    "m-or-bad": (
        lambda: pxu.m(pxnn.LayerParam) | "VodeParam",
        TypeError,
        "Cannot use 'VodeParam' as a parameter filter",
    ),
    # Vode
    "vode-get-h-before-values": (
        lambda: vode_get("h"),
        ValueError,
        r"Vode\(3,\): 'h' has no value\. Run a forward pass under STATUS\.INIT",
    ),
    "vode-get-u-outside-status": (
        lambda: vode_get("u"),
        ValueError,
        r"Vode\(3,\): slot 'u' is empty .* Call the Vode with its input first",
    ),
    "vode-get-u-after-step": (
        vode_get_u_after_step,
        ValueError,
        r"slot 'u' is empty .*caches are cleared after each step",
    ),
    "vode-wrong-shape": (
        lambda: pxc.Vode((3,))(jnp.ones(4)),
        ValueError,
        r"Vode with shape \(3,\) was given 'u' of shape \(4,\).*check the layer feeding it",
    ),
    "vode-set-h-wrong-shape": (
        lambda: pxc.Vode((3,)).set("h", jnp.ones((2, 5))),
        ValueError,
        r"Vode with shape \(3,\) was given 'h' of shape \(2, 5\)",
    ),
    "vode-rule-not-string": (
        lambda: pxc.Vode((3,), ruleset={pxc.STATUS.INIT: (3,)}),
        TypeError,
        "A Vode rule must be a string such as 'h, u <- u'",
    ),
    "vode-rule-without-arrow": (
        lambda: pxc.Vode((3,), ruleset={pxc.STATUS.INIT: "h = u"}),
        ValueError,
        r"Vode rule 'h = u' has neither '<-' \(set rule\) nor '->'",
    ),
    "vode-rule-unknown-tform": (
        lambda: pxc.Vode((3,), ruleset={"s": "h <- u:noise"}),
        ValueError,
        r"uses transform\(s\) \['noise'\] that are not in tforms",
    ),
    "energy-without-vodes": (
        lambda: NoVodes().energy(),
        ValueError,
        "NoVodes has no Vode, so it has no energy. Add Vode nodes",
    ),
    "linear-wrong-input": (
        lambda: pxnn.Linear(3, 4)(jnp.ones(5)),
        ValueError,
        r"Linear\(3 -> 4\) was given an input of shape \(5,\).*one sample of shape \(3,\)",
    ),
    # transforms
    "jit-model-positional": (
        lambda: pxf.jit(lambda m: 0)(built()),
        TypeError,
        "jit: positional argument 0 is a MLP holding parameters.*pass models .* as keyword arguments",
    ),
    "jit-param-list-positional": (
        lambda: pxf.jit(lambda ps: 0)([px.Param(jnp.ones(1))]),
        TypeError,
        "jit: positional argument 0 is a list holding parameters",
    ),
    "vmap-model-positional": (
        lambda: pxf.vmap(BATCHED)(lambda m: 0)(built()),
        TypeError,
        "vmap: positional argument 0 is a MLP",
    ),
    "vmap-mask-without-map-to": (
        lambda: pxf.vmap(pxu.Mask(pxc.VodeParam))(lambda x, *, model: x)(X, model=built()),
        TypeError,
        r"vmap: the Mask needs map_to=\(value_if_false, value_if_true\)",
    ),
    "vmap-mask-wrong-structure": (
        lambda: pxf.vmap({"model": [0, None]})(lambda x, *, model: x)(X, model=built()),
        ValueError,
        r"vmap: the mask's structure does not fit the keyword arguments \['model'\]",
    ),
    "vmap-new-batch-size": (
        tutorial_step_with_new_batch_size,
        ValueError,
        r"vmap: the parameter model\.vodes\[0\]\.h has size 4 along its batch axis 0 but the batch has size 6.*model\.clear_params\(pxc\.VodeParam\)",
    ),
    "grad-mask-selects-nothing": (
        lambda: pxf.grad(pxu.Mask(pxu.OptimState, (False, True)))(lambda *, model: 0.0)(model=pcmlp_and_optim()[0]),
        ValueError,
        "grad: the mask Mask\\(OptimState, map_to=\\(False, True\\)\\) selects no parameter of the keyword arguments \\['model'\\].*Check the mask's filter",
    ),
    "grad-non-scalar": (
        lambda: pxf.grad(GRAD_W)(lambda x, *, model: model.layers[0](x))(jnp.ones(3), model=built()),
        TypeError,
        r"grad: the function must return a scalar JAX array \(got shape \(4,\)\); sum or average",
    ),
    "grad-param-without-value": (
        lambda: pxf.grad(pxu.Mask(pxc.VodeParam, (False, True)))(lambda *, model: 0.0)(model=PCMLP([3, 2, 2])),
        ValueError,
        r"grad: the parameter model\.vodes\[0\]\.h \(VodeParam\) selected for differentiation has no value yet\. Run a forward pass",
    ),
    "value-and-grad-model-positional": (
        lambda: pxf.value_and_grad(GRAD_W)(lambda m: 0.0)(built()),
        TypeError,
        "value_and_grad: positional argument 0 is a MLP",
    ),
    "scan-changes-shape": (
        scan_changing_shape,
        TypeError,
        r"scan: the parameter model\.vodes\[0\]\.h changes structure, shape or dtype inside the body \(\['float32\[4, 4\]'\] -> \['float32\[9, 4\]'\]\)",
    ),
    "while-loop-model-in-carry": (
        lambda: pxf.while_loop(lambda m: m, lambda m: False)(built()),
        TypeError,
        "while_loop: positional argument 0 is a MLP",
    ),
    "cond-model-positional": (
        lambda: pxf.cond(lambda m: 0, lambda m: 0)(True, built()),
        TypeError,
        "cond: positional argument 0 is a MLP",
    ),
    # Optim
    "optim-not-optax": (
        lambda: pxu.Optim("adam"),
        TypeError,
        r"Optim needs an optax GradientTransformation \(e\.g\. optax\.sgd\(0\.1\)\), got 'adam'",
    ),
    "optim-selects-nothing": (
        lambda: pxu.Optim(optax.sgd(0.1), pxu.Mask(pxu.OptimState)(built())),
        ValueError,
        r"Optim: the given parameters contain no Param\. Check the mask",
    ),
    "optim-whole-model-without-mask": (
        lambda: pxu.Optim(optax.adam(1e-3), PCMLP([3, 2, 2])),
        ValueError,
        r"have no value yet\. To optimise a model's weights, select them with a Mask: "
        r"Optim\(tx, pxu\.Mask\(pxnn\.LayerParam\)\(model\)\)",
    ),
    "optim-params-without-value": (
        lambda: pxu.Optim(optax.sgd(0.1), pxu.Mask(pxc.VodeParam)(PCMLP([3, 2, 2]))),
        ValueError,
        r"Optim: 2 parameter\(s\) \(VodeParam\) have no value yet\. .*run a forward pass under STATUS\.INIT",
    ),
    "optim-without-state": (
        optim_cleared,
        ValueError,
        r"Optim\.step: the optimiser has no state; call init\(params\) first",
    ),
    "optim-grads-of-another-model": (
        optim_on_a_grads_of_b,
        ValueError,
        r"Optim\.step: got a gradient for layers\[0\]\.nn\.weight, but the given MLP holds none of the parameters "
        r"this optimiser was created with\. Either the optimiser belongs to another model, or the model is a copy",
    ),
    "optim-after-structure-change": (
        optim_after_structure_change,
        ValueError,
        r"Optim\.step: got a gradient for layers\[0\]\.nn\.weight, which this optimiser does not own",
    ),
    "optim-grads-of-wrong-shape": (
        optim_with_stale_grads,
        ValueError,
        r"Optim\.step: the gradient for layers\[0\]\.nn\.bias has shape \(7,\) but the parameter has shape \(4,\)",
    ),
    # files
    "save-to-missing-folder": (
        lambda tmp: save(tmp / "no" / "such"),
        FileNotFoundError,
        r"save_params: the folder .*no/such' does not exist; create it first",
    ),
    "save-selects-nothing": (
        lambda tmp: save(tmp, filter=pxu.OptimState),
        ValueError,
        r"save_params: the filter .* selects no parameter with a value in MLP",
    ),
    "load-missing-file": (
        lambda tmp: pxu.load_params(built(), tmp / "none"),
        FileNotFoundError,
        r"load_params: no file at .*none\.npz'\. Check the path",
    ),
    "load-wrong-shape": (
        lambda tmp: load_into(tmp, built((3, 5, 2)), built((3, 4, 2))),
        ValueError,
        r"load_params: layers\[0\]\.nn\.weight has shape \(5, 3\) .* but \(4, 3\)",
    ),
    "load-missing-key": (
        lambda tmp: load_into(tmp, with_extra(MLP([3, 4, 2])), MLP([3, 4, 2])),
        ValueError,
        r"has no entry for extra\.nn\.weight, which MLP has\. Was it saved from this model\?",
    ),
    "load-extra-key": (
        lambda tmp: load_into(tmp, MLP([3, 4, 2]), with_extra(MLP([3, 4, 2]))),
        ValueError,
        r"holds entries the model does not have: \['extra\.nn\.bias', 'extra\.nn\.weight'\]\. Use strict=False",
    ),
    "checkpoint-without-objects": (
        lambda tmp: pxu.save_checkpoint(tmp / "c"),
        ValueError,
        r"save_checkpoint needs the objects to save as keyword arguments, e\.g\. model=model",
    ),
    # inference engines and training steps
    "discrete-not-optax": (
        lambda: pxi.DiscreteInference("sgd"),
        TypeError,
        r"DiscreteInference needs an optax optimiser such as optax\.sgd\(0\.1\), got 'sgd'",
    ),
    "discrete-negative-steps": (
        lambda: pxi.DiscreteInference(optax.sgd(0.1), -1),
        ValueError,
        "DiscreteInference steps must be a non-negative int, got -1",
    ),
    "discrete-float-steps": (
        lambda: pxi.DiscreteInference(optax.sgd(0.1), 2.5),
        ValueError,
        "DiscreteInference steps must be a non-negative int, got 2.5",
    ),
    "ode-solver-string": (
        lambda: pxi.ODEInference(solver="heun"),
        TypeError,
        r"ODEInference solver must be a diffrax solver \(e\.g\. diffrax\.Heun\(\)\), got 'heun'",
    ),
    "ode-controller-string": (
        lambda: pxi.ODEInference(stepsize_controller="pid"),
        TypeError,
        "ODEInference stepsize_controller must be a diffrax step-size controller",
    ),
    "ode-constant-without-dt": (
        lambda: pxi.ODEInference(stepsize_controller=diffrax.ConstantStepSize()),
        ValueError,
        "ODEInference: give a fixed dt, or an adaptive stepsize_controller",
    ),
    "ode-max-t1-zero": (
        lambda: pxi.ODEInference(max_t1=0.0),
        ValueError,
        "ODEInference max_t1 must be positive, got 0.0",
    ),
    "nudging-zero": (lambda: pxi.Nudging(0.0), ValueError, "Nudging beta must be non-zero"),
    "nudging-mode-string": (
        lambda: pxi.Nudging("centred"),
        TypeError,
        r"Nudging beta must be a number \(e\.g\. Nudging\(0\.1, centred=True\)\), got 'centred'",
    ),
    "train-model-not-energy-module": (
        lambda: train(pxnn.Linear(3, 2), pcmlp_and_optim()[1]),
        TypeError,
        "model must be a pcframe.pc.EnergyModule, got Linear",
    ),
    "train-optim-not-optim": (
        lambda: train(pcmlp_and_optim()[0], optax.adam(1e-3)),
        TypeError,
        r"optim_w must be a pcframe\.utils\.Optim, e\.g\. Optim\(optax\.adam",
    ),
    "train-inference-string": (
        lambda: train(inference="ode"),
        TypeError,
        r"inference must be a pcframe\.inference\.AbstractInference, e\.g\. DiscreteInference\(step_size=0\.1, steps=20\) "
        r"or ODEInference\(\); got 'ode'",
    ),
    "train-metrics-string": (
        lambda: train(metrics="accuracy"),
        TypeError,
        "metrics must be a pcframe.inference.Metrics, got 'accuracy'",
    ),
    "train-nudging-string": (
        lambda: train(nudging="positive"),
        TypeError,
        "nudging must be a pcframe.inference.Nudging or None, got 'positive'",
    ),
    "train-y-none": (
        lambda: train(y=None),
        ValueError,
        "train_supervised needs both an input batch x and a target batch y",
    ),
    "train-x-list": (
        lambda: train(x=[[1.0, 2.0, 3.0]] * 4),
        TypeError,
        r"train_supervised: x must be a JAX or NumPy array with a leading batch axis, got list",
    ),
    "train-x-strings": (
        lambda: train(x=np.array([["a", "b", "c"]] * 4)),
        TypeError,
        r"train_supervised: x must hold numbers, got dtype <U1",
    ),
    "train-batch-mismatch": (
        lambda: train(y=jnp.ones((5, 2))),
        ValueError,
        r"train_supervised: x has batch size 4 but y has 5.*same number of samples",
    ),
    "train-x-scalar": (
        lambda: train(x=jnp.ones(())),
        ValueError,
        r"train_supervised: x must have a leading batch axis, got shape \(\)",
    ),
    "train-wrong-input-size": (
        lambda: train(x=jnp.ones((4, 7))),
        ValueError,
        r"Linear\(3 -> 4\) was given an input of shape \(7,\)",
    ),
    "train-wrong-target-size": (
        lambda: train(y=jnp.ones((4, 3))),
        ValueError,
        r"Vode with shape \(2,\) was given 'h' of shape \(3,\)",
    ),
    "train-unsupervised-negative-sigma": (
        lambda: pxi.train_unsupervised(*pcmlp_and_optim(), Y, inference=SGD, sigma=-1.0),
        ValueError,
        "sigma must be a non-negative number, got -1.0",
    ),
    "train-unsupervised-clamped-input": (
        lambda: pxi.train_unsupervised(*pcmlp_and_optim(), Y, inference=SGD),
        ValueError,
        r"PCMLP needs an input x \(or build it with free_input=True",
    ),
    "pcmlp-one-size": (
        lambda: PCMLP([3]),
        ValueError,
        r"PCMLP needs at least an input and an output size, got sizes=\[3\]",
    ),
    "energy-function-nothing-free": (
        lambda: pxi.EnergyFunction(PCMLP([3, 2])),
        ValueError,
        "EnergyFunction: no parameter of PCMLP matches .* Initialise the activities first",
    ),
    "output-vodes-none-clamped": (
        lambda: pxi.output_vodes(Unclamped()),
        ValueError,
        r"Unclamped has no clamped output node; mark it with vode\.h\.frozen = True",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_a_helpful_message(case, tmp_path):
    call, error, message = CASES[case]
    with pytest.raises(error, match=message):
        call(tmp_path) if call.__code__.co_argcount else call()


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 40
