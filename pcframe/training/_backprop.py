r"""The same network trained by backpropagation: the baseline every PC result is compared with.

After a feedforward pass every hidden node sits at its prediction ($z_\ell = u_\ell$), so the
PC energy reduces to the output energy $E_L(y, u_L(x; \theta))$, the network's loss. `Backprop`
differentiates that loss through the feedforward pass, $\partial E_L / \partial \theta$:
backpropagation on the very model, optimiser and guard the PC steps use (with `BatchNorm`
taking the batch's statistics, and differentiated through them, as in any backprop network).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ..functional._grad import value_and_grad
from ..inference._energy import _forward_loss, init_forward_energy
from ..inference._metrics import Metrics, accuracy
from ..nn._layer import LayerParam
from ..pc._energy_module import EnergyModule
from ..pc._status import STATUS
from ..pc._vode import VodeParam
from ..utils._mask import Mask
from ..utils._optim import Optim
from ..utils._step import step
from ._step import Learned, TrainingMode, train_step


def _feedforward_loss(x: Any, y: Any, *, model: EnergyModule) -> tuple[Any, Any]:
    with step(model, STATUS.INIT, clear_params=VodeParam.Cache):
        predictions, loss = _forward_loss(x, y, model=model)
    return loss, predictions


@dataclasses.dataclass(frozen=True)
class Backprop(TrainingMode):
    """One weight step along the gradient of the feedforward loss, taken by backpropagation (no inference).

    **Arguments:** `metrics`, `check_finite`: see `TrainingMode`.

    **Example:** ``train_step(Backprop(), x, y, inference=None, model=model, optim_w=optim_w)``
    """

    name: ClassVar[str] = "train_backprop"
    infers: ClassVar[bool] = False
    stages: ClassVar[tuple[str, ...]] = ("the feedforward pass",)

    def learn(self, inference: None, x: Any, y: Any, *, model: EnergyModule, optim_w: Optim) -> Learned:
        """Feedforward loss and its gradient through the forward pass; one weight step."""
        differentiate = value_and_grad(Mask(LayerParam, (False, True)), has_aux=True)
        (loss, predictions), grads = differentiate(_feedforward_loss)(x, y, model=model)
        grads = grads["model"]
        metrics = {"loss": loss, "energy": loss}
        if self.metrics.accuracy:
            metrics["accuracy"] = accuracy(predictions, y)
        report = [init_forward_energy(model, x, y)[1]] if self.check_finite else []
        optim_w.step(model, grads)
        return Learned(metrics, [loss, grads], model, optim_w, grads, (model, report, grads))


def train_backprop(
    model: EnergyModule, optim_w: Optim, x: Any, y: Any, *, metrics: Any = None, check_finite: bool = False
) -> dict[str, Any]:
    r"""Train a PC model's network by backpropagation: one step on $\partial E_L(y, u_L(x))/\partial\theta$.

    The same model, optimiser, guard (a non-finite step changes nothing) and metrics as
    `train_supervised`, without inference: the baseline of PC-versus-backprop comparisons.

    **Arguments:**

    - `model`: an `EnergyModule` following the engines' protocol (``model(x, y)``).
    - `optim_w`: the weight optimiser.
    - `x`, `y`: the input batch and its targets.
    - `metrics`: a `Metrics` (``loss``, ``energy`` = the loss, ``finite``; ``accuracy`` and the
      norms when asked for).
    - `check_finite`: raise `FloatingPointError` naming the first non-finite node or gradient.

    **Returns:** the metrics dict.

    **Example:** ``out = train_backprop(model, optim_w, x, one_hot_y); out["loss"]``
    """
    mode = Backprop(Metrics() if metrics is None else metrics, bool(check_finite))
    return train_step(mode, x, y, inference=None, model=model, optim_w=optim_w)
