"""Pickles and deep copies of layers leave out what backward keeps from the last forward.

Checkpoints should hold a model, not its last batch: masks, inputs and outputs
(``BaseLayer.transient``) come back as None, a restored layer refuses a backward
before its first forward, and after a forward it computes exactly what the
original computes.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from corenet.errors import ShapeError
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.conv import Conv
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling
from corenet.optimizers import Adam
from corenet.plugins import get_registry

BATCH = 64  # large enough that any batch-sized cache would show in the pickle's size


def _plugin_layer(name: str, *args):
    def make():
        layers = get_registry().layers
        if name not in layers:
            pytest.skip(f"the plugin providing {name} is not installed")
        return layers[name](*args)
    return make


CASES = {
    "ReLU": (ReLU, (BATCH, 7)),
    "SoftMax": (SoftMax, (BATCH, 7)),
    "Flatten": (Flatten, (BATCH, 2, 3, 3)),
    "FullyConnected": (lambda: FullyConnected(7, 5), (BATCH, 7)),
    "Conv": (lambda: Conv((1, 1), (2, 3, 3), 3), (BATCH, 2, 6, 6)),
    "Pooling": (lambda: Pooling(2, 2), (BATCH, 2, 6, 6)),
    "Dropout": (_plugin_layer("Dropout", 0.5), (BATCH, 7)),
    "BatchNormalization": (_plugin_layer("BatchNormalization", 2), (BATCH, 2, 3, 3)),
    "TanH": (_plugin_layer("TanH"), (BATCH, 7)),
    "Sigmoid": (_plugin_layer("Sigmoid"), (BATCH, 7)),
    "RNN": (_plugin_layer("RNN", 7, 6, 4), (BATCH, 7)),
    "LSTM": (_plugin_layer("LSTM", 7, 6, 4), (BATCH, 7)),
}


def test_every_registered_layer_has_a_case():
    missing = set(get_registry().layers) - set(CASES) - {"LeakyReLU"}  # the example plugin, if installed
    assert not missing, f"add these layers to CASES: {sorted(missing)}"


def _built(name: str):
    make, shape = CASES[name]
    np.random.seed(0)
    layer = make()
    if getattr(layer, "trainable", False):
        layer.optimizer = Adam(1e-3)
    return layer, np.random.standard_normal(shape)


def _step(layer, x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    np.random.seed(seed)  # Dropout draws its mask from the global generator
    output = layer.forward(x)
    error = np.random.default_rng(seed).standard_normal(output.shape)
    return output, layer.backward(error)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("duplicate", [lambda layer: pickle.loads(pickle.dumps(layer)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_copy_drops_the_batch_and_then_behaves_like_the_original(name, duplicate):
    layer, x = _built(name)
    output, _ = _step(layer, x, seed=1)
    twin = duplicate(layer)
    assert type(layer).transient, f"{name} declares no transient attributes"
    for attribute in type(layer).transient:
        assert getattr(twin, attribute) is None, f"{name}.{attribute} survived the copy"
    with pytest.raises(ShapeError, match="backward called before forward"):
        twin.backward(np.ones_like(output))
    expected, got = _step(layer, x, seed=2), _step(twin, x, seed=2)
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have, want)
    for parameter in getattr(layer, "parameter_names", ()):
        np.testing.assert_array_equal(getattr(twin, parameter), getattr(layer, parameter))


@pytest.mark.parametrize("name", sorted(CASES))
def test_pickle_size_does_not_grow_with_the_batch(name):
    layer, x = _built(name)
    _step(layer, x, seed=1)
    small = len(pickle.dumps(layer))
    _step(layer, np.concatenate([x] * 8), seed=1)  # eight times the batch
    assert len(pickle.dumps(layer)) - small < 512, "a batch-sized array is pickled with the layer"


def test_original_keeps_its_caches_after_being_pickled():
    layer, x = _built("FullyConnected")
    output = layer.forward(x)
    pickle.dumps(layer)
    assert layer.backward(np.ones_like(output)).shape == x.shape
