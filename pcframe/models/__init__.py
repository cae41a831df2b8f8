"""Ready-made PC networks that follow the engines' model protocol."""

from ._mlp import PCMLP

__all__ = ["PCMLP"]
