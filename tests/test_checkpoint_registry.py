"""Every registered layer, optimizer, regularizer, initializer and loss survives save/load bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from checkpoint_support import SAMPLES, sample_network

from corenet.checkpoint import network_record
from corenet.data.synthetic import RandomData
from corenet.network import load, save
from corenet.plugins import get_registry

REGISTRY = get_registry()


def parameters(net) -> list[tuple[str, np.ndarray]]:
    """Every array a network's layers and their optimizer copies hold (what the next update depends on)."""
    found = []
    record = network_record(net, "net")

    def walk(value, path):
        if isinstance(value, dict) and value.get("$type") == "ndarray":
            found.append((path, np.frombuffer(value["data"], dtype=value["dtype"])))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(record["layers"], "layers")
    return found


def assert_same_network_and_next_update(net, loaded, input_shape):
    probe = np.random.RandomState(7).random_sample(input_shape)
    np.testing.assert_array_equal(loaded.test(probe), net.test(probe))
    assert loaded.loss == net.loss
    before = parameters(net)
    assert [path for path, _ in parameters(loaded)] == [path for path, _ in before]
    for one in (net, loaded):  # one more training step each, same batches and dropout masks
        np.random.seed(99)
        one.data_layer = RandomData(input_shape[1:], input_shape[0], 3)
        one.train(1)
    assert loaded.loss == net.loss
    for (path, old), (_, new) in zip(parameters(net), parameters(loaded)):
        np.testing.assert_array_equal(new, old, err_msg=path)
    assert any(not np.array_equal(old, new) for (_, old), (_, new) in zip(before, parameters(net)))
    np.testing.assert_array_equal(loaded.test(probe), net.test(probe))


def names(kind: str) -> list[str]:
    return sorted(getattr(REGISTRY, kind))


def sample_or_skip(kind: str, name: str):
    if name not in SAMPLES[kind]:
        pytest.skip(f"no sample arguments for the {kind[:-1]} {name} (a plugin from outside this repository)")


@pytest.mark.parametrize("optimizer", names("optimizers"))
@pytest.mark.parametrize("layer", names("layers"))
def test_every_layer_with_every_optimizer_round_trips(tmp_path, layer, optimizer):
    sample_or_skip("layers", layer)
    sample_or_skip("optimizers", optimizer)
    net, input_shape = sample_network(layer, optimizer, steps=2)
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    assert [type(item) for item in loaded.layers] == [type(item) for item in net.layers]
    assert_same_network_and_next_update(net, loaded, input_shape)


@pytest.mark.parametrize("regularizer", names("regularizers"))
def test_every_regularizer_round_trips(tmp_path, regularizer):
    sample_or_skip("regularizers", regularizer)
    net, input_shape = sample_network("Conv", "SgdWithMomentum", regularizer)
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    copy = loaded.layers[0].parameter_optimizer("weights").regularizer
    assert type(copy) is REGISTRY.regularizers[regularizer] and copy.alpha == net.optimizer.regularizer.alpha
    assert_same_network_and_next_update(net, loaded, input_shape)


@pytest.mark.parametrize("initializer", names("initializers"))
def test_every_initializer_round_trips(tmp_path, initializer):
    sample_or_skip("initializers", initializer)
    net, _ = sample_network(initializers=(initializer, initializer))
    save(tmp_path / "net.ckpt", net)
    loaded = load(tmp_path / "net.ckpt", None)
    for name in ("weights_initializer", "bias_initializer"):
        restored, original = getattr(loaded, name), getattr(net, name)
        assert type(restored) is type(original) and vars(restored) == vars(original)


@pytest.mark.parametrize("loss", names("losses"))
def test_every_loss_round_trips(tmp_path, loss):
    sample_or_skip("losses", loss)
    net, _ = sample_network()
    net.loss_layer = REGISTRY.losses[loss]()
    save(tmp_path / "net.ckpt", net)
    assert type(load(tmp_path / "net.ckpt", None).loss_layer) is REGISTRY.losses[loss]


def test_the_samples_cover_every_reference_registration():
    """A component added to corenet or its bundled plugins needs sample arguments here."""
    for kind, samples in SAMPLES.items():
        for name in names(kind):
            labels = {implementation.label for implementation in REGISTRY.implementations_of(kind, name)}
            if "reference" in labels:
                assert name in samples, f"add sample arguments for the {kind[:-1]} {name}"


def several_implementations() -> list[str]:
    return [name for name in names("layers") if len(REGISTRY.implementations_of("layers", name)) > 1]


@pytest.mark.parametrize("name", several_implementations() or ["(none)"])
def test_a_network_saved_with_one_implementation_loads_with_another(tmp_path, name):
    if name == "(none)":
        pytest.skip("no layer has several implementations installed (tests/test_checkpoint.py fakes one)")
    sample_or_skip("layers", name)
    labels = [implementation.label for implementation in REGISTRY.implementations_of("layers", name)]
    previous = REGISTRY.preference
    try:
        for saved_with in labels:
            REGISTRY.prefer(f"{name}={saved_with}")
            net, input_shape = sample_network(name, "Adam")
            save(tmp_path / "net.ckpt", net)
            for loaded_with in labels:
                REGISTRY.prefer(f"{name}={loaded_with}")
                loaded = load(tmp_path / "net.ckpt", None)
                probe = np.random.RandomState(3).random_sample(input_shape)
                # a copy predicts: test() advances a memorizing layer's carried state
                np.testing.assert_allclose(loaded.test(probe), copy.deepcopy(net).test(probe), rtol=1e-10,
                                           atol=1e-12)
    finally:
        REGISTRY.prefer(previous)

