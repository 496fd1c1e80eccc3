"""LeNet for 28x28 grey images: two Conv/ReLU/Pooling stages and three fully connected layers.

Every convolution pads 'same', so the image shrinks only in the poolings: 28 -> 14 -> 7.
"""

from __future__ import annotations

from corenet_reg_l1l2.constraints import L2_Regularizer

from corenet.initializers import He
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.plugins import get_registry

LEARNING_RATE = 5e-4
MU, RHO = 0.9, 0.999
L2_WEIGHT = 4e-4
CLASSES = 10


def build() -> NeuralNetwork:
    """LeNet: input (b, 1, 28, 28) -> class probabilities (b, 10).

    Conv 6@5x5 -> ReLU -> Pool 2x2/2 (6x14x14) -> Conv 16@5x5 -> ReLU -> Pool 2x2/2
    (16x7x7) -> Flatten (784) -> FC 120 -> ReLU -> FC 84 -> ReLU -> FC 10 -> SoftMax.
    Adam(5e-4, 0.9, 0.999) with L2_Regularizer(4e-4), He initializers for weights
    and biases, CrossEntropyLoss. Layers and optimizer are the registry's selected
    implementations (the fast tier's Conv and Adam when corenet-fast is installed).
    """
    registry = get_registry()
    layer = registry.layers
    optimizer = registry.optimizers["Adam"](LEARNING_RATE, MU, RHO)
    optimizer.add_regularizer(L2_Regularizer(L2_WEIGHT))
    net = NeuralNetwork(optimizer, He(), He())
    net.loss_layer = CrossEntropyLoss()
    for stage in (
        layer["Conv"]((1, 1), (1, 5, 5), 6),
        layer["ReLU"](),
        layer["Pooling"]((2, 2), (2, 2)),
        layer["Conv"]((1, 1), (6, 5, 5), 16),
        layer["ReLU"](),
        layer["Pooling"]((2, 2), (2, 2)),
        layer["Flatten"](),
        layer["FullyConnected"](16 * 7 * 7, 120),
        layer["ReLU"](),
        layer["FullyConnected"](120, 84),
        layer["ReLU"](),
        layer["FullyConnected"](84, CLASSES),
        layer["SoftMax"](),
    ):
        net.append_layer(stage)
    return net
