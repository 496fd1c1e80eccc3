"""The layer protocol: BaseLayer, TrainableLayer and the train/test Phase."""

from __future__ import annotations

import copy
import enum
import functools
from typing import Any

import numpy as np


class Phase(enum.Enum):
    """Whether a network is learning (``train``) or predicting (``test``)."""

    train = "train"
    test = "test"

    @classmethod
    def coerce(cls, value: Any) -> Phase:
        """Accept a Phase, its name (``"train"``/``"test"``) or a bool (True = testing)."""
        if isinstance(value, Phase):
            return value
        if isinstance(value, bool):
            return cls.test if value else cls.train
        if isinstance(value, str) and value.lower() in ("train", "training", "test", "testing"):
            return cls.test if value.lower().startswith("test") else cls.train
        raise ValueError(f"phase must be Phase.train, Phase.test, 'train' or 'test', got {value!r}")


def _recording_arguments(init):
    """``init`` wrapped to store ``(args, kwargs)`` of the outermost call in ``self._init_arguments``
    (the most derived class's ``__init__`` runs first; ``super().__init__`` calls find it set)."""

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "_init_arguments" not in self.__dict__:
            self.__dict__["_init_arguments"] = (args, dict(kwargs))
        init(self, *args, **kwargs)

    __init__._records_arguments = True
    return __init__


class BaseLayer:
    """A layer: ``forward(input) -> output`` and ``backward(error) -> error for the previous layer``.

    ``trainable`` is False unless the layer has parameters; ``testing_phase`` is
    False (training) unless the network switches it.

    ``needs_input_gradient`` (True) may be honoured by ``backward``: while it is
    False, a layer may skip computing the error for the previous layer and return
    None instead (it still computes its own gradients and updates). Only
    :meth:`NeuralNetwork.backward <corenet.network.NeuralNetwork.backward>` sets it
    False, and only on its first layer for the duration of that call, where
    nobody uses the input gradient; a layer used standalone, or anywhere else in
    a network, always returns its error.

    Checkpoints rebuild a layer from the arguments it was constructed with (recorded
    here, see :attr:`init_arguments`) and its public attributes; a layer that needs
    more defines ``get_config()``, ``get_state()`` and ``set_state(state)`` (see
    :mod:`corenet.components`).
    """

    needs_input_gradient = True

    #: Attributes holding what ``backward`` needs from the last ``forward`` (inputs, masks,
    #: outputs). Pickles and deep copies carry them as None and checkpoints leave them out: they
    #: are batch-sized, and a restored layer must see a forward before a backward (which otherwise
    #: says so).
    transient: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make the subclass's own ``__init__`` record the arguments it is called with (see
        :attr:`init_arguments`); the signature ``inspect`` reports stays the original."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_arguments", False):
            cls.__init__ = _recording_arguments(init)

    def __init__(self) -> None:
        self.trainable = False
        self.testing_phase = False

    @property
    def init_arguments(self) -> tuple[tuple, dict] | None:
        """``(args, kwargs)`` the layer was constructed with (None for an instance made without
        ``__init__``). Checkpoints rebuild a layer with them (see :mod:`corenet.components`)."""
        return self.__dict__.get("_init_arguments")

    def __getstate__(self) -> dict:
        """The instance's attributes with those named in :attr:`transient` set to None."""
        state = self.__dict__.copy()
        for name in self.transient:
            if name in state:
                state[name] = None
        return state

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def calculate_regularization_loss(self) -> float:
        """Regularization loss of this layer's parameters (0 for layers without any)."""
        return 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TrainableLayer(BaseLayer):
    """A layer with parameter tensors, each updated by its own copy of the optimizer.

    Subclasses list their parameter attribute names in ``parameter_names`` (e.g.
    ``("weights", "bias")``) and call :meth:`apply_update` from ``backward``.
    Setting ``optimizer`` deep-copies it once per parameter, so Adam and momentum
    keep separate state for every tensor.
    """

    parameter_names: tuple[str, ...] = ("weights",)

    def __init__(self) -> None:
        super().__init__()
        self.trainable = True
        self._optimizer = None
        self._parameter_optimizers: dict[str, Any] = {}

    @property
    def optimizer(self):
        """The optimizer given to this layer (None: no update in backward)."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer) -> None:
        if optimizer is not None:
            require_instance(f"{self!r}.optimizer", optimizer, "calculate_update", "Sgd(0.01)")
        self._optimizer = optimizer
        self._parameter_optimizers = (
            {name: copy.deepcopy(optimizer) for name in self.parameter_names}
            if optimizer is not None
            else {}
        )

    def parameter_optimizer(self, name: str):
        """The optimizer copy that updates parameter ``name`` (None when unset)."""
        return self._parameter_optimizers.get(name)

    def apply_update(self, name: str, gradient: np.ndarray) -> None:
        """Replace parameter ``name`` by its optimizer's update (no-op without optimizer).

        The parameter keeps its floating dtype: a float64 batch through a float32 layer
        computes in float64 but leaves float32 weights (see :func:`keep_dtype`).
        """
        optimizer = self._parameter_optimizers.get(name)
        if optimizer is not None:
            current = getattr(self, name)
            setattr(self, name, keep_dtype(optimizer.calculate_update(current, gradient), current))

    def calculate_regularization_loss(self) -> float:
        """Sum of ``regularizer.norm`` over every parameter whose optimizer has a regularizer."""
        total = 0.0
        for name, optimizer in self._parameter_optimizers.items():
            regularizer = getattr(optimizer, "regularizer", None)
            if regularizer is not None:
                total += float(regularizer.norm(getattr(self, name)))
        return total


def keep_dtype(value, like):
    """``value`` in ``like``'s floating dtype when both are floating arrays of different dtypes, else unchanged."""
    if (isinstance(value, np.ndarray) and isinstance(like, np.ndarray) and value.dtype != like.dtype
            and value.dtype.kind == "f" and like.dtype.kind == "f"):
        return value.astype(like.dtype)
    return value


def require_instance(what: str, obj: Any, method: str, example: str) -> None:
    """Refuse a class where an instance is needed, or an object without ``method`` (``example`` shows one)."""
    if isinstance(obj, type):
        name = obj.__name__
        raise TypeError(f"{what} must be an instance, got the class {name}; call it: {name}(...)")
    if not callable(getattr(obj, method, None)):
        raise TypeError(f"{what} needs an object with a {method}() method, e.g. {example}; got {brief(obj)}")


def brief(obj: Any) -> str:
    """A short description of ``obj`` for error messages (arrays by shape, no memory addresses)."""
    if isinstance(obj, np.ndarray):
        return f"an ndarray of shape {obj.shape}"
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    if type(obj).__repr__ is object.__repr__:
        return f"a {type(obj).__name__} object"
    text = repr(obj)
    return text if len(text) <= 60 else f"{text[:57]}..."
