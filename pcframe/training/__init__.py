"""Training steps: one skeleton (`train_step`) and the training modes it runs.

A training mode says what one step does with its models (how the activities start,
what is clamped, what learns); `train_step` runs any mode in one compiled call with
the same checks, guard and metrics. `pcframe.inference` re-exports every name here.
"""

from ._backprop import Backprop, train_backprop
from ._hybrid import AmortiserInputs, Hybrid, default_pairs, train_hybrid
from ._incremental import Incremental, train_incremental
from ._monte_carlo import MonteCarlo, train_monte_carlo
from ._nudging import Nudging
from ._step import Learned, TrainingMode, train_step
from ._supervised import Supervised, Unsupervised, train_supervised, train_unsupervised

__all__ = [
    "AmortiserInputs",
    "Backprop",
    "Hybrid",
    "Incremental",
    "Learned",
    "MonteCarlo",
    "Nudging",
    "Supervised",
    "TrainingMode",
    "Unsupervised",
    "default_pairs",
    "train_backprop",
    "train_hybrid",
    "train_incremental",
    "train_monte_carlo",
    "train_step",
    "train_supervised",
    "train_unsupervised",
]
