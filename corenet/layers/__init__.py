"""The core layers: ``from corenet.layers import Conv, FullyConnected, ReLU``.

fully_connected: FullyConnected; activations: ReLU, SoftMax; flatten: Flatten;
conv: Conv; pooling: Pooling.
"""

from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling

__all__ = ["Conv", "Flatten", "FullyConnected", "Pooling", "ReLU", "SoftMax"]
