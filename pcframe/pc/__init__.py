"""Predictive coding primitives: `EnergyModule`, `Vode`, energies, energy regularisers and statuses."""

from ._energies import ce_energy, se_energy, zero_energy
from ._energy_module import EnergyModule, with_regularisation
from ._regularisers import AbstractRegulariser, ActivityDecay, SpectralPenalty, WeightDecay, weight_matrices
from ._rules import GetRule, SetRule, parse_rule
from ._status import STATUS
from ._vode import Vode, VodeParam

__all__ = [
    "STATUS",
    "AbstractRegulariser",
    "ActivityDecay",
    "SpectralPenalty",
    "WeightDecay",
    "weight_matrices",
    "with_regularisation",
    "EnergyModule",
    "GetRule",
    "SetRule",
    "Vode",
    "VodeParam",
    "ce_energy",
    "parse_rule",
    "se_energy",
    "zero_energy",
]
