"""Ready-made PC networks that follow the engines' model protocol, and the parametrisations of residual ones."""

from ._bidirectional import BidirectionalEnergy, BidirectionalPCMLP
from ._mlp import PCMLP
from ._parametrisation import AbstractParametrisation, MuPC, NeuralTangentParametrisation, StandardParametrisation
from ._resconv import ResidualPCConvNet
from ._resmlp import ResidualPCMLP
from ._resnet import PCResNet
from ._vgg import PCVGG

__all__ = [
    "AbstractParametrisation",
    "BidirectionalEnergy",
    "BidirectionalPCMLP",
    "MuPC",
    "NeuralTangentParametrisation",
    "PCMLP",
    "PCResNet",
    "PCVGG",
    "ResidualPCConvNet",
    "ResidualPCMLP",
    "StandardParametrisation",
]
