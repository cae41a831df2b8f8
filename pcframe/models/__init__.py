"""Ready-made PC networks that follow the engines' model protocol."""

from ._mlp import PCMLP
from ._vgg import PCVGG

__all__ = ["PCMLP", "PCVGG"]
