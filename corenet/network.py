"""NeuralNetwork: a stack of layers, a loss layer and a data layer; save/load."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from corenet.base import Phase
from corenet.checkpoint import FORMAT_VERSION
from corenet.errors import CorenetError, ShapeError


class NeuralNetwork:
    """Layers trained by one optimizer, with weights and bias initializers for trainable layers.

    ``data_layer.next()`` yields ``(input, one-hot label)``; ``loss_layer`` has
    ``forward(prediction, label)`` and ``backward(label)``; ``loss`` records one
    value (data loss + regularization loss) per training iteration.
    """

    def __init__(self, optimizer, weights_initializer, bias_initializer) -> None:
        self.optimizer = optimizer
        self.weights_initializer = weights_initializer
        self.bias_initializer = bias_initializer
        self.layers: list = []
        self.loss: list[float] = []
        self.data_layer = None
        self.loss_layer = None
        self._label_tensor = None
        self._phase = Phase.train

    # -- phase -----------------------------------------------------------
    @property
    def phase(self) -> Phase:
        """The network's phase; setting it sets ``testing_phase`` on every layer."""
        return self._phase

    @phase.setter
    def phase(self, value) -> None:
        self._phase = Phase.coerce(value)
        testing = self._phase is Phase.test
        for layer in self.layers:
            layer.testing_phase = testing

    # -- building ----------------------------------------------------------
    def append_layer(self, layer) -> None:
        """Add ``layer``; a trainable one gets a deep copy of the optimizer and is initialized."""
        if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
            raise TypeError(f"a layer needs forward() and backward(), got {layer!r}")
        if getattr(layer, "trainable", False):
            layer.optimizer = copy.deepcopy(self.optimizer)
            layer.initialize(self.weights_initializer, self.bias_initializer)
        layer.testing_phase = self._phase is Phase.test
        self.layers.append(layer)

    # -- running -----------------------------------------------------------
    def _propagate(self, tensor: np.ndarray) -> np.ndarray:
        for index, layer in enumerate(self.layers):
            try:
                tensor = layer.forward(tensor)
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({type(layer).__name__}): {exc}") from exc
        return tensor

    def regularization_loss(self) -> float:
        """Sum of every layer's regularization loss."""
        return float(sum(layer.calculate_regularization_loss() for layer in self.layers
                         if hasattr(layer, "calculate_regularization_loss")))

    def forward(self) -> float:
        """Draw a batch from the data layer; return data loss + regularization loss."""
        if self.data_layer is None:
            raise CorenetError("NeuralNetwork.forward needs a data_layer (set net.data_layer first)")
        if self.loss_layer is None:
            raise CorenetError("NeuralNetwork.forward needs a loss_layer (set net.loss_layer first)")
        input_tensor, self._label_tensor = self.data_layer.next()
        prediction = self._propagate(input_tensor)
        return self.loss_layer.forward(prediction, self._label_tensor) + self.regularization_loss()

    def backward(self) -> None:
        """Propagate the loss gradient back through every layer (updating trainable ones)."""
        if self._label_tensor is None:
            raise CorenetError("NeuralNetwork.backward called before forward")
        error = self.loss_layer.backward(self._label_tensor)
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            try:
                error = layer.backward(error)
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({type(layer).__name__}): {exc}") from exc

    def train(self, iterations: int, callback=None) -> None:
        """Run ``iterations`` forward/backward steps in the training phase.

        ``callback(iteration, loss)``, if given, is called after each step (progress bars).
        """
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
        self.phase = Phase.train
        for iteration in range(int(iterations)):
            loss = self.forward()
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"training stopped at iteration {iteration}: the loss became {loss} "
                    f"({self._first_non_finite_layer()})"
                )
            self.loss.append(float(loss))
            self.backward()
            if callback is not None:
                callback(iteration, float(loss))

    def _first_non_finite_layer(self) -> str:
        """Re-run the last batch to name the first layer whose output is not finite."""
        tensor = getattr(self.data_layer, "last_input", None)
        if tensor is None:
            return "lower the learning rate"
        for index, layer in enumerate(self.layers):
            tensor = layer.forward(tensor)
            if not np.all(np.isfinite(tensor)):
                return f"first non-finite output from layer {index} ({type(layer).__name__})"
        return "the layers' outputs are finite; the loss layer overflowed"

    def test(self, input_tensor: np.ndarray) -> np.ndarray:
        """Predict for ``input_tensor`` in the testing phase (no loss)."""
        self.phase = Phase.test
        return self._propagate(input_tensor)

    # -- pickling ----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["data_layer"] = None
        state["_label_tensor"] = None
        state["format_version"] = FORMAT_VERSION
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("format_version", None)
        self.data_layer = None

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"NeuralNetwork([{inner}], optimizer={self.optimizer!r})"


def save(filename, net: NeuralNetwork) -> None:
    """Pickle ``net`` (without its data layer) to ``filename`` atomically."""
    from corenet.checkpoint import save_network

    save_network(filename, net)


def load(filename, data_layer, *, trusted: bool = False) -> NeuralNetwork:
    """Load a network saved by :func:`save` and attach ``data_layer``.

    Only classes registered by corenet and its plugins are admitted; ``trusted=True``
    uses plain pickle (unsafe: only for files you made yourself).
    """
    from corenet.checkpoint import load_network

    net = load_network(filename, trusted=trusted)
    net.data_layer = data_layer
    return net
