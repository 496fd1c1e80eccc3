"""NeuralNetwork: a stack of layers, a loss layer and a data layer; save/load."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from corenet.base import Phase, brief, require_instance
from corenet.errors import CheckpointError, CorenetError, DivergenceError, NetworkError, ShapeError


class NeuralNetwork:
    """Layers trained by one optimizer, with weights and bias initializers for trainable layers.

    ``data_layer.next()`` yields ``(input, one-hot label)``; ``loss_layer`` has
    ``forward(prediction, label)`` and ``backward(label)``; ``loss`` records one
    value (data loss + regularization loss) per training iteration.

    Guardrails: a missing or malformed data/loss layer and a batch whose inputs and
    labels differ in count are reported before any update; ``train`` stops with a
    :class:`~corenet.errors.DivergenceError` (a FloatingPointError) naming the
    iteration and the first layer with a non-finite value when the loss is NaN/inf.
    """

    #: attributes about the last batch only: never saved, None after a load or a copy
    transient: tuple[str, ...] = ("last_step",)

    def __init__(self, optimizer, weights_initializer, bias_initializer) -> None:
        if optimizer is not None:
            require_instance("NeuralNetwork: optimizer", optimizer, "calculate_update", "Adam(1e-3)")
        initializers = {"weights_initializer": weights_initializer, "bias_initializer": bias_initializer}
        for name, value in initializers.items():
            if value is not None:
                require_instance(f"NeuralNetwork: {name}", value, "initialize", "He()")
        self.optimizer = optimizer
        self.weights_initializer = weights_initializer
        self.bias_initializer = bias_initializer
        self.layers: list = []
        self.loss: list[float] = []
        self.data_layer = None
        self.loss_layer = None
        self._label_tensor = None
        self._input_tensor = None
        self._phase = Phase.train
        #: the last training forward's numbers (:class:`Step`), None before the first
        self.last_step: Step | None = None

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
        if isinstance(layer, type):
            raise TypeError(
                f"append_layer needs a layer instance, got the class {layer.__name__}; "
                f"call it: {layer.__name__}(...)"
            )
        if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
            raise TypeError(f"a layer needs forward() and backward(), got {brief(layer)}")
        if getattr(layer, "trainable", False):
            for name in ("weights_initializer", "bias_initializer"):
                require_instance(f"NeuralNetwork.{name} (needed by the trainable {layer!r})",
                                 getattr(self, name), "initialize", "He()")
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
                raise _prefixed(exc, f"layer {index} ({type(layer).__name__})", index) from exc
            except Exception as exc:  # a layer's own failure keeps its type; callers learn where it was
                _mark_layer(exc, index, layer, "forward")
                raise
        return tensor

    def regularization_loss(self) -> float:
        """Sum of every layer's regularization loss."""
        return float(sum(layer.calculate_regularization_loss() for layer in self.layers
                         if hasattr(layer, "calculate_regularization_loss")))

    def _check_data_and_loss_layers(self, caller: str) -> None:
        if self.data_layer is None:
            raise CorenetError(f"NeuralNetwork.{caller} needs a data_layer (set net.data_layer first)")
        require_instance("NeuralNetwork.data_layer", self.data_layer, "next", "IrisData(50)")
        if self.loss_layer is None:
            raise CorenetError(f"NeuralNetwork.{caller} needs a loss_layer (set net.loss_layer first)")
        require_instance("NeuralNetwork.loss_layer", self.loss_layer, "forward", "CrossEntropyLoss()")
        require_instance("NeuralNetwork.loss_layer", self.loss_layer, "backward", "CrossEntropyLoss()")

    def _next_batch(self) -> tuple[Any, Any]:
        """``data_layer.next()``, checked: a pair of arrays with the same number of samples."""
        batch = self.data_layer.next()
        owner = f"data layer {type(self.data_layer).__name__}"
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise CorenetError(
                f"{owner}: next() must return (input_tensor, label_tensor), got {brief(batch)}"
            )
        input_tensor, label_tensor = batch
        sizes = []
        for name, tensor in (("input", input_tensor), ("label", label_tensor)):
            try:
                shape = np.shape(tensor)
            except ValueError:  # ragged nested lists
                shape = None
            if not shape:
                raise ShapeError(
                    f"{owner}: next() returned a {name} tensor without a batch axis ({brief(tensor)})"
                )
            sizes.append(shape)
        if sizes[0][0] != sizes[1][0]:
            raise ShapeError(
                f"{owner}: next() returned {sizes[0][0]} inputs but {sizes[1][0]} "
                f"labels (input shape {sizes[0]}, label shape {sizes[1]})"
            )
        return input_tensor, label_tensor

    def forward(self) -> float:
        """Draw a batch from the data layer; return data loss + regularization loss."""
        self._check_data_and_loss_layers("forward")
        input_tensor, label_tensor = self._next_batch()
        self._input_tensor, self._label_tensor = input_tensor, label_tensor
        prediction = self._propagate(input_tensor)
        try:
            data_loss = self.loss_layer.forward(prediction, label_tensor)
        except ShapeError as exc:
            raise _prefixed(exc, "loss layer") from exc
        regularization = self.regularization_loss()
        self.last_step = Step(float(data_loss), regularization, prediction, label_tensor)
        return data_loss + regularization

    def backward(self) -> None:
        """Propagate the loss gradient back through every layer (updating trainable ones)."""
        if self._label_tensor is None:
            raise CorenetError("NeuralNetwork.backward called before forward")
        error = self.loss_layer.backward(self._label_tensor)
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            try:
                if index == 0:  # nobody uses the first layer's input gradient: let it skip that
                    with _without_input_gradient(layer):
                        error = layer.backward(error)
                else:
                    error = layer.backward(error)
            except ShapeError as exc:
                raise _prefixed(exc, f"layer {index} ({type(layer).__name__})", index) from exc
            except Exception as exc:
                _mark_layer(exc, index, layer, "backward")
                raise

    def train(self, iterations: int, callback=None) -> None:
        """Run ``iterations`` forward/backward steps in the training phase.

        ``callback(iteration, loss)``, if given, is called after each step (progress bars).
        Everything the first step needs is checked before it; a NaN/inf loss stops
        training with a :class:`DivergenceError` before that iteration's update.
        CrossEntropyLoss after a last layer that does not output probabilities (see
        :func:`check_probabilities`) is refused before the first update.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(iteration, loss), got {brief(callback)}")
        if not self.layers:
            raise CorenetError("NeuralNetwork.train: the network has no layers (add them with append_layer)")
        self._check_data_and_loss_layers("train")
        self.phase = Phase.train
        total = int(iterations)
        for iteration in range(total):
            loss = self.forward()
            if iteration == 0 and self.last_step is not None:
                check_probabilities(self.layers, self.loss_layer, self.last_step.prediction)
            if not np.isfinite(loss):
                raise DivergenceError(
                    f"training stopped at iteration {iteration + 1} of {total}: the loss became {loss} "
                    f"({self._first_non_finite()}); this iteration's update was not applied. "
                    f"Lower the learning rate or check the data"
                )
            self.loss.append(float(loss))
            self.backward()
            if callback is not None:
                callback(iteration, float(loss))

    def fit(self, epochs: int = 1, *, iterations_per_epoch: int | None = None, callback=None):
        """Train ``epochs`` epochs; after each, measure the data layer's test set; return a History.

        An epoch is ``iterations_per_epoch`` iterations (default: the data layer's
        ``train_size`` over its ``batch_size``, rounded up). Each epoch's
        :class:`~corenet.history.EpochRecord` holds the mean loss per sample (data and
        regularization parts), the training accuracy over the epoch's batches (training
        phase), the test accuracy and loss (testing phase; None without ``get_test_set``)
        and the seconds. Training itself is :meth:`train`: ``net.loss`` grows as usual.
        ``callback(iteration, loss)`` is passed on to :meth:`train`.
        """
        from corenet.epochs import EpochLoop
        from corenet.epochs import iterations_per_epoch as per_epoch_of

        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self._check_data_and_loss_layers("fit")
        per_epoch = iterations_per_epoch or per_epoch_of(self.data_layer)
        loop = EpochLoop(self, per_epoch, test_set=EpochLoop.test_set_of(self.data_layer), on_step=callback)
        return loop.run(int(epochs) * per_epoch)

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A table of the layers: class, implementation (``reference``, ``fast``, ...), output shape per sample,
        parameter count; the total and the phase.

        Output shapes come from a forward pass of a batch of zeros through copies of
        the layers (testing phase; the network is not changed) for ``input_shape``
        (one sample, without the batch axis), by default the data layer's.
        """
        from corenet.summary import summarize

        return summarize(self, input_shape)

    def _first_non_finite(self) -> str:
        """Re-run the last batch on copies of the layers to name where a non-finite value first appears.

        The copies keep the network's state untouched; NumPy's global generator is
        restored afterwards, so a seeded run stays reproducible.
        """
        tensor = self._input_tensor  # set by forward(), which train() has just run
        if tensor is None:
            return "the last input batch is unknown"
        state = np.random.get_state()
        try:
            with np.errstate(all="ignore"):
                layers = copy.deepcopy(self.layers)
                return _trace_non_finite(layers, tensor, self._label_tensor, self.loss_layer)
        except Exception as exc:  # the diagnosis must never hide the divergence itself
            return f"re-running the batch to find the layer failed: {type(exc).__name__}: {exc}"
        finally:
            np.random.set_state(state)

    def test(self, input_tensor: np.ndarray) -> np.ndarray:
        """Predict for ``input_tensor`` in the testing phase (no loss)."""
        self.phase = Phase.test
        return self._propagate(input_tensor)

    # -- pickling ----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["data_layer"] = None
        state["_label_tensor"] = None
        state["_input_tensor"] = None
        state["last_step"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_input_tensor", None)
        self.__dict__["last_step"] = None
        self.data_layer = None

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"NeuralNetwork([{inner}], optimizer={self.optimizer!r})"


@dataclass
class Step:
    """One training forward: the loss layer's value (summed over the batch), the regularization
    loss, and the batch's prediction and labels (for the training accuracy)."""

    data_loss: float
    regularization_loss: float
    prediction: Any
    label: Any

    @property
    def samples(self) -> int:
        """Samples in the batch (its first axis)."""
        return int(np.shape(self.label)[0])

    @property
    def correct(self) -> int | None:
        """Samples whose largest prediction is their one-hot label's class; None when the labels
        are not (batch, classes) rows of the prediction's shape."""
        prediction, label = np.asarray(self.prediction), np.asarray(self.label)
        if prediction.ndim != 2 or prediction.shape != label.shape or prediction.shape[1] < 2:
            return None
        return int(np.count_nonzero(prediction.argmax(axis=1) == label.argmax(axis=1)))


@contextlib.contextmanager
def _without_input_gradient(layer):
    """Set ``layer.needs_input_gradient`` False inside the block (see BaseLayer), then restore it.

    Only layers that declare the attribute (every BaseLayer) are touched; the
    instance is left as it was, so pickles and standalone use are unchanged.
    """
    if getattr(layer, "needs_input_gradient", None) is not True:
        yield
        return
    had_own = "needs_input_gradient" in getattr(layer, "__dict__", {})
    layer.needs_input_gradient = False
    try:
        yield
    finally:
        if had_own:
            layer.needs_input_gradient = True
        else:
            del layer.needs_input_gradient


def _mark_layer(exc: Exception, index: int, layer, where: str) -> None:
    """Record on ``exc`` the network layer it came from (``layer_index``, ``layer_class``; the innermost
    network wins) and add a traceback note, so callers such as configs can name the layer."""
    if getattr(exc, "layer_index", None) is not None:
        return
    try:
        exc.layer_index, exc.layer_class = index, type(layer).__name__
    except AttributeError:  # an exception type without a __dict__
        return
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"(in {where} of network layer {index}, {type(layer).__name__})")


def _outputs_probabilities(layer) -> bool:
    """Whether ``layer`` says it outputs probabilities: a class named SoftMax (any capitalisation, a
    learner's own too) or an ``outputs_probabilities = True`` attribute."""
    return type(layer).__name__.lower() == "softmax" or getattr(layer, "outputs_probabilities", False) is True


def check_probabilities(layers: list, loss_layer, prediction) -> None:
    """Refuse a CrossEntropyLoss fed with something other than probabilities (a forgotten SoftMax).

    The loss (a class named CrossEntropyLoss, or one with ``expects_probabilities = True``)
    takes SoftMax's output. The last layer passes by name (see :func:`_outputs_probabilities`)
    or by behaviour: ``prediction``, its output for the first batch, has non-negative rows
    summing to 1. Anything else (a ReLU or FullyConnected last) would train to wrong
    results without an error, so a :class:`NetworkError` says to end with SoftMax.
    """
    expects = type(loss_layer).__name__ == "CrossEntropyLoss" or getattr(loss_layer, "expects_probabilities",
                                                                         False) is True
    if not expects or not layers or _outputs_probabilities(layers[-1]):
        return
    rows = np.asarray(prediction)
    if rows.ndim == 2 and rows.size and rows.dtype.kind == "f":
        sums = rows.sum(axis=1)
        if rows.min() >= 0 and np.allclose(sums, 1.0, rtol=0, atol=1e-3):
            return
        found = f"its rows sum to {sums.min():.4g} .. {sums.max():.4g}"
    else:
        found = f"it outputs shape {rows.shape}"
    index, last = len(layers) - 1, type(layers[-1]).__name__
    error = NetworkError(
        f"layer {index} ({last}): {type(loss_layer).__name__} takes probabilities (each row >= 0, summing to "
        f"1), but the last layer is {last} and {found}; end the network with a SoftMax layer so the loss "
        f"and its gradient are right"
    )
    error.layer_index, error.layer_message = index, error.args[0].split(": ", 1)[1]
    raise error


def _prefixed(exc: ShapeError, where: str, layer_index: int | None = None) -> ShapeError:
    """The same kind of error (e.g. NonFiniteError) with ``where: `` in front of its message;
    ``layer_index`` (None for the loss layer) is kept on the new error for callers such as configs."""
    message = f"{where}: {exc}"
    try:
        prefixed = type(exc)(message)
    except TypeError:  # a subclass with its own constructor signature
        prefixed = ShapeError(message)
    prefixed.layer_index = layer_index
    prefixed.layer_message = str(exc)
    return prefixed


def _non_finite(value) -> bool:
    array = np.asarray(value)
    return array.dtype.kind in "fc" and not np.all(np.isfinite(array))


def _trace_non_finite(layers: list, tensor, label_tensor, loss_layer) -> str:
    """Where the forward pass of ``tensor`` through ``layers`` first holds NaN/inf (see train)."""
    if _non_finite(tensor):
        return "the input batch from the data layer holds NaN/inf values"
    for index, layer in enumerate(layers):
        name = f"layer {index} ({type(layer).__name__})"
        for parameter in getattr(layer, "parameter_names", None) or ("weights", "bias"):
            if _non_finite(getattr(layer, parameter, None)):
                return f"{name} has non-finite {parameter}: an earlier update diverged"
        tensor = layer.forward(tensor)
        if _non_finite(tensor):
            return f"first non-finite output from {name}"
        regularization = getattr(layer, "calculate_regularization_loss", None)
        if regularization is not None and _non_finite(regularization()):
            return f"the regularization loss of {name} overflowed"
    if label_tensor is not None and _non_finite(label_tensor):
        return "the label batch from the data layer holds NaN/inf values"
    return f"the layers' outputs are finite; the loss layer ({type(loss_layer).__name__}) overflowed"


def save(filename, net: NeuralNetwork, *, force: bool = False) -> None:
    """Write ``net`` (without its data layer) to ``filename`` as a format-2 checkpoint.

    The file holds plain data only (see :mod:`corenet.checkpoint`). It is written to a
    temporary file beside the target, fsynced and renamed over it; a target that is a
    folder, FIFO or device is refused, and a symbolic link or an existing file that is
    not a corenet checkpoint (the YAML config, say) only with ``force=True``.
    """
    from corenet.checkpoint import save_network

    if not isinstance(net, NeuralNetwork):
        raise TypeError(f"save expects a NeuralNetwork, got {brief(net)}")
    save_network(filename, net, force=force)


def load(filename, data_layer) -> NeuralNetwork:
    """Load a network saved by :func:`save` and attach ``data_layer``.

    Nothing in the file can run: it holds plain data, and layers, optimizers,
    initializers and the loss layer are rebuilt through the registry with their saved
    arguments and state. A damaged, truncated, foreign or older-format file, a component
    whose plugin is not installed, or non-finite weights raise a CheckpointError naming
    the file.
    """
    from corenet.checkpoint import read_network

    source = str(filename)
    saved = read_network(filename)
    try:
        net = NeuralNetwork(saved.optimizer, saved.weights_initializer, saved.bias_initializer)
    except TypeError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    net.layers = saved.layers
    net.loss = saved.loss
    net.loss_layer = saved.loss_layer
    net._phase = Phase(saved.phase)
    for name, value in saved.attributes.items():
        if hasattr(NeuralNetwork, name):  # would hide a method or property
            raise CheckpointError(f"{source}: the saved attribute {name!r} would replace NeuralNetwork.{name}")
        setattr(net, name, value)
    net.data_layer = data_layer
    return net
