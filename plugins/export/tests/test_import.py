"""import-weights: corenet -> PyTorch state dict -> corenet is bit for bit the same network, a plain
nn.Sequential's (or a custom module's) weights land where they belong, and mismatches are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from corenet_export import ExportError, assign_state, export_torch, network_from_config, read_state_dict
from corenet_export.verify import corenet_outputs

import corenet

torch = pytest.importorskip("torch")

PARAMETERS = ("weights", "bias", "output_weights", "moving_mean", "moving_variance")

RECURRENT_CONFIG = """
description: one recurrent layer, for import-weights
data: {{name: random, args: {{input_size: 1, categories: 1}}}}
network:
  optimizer: {{name: Adam, args: {{learning_rate: 1.0e-2, mu: 0.9, rho: 0.999}}}}
  weights_initializer: Xavier
  bias_initializer: {{name: Constant, args: {{value: 0.0}}}}
  loss: CrossEntropyLoss
  layers:
    - {{name: {cell}, args: {{input_size: 1, hidden_size: 16, output_size: 1}}}}
training: {{iterations: 1}}
"""


def parameters(network) -> list[tuple[int, str, np.ndarray]]:
    return [(index, name, np.asarray(getattr(layer, name))) for index, layer in enumerate(network.layers)
            for name in PARAMETERS if getattr(layer, name, None) is not None]


def assert_bit_identical(imported, original) -> None:
    found, wanted = parameters(imported), parameters(original)
    assert [(i, n) for i, n, _ in found] == [(i, n) for i, n, _ in wanted]
    for (index, name, got), (_, _, want) in zip(found, wanted):
        assert got.dtype == want.dtype, (index, name)
        assert got.shape == want.shape, (index, name)
        assert got.tobytes() == want.tobytes(), f"layer {index} {name} differs"


def round_trip(network, config: str, tmp_path: Path, data: Path | None = None):
    """Export ``network`` to a state dict file, build ``config`` afresh and import the file into it."""
    weights = export_torch(network, tmp_path / "model.pt").weights
    fresh = network_from_config(config, data)
    assert any(not np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(parameters(fresh), parameters(network)))
    assign_state(fresh, read_state_dict(weights), str(weights))
    return fresh


@pytest.mark.parametrize(("config", "case_name"), [("digits-regularized", "digits"), ("iris", "iris")])
def test_round_trip_of_trained_networks_is_bit_identical(config, case_name, request, tmp_path: Path):
    case = request.getfixturevalue(f"{case_name}_case")
    assert_bit_identical(round_trip(case.network, config, tmp_path), case.network)


def test_round_trip_of_lenet_is_bit_identical(tmp_path: Path):
    from corenet_lenet.lenet import build

    np.random.seed(1)  # other weights than the config's seed 0 draws
    original = build()
    # the MNIST folder is only recorded for `corenet evaluate`; building the network does not read it
    assert_bit_identical(round_trip(original, "lenet-mnist", tmp_path, data=tmp_path), original)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_round_trip_of_recall_cells_is_bit_identical(cell, request, tmp_path: Path):
    case = request.getfixturevalue(f"{cell}_case")
    config = tmp_path / f"{cell}.yaml"
    config.write_text(RECURRENT_CONFIG.format(cell=cell.upper()))
    imported = round_trip(case.network, str(config), tmp_path)
    assert_bit_identical(imported, case.network)
    # the weights are bit-identical; the outputs agree to rounding, since the config may select another
    # implementation of the name (corenet-fast's) than the one recall trained with
    np.testing.assert_allclose(corenet_outputs(imported, case.inputs[:1])[0], case.corenet_outputs()[0],
                               rtol=1e-12, atol=1e-15)


def digits_sequential():
    """The digits config's network as a plain PyTorch nn.Sequential (float64, corenet's epsilon)."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16, eps=1e-11), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)).double()
    with torch.no_grad():  # moving statistics as after training
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].weight.uniform_(0.5, 1.5)
    return model.eval()


def test_an_nn_sequential_maps_onto_the_config_by_position(tmp_path: Path):
    from corenet.data.digits import DigitData

    model = digits_sequential()
    path = tmp_path / "sequential.pt"
    torch.save(model.state_dict(), path)
    network = network_from_config("digits-regularized")
    assignments = assign_state(network, read_state_dict(path), str(path))
    assert [(a.source_prefix, a.layer_index) for a in assignments] == [("0", 0), ("1", 1), ("6", 6), ("8", 8)]
    x = DigitData(64).get_test_set()[0]
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    actual = network.test(x)
    np.testing.assert_allclose(actual, expected, rtol=1e-10)
    np.testing.assert_array_equal(actual.argmax(1), expected.argmax(1))


def test_pytorch_rnn_biases_add_up_into_corenets_one(tmp_path: Path):
    """A PyTorch-trained nn.RNN has two biases; corenet's RNN computes the same with their sum."""
    from torch import nn

    class Recall(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.RNN(1, 16, dtype=torch.float64)
            self.readout = nn.Linear(16, 1, dtype=torch.float64)

        def forward(self, x):
            return torch.sigmoid(self.readout(self.rnn(x)[0]))

    torch.manual_seed(3)
    model = Recall()
    path = tmp_path / "recall.pt"
    torch.save(model.state_dict(), path)
    config = tmp_path / "rnn.yaml"
    config.write_text(RECURRENT_CONFIG.format(cell="RNN"))
    network = network_from_config(str(config))
    assignments = assign_state(network, read_state_dict(path), str(path))
    assert [(a.source_prefix, a.attribute) for a in assignments] == [("rnn", "layer0"), ("readout", "layer0_output")]
    x = np.random.default_rng(0).choice([-1.0, 1.0], size=(200, 1))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(network.test(x), expected, rtol=1e-12)


def test_a_wrong_shape_names_the_layer_and_changes_nothing(tmp_path: Path):
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).double()  # iris has 3 classes
    path = tmp_path / "two-classes.pt"
    torch.save(model.state_dict(), path)
    network = network_from_config("iris")
    before = [array.copy() for _, _, array in parameters(network)]
    with pytest.raises(ExportError, match=r"two-classes.pt: 2.weight has shape \(2, 16\), but layer 2 "
                                          r"\(FullyConnected\(16, 3\), PyTorch nn.Linear\) needs \(3, 16\)"):
        assign_state(network, read_state_dict(path), str(path))
    assert all(np.array_equal(a, b) for a, (_, _, b) in zip(before, parameters(network)))


def test_a_different_number_of_groups_is_refused(tmp_path: Path):
    from torch import nn

    path = tmp_path / "deeper.pt"
    torch.save(nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 16), nn.Linear(16, 3)).state_dict(), path)
    with pytest.raises(ExportError, match=r"deeper.pt has 3 parameter groups \(0, 1, 2\), but the network has 2 "
                                          r"weighted parts"):
        assign_state(network_from_config("iris"), read_state_dict(path), str(path))


def test_a_pickled_module_is_not_a_state_dict(tmp_path: Path):
    from torch import nn

    path = tmp_path / "module.pt"
    torch.save(nn.Linear(4, 3), path)  # the whole module: loading it means trusting pickled code
    with pytest.raises(ExportError, match=r"module.pt is not a PyTorch state dict that loads with "
                                          r"weights_only=True \(it pickles a torch.nn.modules.linear.Linear "
                                          r"object, not only tensors\); save one with "
                                          r"torch.save\(model.state_dict\(\), PATH\)$"):
        read_state_dict(path)


def test_training_checkpoints_holding_a_state_dict_are_read(tmp_path: Path):
    from torch import nn

    model = nn.Linear(4, 3)
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, path)
    state = read_state_dict(path)
    assert sorted(state) == ["bias", "weight"]
    np.testing.assert_array_equal(state["weight"], model.weight.detach().numpy())


def test_imported_network_saves_and_loads(tmp_path: Path, digits_case):
    imported = round_trip(digits_case.network, "digits-regularized", tmp_path)
    corenet.save(tmp_path / "back.ckpt", imported)
    assert_bit_identical(corenet.load(tmp_path / "back.ckpt", None), digits_case.network)
