"""corenet.layers and corenet.data re-export their classes (lazily), matching what the core registers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import corenet.data
import corenet.layers
from corenet.plugins import get_registry


def _core_names(kind: str) -> dict[str, type]:
    registry = get_registry()
    return {name: registry.implementation(kind, name, "reference")
            for (found, name), impls in registry.implementations.items()
            if found == kind and any(impl.distribution == "corenet" for impl in impls)}


def test_corenet_layers_exports_every_core_layer():
    core = _core_names("layers")
    assert sorted(corenet.layers.__all__) == sorted(core) == sorted(
        ["Conv", "Flatten", "FullyConnected", "Pooling", "ReLU", "SoftMax"])
    for name, cls in core.items():
        assert getattr(corenet.layers, name) is cls
    assert set(corenet.layers.__all__) <= set(dir(corenet.layers))
    with pytest.raises(AttributeError, match="corenet.layers' has no attribute 'Dropout'"):
        corenet.layers.Dropout  # noqa: B018 (plugin layers live in their plugins)


def test_corenet_data_exports_every_core_data_set():
    core = _core_names("datasets")
    assert sorted(cls.__name__ for cls in core.values()) == sorted(corenet.data.__all__)
    for cls in core.values():
        assert getattr(corenet.data, cls.__name__) is cls


def test_importing_the_packages_loads_no_layer_module():
    code = ("import sys, corenet.layers, corenet.data; "
            "print(sorted(m for m in sys.modules if m.startswith(('corenet.layers.', 'corenet.data.'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_first_network_from_package_imports():
    from corenet import NeuralNetwork
    from corenet.initializers import Constant, He
    from corenet.layers import FullyConnected, ReLU, SoftMax
    from corenet.losses import CrossEntropyLoss
    from corenet.optimizers import Adam

    np.random.seed(0)
    net = NeuralNetwork(Adam(1e-2), He(), Constant(0.0))
    net.data_layer, net.loss_layer = corenet.data.IrisData(16), CrossEntropyLoss()
    for layer in (FullyConnected(4, 16), ReLU(), FullyConnected(16, 3), SoftMax()):
        net.append_layer(layer)
    net.train(150)
    inputs, labels = net.data_layer.get_test_set()
    assert np.mean(net.test(inputs).argmax(1) == labels.argmax(1)) >= 0.9
