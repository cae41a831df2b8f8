"""pcframe's implementations of a workload's training step.

- the pcax tutorial style (`EnergyModule`, `Vode`, masked `pxf.vmap` /
  `pxf.value_and_grad`, `pxu.Optim`, `pxf.jit`), with inference as a `pxf.scan`
  or a Python ``for`` loop;
- the packaged engines: `PCMLP` + `pcframe.inference.train_supervised` with
  `DiscreteInference` or `ODEInference`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from workloads import Variant, Weights, Workload

import pcframe as px
import pcframe.functional as pxf
import pcframe.inference as pxi
import pcframe.nn as pxnn
import pcframe.pc as pxc
import pcframe.utils as pxu
from pcframe.models import PCMLP


class PCModel(pxc.EnergyModule):
    """The pcax tutorial's MLP: ``Linear -> act_fn -> Vode`` per hidden layer, a frozen output Vode."""

    def __init__(self, sizes: Sequence[int], act_fn: Callable, out_energy: Callable) -> None:
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode((s,)) for s in sizes[1:-1]] + [pxc.Vode((sizes[-1],), out_energy)]
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y):
        for v, l in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(l(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


BATCHED = pxu.Mask(pxc.VodeParam | pxc.VodeParam.Cache, (None, 0))


@pxf.vmap(BATCHED, in_axes=(0, 0), out_axes=0)
def pc_forward(x, y, *, model):
    """Batched forward pass (activities batched, weights shared)."""
    return model(x, y)


@pxf.jit(overwrites=pxc.VodeParam)
def _predict(x, *, model):
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        return pc_forward(x, None, model=model)


def tutorial_predict(model, x):
    """The tutorials' evaluation: a feedforward pass on a test batch of another size (its activities enter as None)."""
    return _predict(x, model=model)


@pxf.vmap(BATCHED, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
def pc_energy(x, *, model):
    """Batch-mean energy and the output prediction."""
    y_ = model(x, None)
    return jax.lax.pmean(model.energy().sum(), "batch"), y_


def make_pcframe_train(scale_h_grads: bool, use_scan: bool):
    """pcframe's training step as in the tutorial; inference as a `pxf.scan` or a Python ``for`` loop."""

    @pxf.jit(static_argnums=0, overwrites=pxc.VodeParam)
    def train_on_batch(T, x, y, *, model, optim_w, optim_h):
        model.train()
        with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
            pc_forward(x, y, model=model)
        optim_h.init(pxu.Mask(pxc.VodeParam)(model))

        def h_step(i, x, *, model, optim_h):
            with pxu.step(model, clear_params=pxc.VodeParam.Cache):
                _, g = pxf.value_and_grad(
                    pxu.Mask(pxu.m(pxc.VodeParam).has_not(frozen=True), [False, True]), has_aux=True
                )(pc_energy)(x, model=model)
            optim_h.step(model, g["model"], scale_by_batch_size=scale_h_grads)
            return x, None

        if use_scan:
            pxf.scan(h_step, xs=jnp.arange(T))(x, model=model, optim_h=optim_h)
        else:
            for i in range(T):
                h_step(i, x, model=model, optim_h=optim_h)
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(pxu.Mask(pxnn.LayerParam, [False, True]), has_aux=True)(pc_energy)(x, model=model)
        optim_w.step(model, g["model"])

    return train_on_batch


def copy_weights(model, weights: Weights) -> None:
    """Set the model's `Linear` layers to the given ``(W, b)`` pairs."""
    for layer, (W, b) in zip(model.layers, weights):
        layer.nn.weight.set(jnp.asarray(W))
        layer.nn.bias.set(jnp.asarray(b))


def read_weights(model) -> Weights:
    """The model's ``(W, b)`` pairs as NumPy arrays."""
    return [(np.asarray(l.nn.weight.value), np.asarray(l.nn.bias.value)) for l in model.layers]


def build_pcframe(w: Workload, weights: Weights, use_scan: bool) -> Variant:
    """A pcframe variant: build the model, copy the weights in, set up the optimisers as the tutorial does."""
    px.RKG.seed(0)
    model = PCModel(w.sizes, w.act_fn, pxc.ce_energy if w.ce_output else pxc.se_energy)
    copy_weights(model, weights)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        pc_forward(jnp.zeros((w.batch, w.sizes[0])), None, model=model)
    optim_h = pxu.Optim(w.h_optimiser(), pxu.Mask(pxc.VodeParam)(model))
    optim_w = pxu.Optim(w.w_optimiser(), pxu.Mask(pxnn.LayerParam)(model))
    train = make_pcframe_train(w.scale_h_grads, use_scan)
    kwargs = {"model": model, "optim_w": optim_w, "optim_h": optim_h}

    def step(x, y):
        train(w.T, x, y, **kwargs)
        return model.layers[-1].nn.weight.value

    name = "pcframe (pxf.scan)" if use_scan else "pcframe (python loop)"
    return Variant(name, step, lambda: read_weights(model), lambda x, y: train.lower(w.T, x, y, **kwargs))


def packaged_inference(w: Workload, ode: bool = False, **ode_options):
    """The engine matching the workload: `DiscreteInference` with its activity optimiser, or `ODEInference`."""
    if ode:
        return pxi.ODEInference(**ode_options)
    step_size = w.h_lr if w.scale_h_grads else w.h_lr / w.batch  # the engines step each sample on its own energy
    return pxi.DiscreteInference(step_size=step_size, steps=w.T)


def build_packaged(w: Workload, weights: Weights, ode: bool = False, name: str | None = None, **ode_options) -> Variant:
    """`PCMLP` trained by `pcframe.inference.train_supervised` (inference, weight step and metrics in one call)."""
    px.RKG.seed(0)
    model = PCMLP(w.sizes, w.act_fn, pxc.ce_energy if w.ce_output else pxc.se_energy)
    copy_weights(model, weights)
    optim_w = pxu.Optim(w.w_optimiser(), pxu.Mask(pxnn.LayerParam)(model))
    inference = packaged_inference(w, ode, **ode_options)

    def step(x, y):
        return pxi.train_supervised(model, optim_w, x, y, inference=inference)

    def lower(x, y):
        mode = pxi.Supervised()
        return px.training._step._compiled_step.lower(
            mode, x, y, inference=inference, model=model, optim_w=optim_w, rkg=px.RKG
        )

    engine = "ODEInference" if ode else "DiscreteInference"
    return Variant(name or f"pcframe train_supervised ({engine})", step, lambda: read_weights(model), lower)
