"""Inference and learning engines on the `EnergyModule` object model.

Models used with the engines follow one protocol: ``model(x, y)`` runs one sample
(the engines `vmap` it), `x` is the input (`None` when the input layer is free),
`y` is clamped at the output node (``vode.h.frozen = True``); the free activities
are the other `VodeParam`s. `pcframe.models.PCMLP` is a ready-made example.
"""

from ..training import (  # the training steps live in pcframe.training; re-exported here (pcax-style imports)
    AmortiserInputs,
    Backprop,
    Hybrid,
    Incremental,
    Learned,
    MonteCarlo,
    Nudging,
    Supervised,
    TrainingMode,
    Unsupervised,
    default_pairs,
    train_backprop,
    train_hybrid,
    train_incremental,
    train_monte_carlo,
    train_step,
    train_supervised,
    train_unsupervised,
)
from ._continuous import ODEInference
from ._discrete import DiscreteInference
from ._energy import (
    BATCHED,
    FREE,
    EnergyFunction,
    batch_energy,
    forward,
    init_forward,
    output_loss,
    output_vodes,
)
from ._errors import ErrorEnergy, ErrorInference, prediction_errors
from ._evaluation import evaluate_accuracy, infer_input, predict
from ._gradients import activity_grad, activity_vector_field, param_grad, value_grad_and_layers
from ._init import init_random
from ._langevin import LangevinInference, langevin_noise
from ._langevin_sde import LangevinSDEInference
from ._metrics import Metrics, accuracy
from ._precision import PrecisionWeighted, PrecisionWeightedEnergy
from ._sampling import sample
from ._strategy import (
    AbstractInference,
    ActivityEnergy,
    StepwiseInference,
    sample_rms,
    split_hyperparameters,
    worst_sample_rms,
)

__all__ = [
    "AbstractInference",
    "ActivityEnergy",
    "AmortiserInputs",
    "Backprop",
    "BATCHED",
    "FREE",
    "Hybrid",
    "Incremental",
    "LangevinInference",
    "LangevinSDEInference",
    "MonteCarlo",
    "Learned",
    "DiscreteInference",
    "EnergyFunction",
    "ErrorEnergy",
    "ErrorInference",
    "Metrics",
    "Nudging",
    "PrecisionWeighted",
    "PrecisionWeightedEnergy",
    "prediction_errors",
    "ODEInference",
    "StepwiseInference",
    "Supervised",
    "TrainingMode",
    "Unsupervised",
    "accuracy",
    "activity_grad",
    "activity_vector_field",
    "batch_energy",
    "default_pairs",
    "evaluate_accuracy",
    "forward",
    "infer_input",
    "init_forward",
    "init_random",
    "langevin_noise",
    "output_loss",
    "output_vodes",
    "param_grad",
    "predict",
    "sample",
    "sample_rms",
    "split_hyperparameters",
    "train_backprop",
    "train_hybrid",
    "train_incremental",
    "train_monte_carlo",
    "train_step",
    "train_supervised",
    "train_unsupervised",
    "value_grad_and_layers",
    "worst_sample_rms",
]
