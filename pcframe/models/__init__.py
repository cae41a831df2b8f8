"""Ready-made PC networks that follow the engines' model protocol."""

from ._bidirectional import BidirectionalEnergy, BidirectionalPCMLP
from ._mlp import PCMLP
from ._vgg import PCVGG

__all__ = ["BidirectionalEnergy", "BidirectionalPCMLP", "PCMLP", "PCVGG"]
