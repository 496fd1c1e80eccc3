"""Trained networks to export (each trained once per session) and the ways to run an exported one.

The networks: LeNet briefly trained on the real MNIST test files (``../shared/data/mnist`` beside
the repository, or the folder in CORENET_TEST_MNIST), the default digits config (Conv + BatchNormalization +
Dropout), the iris MLP, and an RNN and an LSTM trained as ``corenet recall`` trains them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from corenet_export.verify import corenet_outputs

from corenet.config import load_config
from corenet.training import prepare

REPO = Path(__file__).resolve().parents[3]
MNIST = Path(os.environ.get("CORENET_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")


@dataclass
class Case:
    """A trained network, its test inputs and how a prediction becomes a class."""

    name: str
    network: object  # a NeuralNetwork
    inputs: list[np.ndarray]  # one array per forward call (recurrent: one sequence each)

    expected: list[np.ndarray] | None = None

    def corenet_outputs(self) -> list[np.ndarray]:
        """corenet's testing-phase outputs, each sequence from a zero state (computed once)."""
        if self.expected is None:
            self.expected = corenet_outputs(self.network, self.inputs)
        return self.expected


def _trained(config: str, iterations: int, **overrides) -> tuple[object, object]:
    settings = load_config(config, {"training.iterations": iterations, **overrides})
    network, data = prepare(settings)
    network.train(iterations)
    return network, data


@pytest.fixture(scope="session")
def digits_case() -> Case:
    network, data = _trained("digits-regularized", 150)
    return Case("digits", network, [data.get_test_set()[0]])


@pytest.fixture(scope="session")
def iris_case() -> Case:
    network, data = _trained("iris", 200)
    return Case("iris", network, [data.get_test_set()[0]])


@pytest.fixture(scope="session")
def lenet_case() -> Case:
    if not (MNIST / "t10k-images-idx3-ubyte.gz").exists() and not (MNIST / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"the MNIST test files are not in {MNIST} (set CORENET_TEST_MNIST)")
    network, data = _trained("lenet-mnist", 150, **{"data.args.path": str(MNIST), "training.epochs": None})
    return Case("lenet", network, [data.get_test_set()[0]])


def recurrent_case(cell: str) -> Case:
    """An RNN or LSTM trained on delayed recall (k = 3) as `corenet recall` trains it, in a network of its own;
    its test set: the held-out streams `corenet recall` draws after training."""
    from corenet_recurrent.recall import RecallConfig, bit_stream, encode, train_recall

    from corenet.network import NeuralNetwork

    config = RecallConfig(cell=cell, delay=3, epochs=2, hidden_size=16, seed=0)
    result = train_recall(config)
    network = NeuralNetwork(None, None, None)
    network.layers.append(result.layer)  # trained as is: append_layer would re-initialize it
    streams = [encode(bit_stream(config.test_length)) for _ in range(config.test_streams)]
    return Case(cell, network, streams)


@pytest.fixture(scope="session")
def rnn_case() -> Case:
    return recurrent_case("rnn")


@pytest.fixture(scope="session")
def lstm_case() -> Case:
    return recurrent_case("lstm")


CASES = ["lenet", "digits", "iris", "rnn", "lstm"]


@pytest.fixture(params=CASES)
def case(request) -> Case:
    return request.getfixturevalue(f"{request.param}_case")


@pytest.fixture
def without(monkeypatch):
    """``without("torch")``: make ``import torch`` fail as if the package were not installed."""

    def hide(*modules: str) -> None:
        for module in modules:
            monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError

    return hide
