"""`corenet inspect`: per-layer probes checked against a hand-run step, the table's columns, and the
per-time-step gradient (numerically, and RNN vs LSTM on delayed recall)."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from corenet.cli import app
from corenet.data.iris import IrisData
from corenet.initializers import Constant, He
from corenet.inspection import TABLE_COLUMNS, LayerProbe, saturated, time_step_gradients
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Sgd

runner = CliRunner()


def corenet(*args):
    return runner.invoke(app, [str(a) for a in args])


def small_net() -> NeuralNetwork:
    np.random.seed(1)
    net = NeuralNetwork(Sgd(0.05), He(), Constant(0.1))
    net.loss_layer = CrossEntropyLoss()
    net.data_layer = IrisData(16)
    for layer in (FullyConnected(4, 8), ReLU(), FullyConnected(8, 3), SoftMax()):
        net.append_layer(layer)
    net.layers[0].weights[-1, :2] = -100.0  # bias row: units 0 and 1 of the ReLU can never fire
    return net


def test_layer_probe_matches_one_step_computed_by_hand():
    net = small_net()
    before = copy.deepcopy(net.layers)
    untrained = {index: before[index].weights.copy() for index in (0, 2)}
    with LayerProbe(net) as probe:
        net.train(1)
        (rows,) = [probe.close_epoch(1)]
    batch, label = net._input_tensor, net._label_tensor
    # the same step by hand on copies of the untrained layers
    outputs, tensor = [], batch
    for layer in before:
        tensor = layer.forward(tensor)
        outputs.append(tensor)
    loss = CrossEntropyLoss()
    loss.forward(outputs[-1], label)
    error, input_errors = loss.backward(label), {}
    for index in range(len(before) - 1, 0, -1):
        error = before[index].backward(error)
        input_errors[index] = np.linalg.norm(error)
    for index, row in enumerate(rows):
        assert row.output_mean == pytest.approx(outputs[index].mean(), rel=1e-10)
        assert row.output_std == pytest.approx(outputs[index].std(), rel=1e-10)
    assert rows[0].input_gradient_norm is None  # the network's first layer does not compute it
    for index in (1, 2, 3):
        assert rows[index].input_gradient_norm == pytest.approx(input_errors[index], rel=1e-10)
    dead = 1.0 - (outputs[1] > 0).any(axis=0).mean()
    assert rows[1].dead_fraction == pytest.approx(dead) and dead >= 2 / 8
    assert rows[0].dead_fraction is None and rows[2].saturated_fraction is None
    for index in (0, 2):
        old, new = untrained[index], net.layers[index].weights
        assert rows[index].gradient_norms["weights"] == pytest.approx(
            np.linalg.norm(net.layers[index].gradient_weights), rel=1e-10)
        assert rows[index].update_ratios["weights"] == pytest.approx(
            np.linalg.norm(new - old) / np.linalg.norm(old), rel=1e-10)


def test_probe_counts_training_batches_only_and_leaves_the_layers_as_they_were():
    net = small_net()
    probe = LayerProbe(net).attach()
    net.train(2)
    net.test(np.ones((5, 4)))  # testing phase: not counted
    rows = probe.close_epoch(1)
    probe.detach()
    assert all("forward" not in layer.__dict__ and "backward" not in layer.__dict__ for layer in net.layers)
    pickle.dumps(net)  # nothing of the probe is left to pickle
    assert rows[1].output_std > 0
    again = probe.close_epoch(2)  # nothing since the last epoch: empty meters
    assert again[1].input_gradient_norm is None and again[0].gradient_norms == {}


def test_saturation_thresholds():
    assert saturated("TanH", np.array([0.995, -0.999, 0.99, 0.5, 0.0])) == 2  # |y| > 0.99
    assert saturated("Sigmoid", np.array([0.005, 0.01, 0.5, 0.99, 0.995, 0.0101])) == 4  # outside (0.01, 0.99)


def test_tanh_saturation_is_reported_per_layer():
    pytest.importorskip("corenet_recurrent")
    from corenet_recurrent.activations import TanH

    np.random.seed(0)
    net = NeuralNetwork(Sgd(1e-9), Constant(3.0), Constant(0.0))  # large weights: many TanH outputs saturate
    net.loss_layer = CrossEntropyLoss()
    net.data_layer = IrisData(16)
    for layer in (FullyConnected(4, 3), TanH(), FullyConnected(3, 3), SoftMax()):
        net.append_layer(layer)
    first = copy.deepcopy(net.layers[0])
    with LayerProbe(net) as probe:
        net.train(1)
        rows = probe.close_epoch(1)
    expected = np.mean(np.abs(np.tanh(first.forward(net._input_tensor))) > 0.99)
    assert rows[1].saturated_fraction == pytest.approx(expected) and 0.3 < expected < 1
    assert rows[1].dead_fraction is None


def test_inspect_table_has_the_promised_columns():
    result = corenet("inspect", "iris", "-n", 14)
    assert result.exit_code == 0, result.output
    for column in ("epoch", "layer", "output mean", "output std", "dead / saturated", "‖dL/d input‖",
                   "‖dL/d parameter‖", "update / weight"):
        assert column in TABLE_COLUMNS and column in result.stdout
    assert "% dead" in result.stdout and "weights " in result.stdout


def test_inspect_json_has_a_record_per_layer_and_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "layers.png"
    result = corenet("inspect", "iris", "-n", 14, "--json", "--plot", plot)
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["epoch"], r["index"]) for r in records] == [(e, i) for e in (1, 2) for i in range(4)]
    assert set(records[2]) >= {"output_mean", "output_std", "dead_fraction", "saturated_fraction",
                               "input_gradient_norm", "gradient_norms", "update_ratios"}
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.ckpt"))  # inspect saves no checkpoint


# -- time steps ---------------------------------------------------------------------------------------------
def test_time_step_gradients_match_central_differences():
    pytest.importorskip("corenet_recurrent")
    from corenet_recurrent.rnn import RNN

    np.random.seed(2)
    layer = RNN(2, 5, 1)
    weights = layer.weights.copy()
    sequence = np.random.randn(7, 2)
    warmup = np.random.randn(3, 2)
    norms = time_step_gradients(layer, sequence, warmup=warmup)
    np.testing.assert_array_equal(layer.weights, weights)  # the probe works on a copy

    def last_output(x):
        probe = copy.deepcopy(layer)
        probe.reset_state()
        probe.memorize = True
        probe.forward(warmup)
        return probe.forward(x)[-1, 0]

    eps = 1e-6
    expected = []
    for t in range(7):
        gradient = []
        for feature in range(2):
            up, down = sequence.copy(), sequence.copy()
            up[t, feature] += eps
            down[t, feature] -= eps
            gradient.append((last_output(up) - last_output(down)) / (2 * eps))
        expected.append(np.linalg.norm(gradient))
    np.testing.assert_allclose(norms, expected, rtol=1e-6, atol=1e-12)


@pytest.fixture(scope="module")
def recall_report():
    pytest.importorskip("corenet_recurrent")
    result = corenet("inspect", "recall", "--epochs", 20, "--seed", 0, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_recall_rnn_gradient_vanishes_over_time_steps_and_the_lstms_does_not(recall_report):
    rnn, lstm = recall_report["rnn"], recall_report["lstm"]
    assert rnn["epochs"] == lstm["epochs"] == list(range(21))  # 0: untrained
    rnn_ratio, lstm_ratio = rnn["early_late_ratio"][-1], lstm["early_late_ratio"][-1]
    # the earliest fifth of the 50-step window gets this share of the latest fifth's gradient
    assert rnn_ratio < 1e-5
    assert lstm_ratio > 1e-3
    assert lstm_ratio / rnn_ratio > 1e3
    rnn_norms = np.array(rnn["norms"][-1])
    assert rnn_norms[40:].mean() < 1e-6 * rnn_norms[:10].max()  # orders of magnitude from late to early steps
    assert rnn["accuracy"] > 0.9 and lstm["accuracy"] > 0.9


def test_recall_table_and_picture(tmp_path):
    pytest.importorskip("corenet_recurrent")
    pytest.importorskip("matplotlib")
    plot = tmp_path / "recall.png"
    result = corenet("inspect", "recall", "--epochs", 2, "--window", 30, "--streams", 3, "--plot", plot)
    assert result.exit_code == 0, result.output
    assert "steps back j" in result.stdout and "RNN" in result.stdout and "LSTM" in result.stdout
    assert "│ 29 " in result.stdout  # the window's last step is a row
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_recall_probe_does_not_change_the_training_run():
    pytest.importorskip("corenet_recurrent")
    from corenet_recurrent.gradient_flow import recall_gradient_flow
    from corenet_recurrent.recall import RecallConfig, train_recall

    config = RecallConfig(cell="rnn", epochs=2, steps_per_epoch=500, seed=4)
    assert recall_gradient_flow(config, streams=2).losses == train_recall(config).losses


def test_inspect_recall_without_the_recurrent_plugin_says_how_to_get_it(monkeypatch):
    from corenet import plugins

    monkeypatch.setenv("CORENET_LOAD_PLUGINS", "")  # the core alone: no plugin registers "recall"
    plugins.reset()
    try:
        result = corenet("inspect", "recall")
    finally:
        monkeypatch.delenv("CORENET_LOAD_PLUGINS")
        plugins.reset()
    assert result.exit_code == 2
    assert "inspect recall needs the delayed-recall task of the recurrent plugin" in result.stderr
    assert "corenet-recurrent" in result.stderr


def test_inspect_refuses_training_options_for_recall_and_unknown_configs():
    assert corenet("inspect", "recall", "-n", 5).exit_code == 2
    result = corenet("inspect", "no-such-config")
    assert result.exit_code == 2 and "no config file or named config 'no-such-config'" in result.stderr
