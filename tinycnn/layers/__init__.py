"""Layers: each with an explicit ``forward`` and ``backward`` (one family per file)."""
from tinycnn.layers.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from tinycnn.layers.base import Layer
from tinycnn.layers.conv import Conv2D
from tinycnn.layers.dense import Dense, Flatten
from tinycnn.layers.dropout import Dropout
from tinycnn.layers.normalization import BatchNorm1D, BatchNorm2D
from tinycnn.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from tinycnn.layers.residual import Residual

__all__ = ["Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Dense", "Flatten",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D", "BatchNorm1D", "Residual"]

#: name -> class, used by ``load_model`` to rebuild an architecture from its JSON. Every
#: public Layer subclass registers itself (tinycnn.layers.base.register_layer).
from tinycnn.layers.base import REGISTRY  # noqa: E402
