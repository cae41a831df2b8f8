"""Layers: thin wrappers over `equinox.nn` whose arrays live in `LayerParam`s."""

from ._batchnorm import BatchNorm, BatchStat, RunningStat
from ._conv import Conv, Conv1d, Conv2d, Conv3d, ConvTranspose
from ._dropout import Dropout
from ._layer import Layer, LayerParam
from ._linear import Linear
from ._norm import LayerNorm
from ._pool import AvgPool2d, MaxPool2d

__all__ = [
    "AvgPool2d",
    "BatchNorm",
    "BatchStat",
    "Conv",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose",
    "Dropout",
    "Layer",
    "LayerNorm",
    "LayerParam",
    "Linear",
    "MaxPool2d",
    "RunningStat",
]
