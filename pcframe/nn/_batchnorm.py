r"""Batch normalisation for predictive coding: statistics taken at the feedforward pass, frozen during inference.

A PC step runs the network many times on one batch: a feedforward pass that sets the
activities, then every energy evaluation of inference and the weight gradient. `BatchNorm`
takes the batch's statistics once, at the feedforward pass (`STATUS.INIT`, training mode),
and every later pass of the step normalises with those same statistics. During inference
each sample's energy is then a function of that sample alone (given the statistics), as
without normalisation; what a sample's prediction depends on through the statistics is
the batch of its feedforward pass. The weight gradient (the pass under `STATUS.LEARN`)
differentiates through the statistics, as backpropagation through a normalisation does:
held fixed there, they let the weights below a normalisation drift along directions the
normalisation removes, and a 5-layer convolutional PC network learnt digits worse with
BatchNorm than without it (``benchmarks/README.md``). This follows "Towards the Training of Deeper Predictive
Coding Neural Networks" (2025), which freezes normalisation statistics during relaxation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..core._module import Module
from ..core._param import Param
from ..pc._status import STATUS
from ._checks import positive_int
from ._layer import LayerParam


class RunningStat(Param):
    """A statistic a layer keeps across batches (`BatchNorm`'s running mean and variance).

    Set by feedforward passes in training mode, never by an optimiser; saved in parameter
    files and checkpoints with the weights; put back with the weights when a training step's
    guard rejects its update.
    """

    saved_by_default = True


class BatchStat(Param):
    """A statistic of the current batch, set by its feedforward pass and read by every later pass of the step."""

    per_batch = True


class BatchNorm(Module):
    r"""Batch normalisation of one sample's features, $y = \gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta$.

    The features are the sample's axis 0 (``(C,)`` after a `Linear`, ``(C, H, W)`` after a
    `Conv2d`); $\mu, \sigma^2$ are taken over the batch and every other axis.

    - Training mode, feedforward pass (`STATUS.INIT`, as in `init_forward` and every
      training step): $\mu, \sigma^2$ are the batch's (biased variance, reduced across the
      vmapped axis `axis_name`, so across devices too when the batch is sharded); they are
      kept for the rest of the step (`BatchStat`), and the running statistics move towards
      them, $\hat\mu \leftarrow (1 - m)\hat\mu + m\mu$,
      $\hat\sigma^2 \leftarrow (1 - m)\hat\sigma^2 + m\frac{n}{n-1}\sigma^2$ ($n$ values per
      feature; unbiased, as PyTorch keeps them).
    - Training mode, inference (any other status): the statistics of the step's feedforward
      pass, held fixed.
    - Training mode, the weight gradient (`STATUS.LEARN`): the same values, differentiated as
      the statistics of this pass's batch, $\mu = \mu_\mathrm{ff} + \mu(x) - \mathrm{sg}[\mu(x)]$.
      The training steps that take a separate weight pass (supervised, unsupervised, hybrid,
      nudged) use it; `train_incremental` and `train_monte_carlo`, whose weight gradients come
      from their inference passes, hold the statistics fixed.
    - Evaluation mode (`model.eval()`): the running statistics $\hat\mu, \hat\sigma^2$.

    Each feedforward pass in training mode counts as one batch for the running statistics.

    **Arguments:**

    - `num_features`: $C$, the size of the sample's axis 0.
    - `momentum`: $m$.
    - `eps`: $\epsilon$.
    - `affine`: learn $\gamma$ (ones) and $\beta$ (zeros) as `LayerParam`s.
    - `axis_name`: the vmapped batch axis (the engines' is ``"batch"``).

    **Example:**

    ```python
    self.norm = BatchNorm(64)          # after a Conv2d(32, 64, 3)
    h = self.vodes[1](gelu(self.norm(self.conv(x))))
    ```
    """

    def __init__(
        self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True, axis_name: Any = "batch"
    ) -> None:
        num_features = positive_int(num_features, "BatchNorm num_features")
        if not 0 < momentum <= 1:
            raise ValueError(f"BatchNorm momentum must be in (0, 1], got {momentum!r}.")
        if not eps > 0:
            raise ValueError(f"BatchNorm eps must be positive, got {eps!r}.")
        self.num_features, self.momentum, self.eps, self.axis_name = (
            num_features,
            float(momentum),
            float(eps),
            axis_name,
        )
        self.weight = LayerParam(jnp.ones(num_features)) if affine else None
        self.bias = LayerParam(jnp.zeros(num_features)) if affine else None
        self.running_mean = RunningStat(jnp.zeros(num_features))
        self.running_var = RunningStat(jnp.ones(num_features))
        self.batch_mean = BatchStat()
        self.batch_var = BatchStat()

    def __call__(self, x: Any) -> Any:
        """Normalise one sample `x` of shape ``(num_features, ...)``."""
        if jnp.ndim(x) < 1 or jnp.shape(x)[0] != self.num_features:
            raise ValueError(
                f"BatchNorm({self.num_features}): expected one sample of shape ({self.num_features}, ...) (features "
                f"first), got {jnp.shape(x)}. Call it inside pcframe.functional.vmap, one sample at a time."
            )
        if not self.is_training:
            mean, var = self.running_mean.value, self.running_var.value
        elif self.status == STATUS.INIT:
            mean, var = self._take_batch_statistics(x)
        else:
            mean, var = self.batch_mean.value, self.batch_var.value
            if mean is None:
                raise ValueError(
                    f"BatchNorm({self.num_features}) in training mode has no batch statistics: they are taken by a "
                    "feedforward pass (status STATUS.INIT, e.g. init_forward or the training steps) before inference. "
                    "Start the step with a feedforward pass, or call model.eval() to use the running statistics."
                )
            if self.status == STATUS.LEARN:
                mean, var = self._with_gradients_of_this_batch(x, mean, var)
        shape = (-1,) + (1,) * (jnp.ndim(x) - 1)
        y = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.value.reshape(shape) + self.bias.value.reshape(shape)
        return y

    def _batch_statistics(self, x: Any) -> tuple[Any, Any, Any]:
        """The batch's mean and biased variance per feature, and the number of values per feature."""
        axes = tuple(range(1, jnp.ndim(x)))
        try:
            mean = jax.lax.pmean(jnp.mean(x, axis=axes), self.axis_name)
            var = jax.lax.pmean(jnp.mean((x - mean.reshape((-1,) + (1,) * len(axes))) ** 2, axis=axes), self.axis_name)
            count = jax.lax.psum(1, self.axis_name) * (x.size // self.num_features)
        except NameError as error:
            raise ValueError(
                f"BatchNorm({self.num_features}) in training mode needs the batch: call the model inside "
                f"pcframe.functional.vmap(..., axis_name={self.axis_name!r}) (the engines do), or call model.eval() "
                "to normalise with the running statistics."
            ) from error
        return mean, var, count

    def _with_gradients_of_this_batch(self, x: Any, mean: Any, var: Any) -> tuple[Any, Any]:
        """The feedforward statistics as values, with the gradients of this pass's batch statistics.

        $\\mu = \\mu_\\mathrm{ff} + (\\mu(x) - \\mathrm{sg}[\\mu(x)])$ (and so for $\\sigma^2$): the weight
        gradient is backpropagation's through the normalisation, as the statistics depend on the
        weights below, while the energy keeps the values inference used.
        """
        live_mean, live_var, _ = self._batch_statistics(x)
        sg = jax.lax.stop_gradient
        return mean + live_mean - sg(live_mean), var + live_var - sg(live_var)

    def _take_batch_statistics(self, x: Any) -> tuple[Any, Any]:
        """The batch's mean and biased variance per feature; kept for the step, folded into the running ones."""
        mean, var, count = self._batch_statistics(x)
        self.batch_mean.value, self.batch_var.value = mean, var
        m = self.momentum
        self.running_mean.value = (1 - m) * self.running_mean.value + m * mean
        self.running_var.value = (1 - m) * self.running_var.value + m * var * count / max(count - 1, 1)
        return mean, var
