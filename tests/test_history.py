"""Per-epoch reports of `corenet train`, History files, NeuralNetwork.fit/summary, the Ctrl-C message."""

from __future__ import annotations

import csv
import json
import re
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from corenet.cli import app
from corenet.config import load_config
from corenet.data.iris import IrisData
from corenet.history import EpochRecord, History, history_paths
from corenet.initializers import Constant, He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.fully_connected import FullyConnected
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork, Step, load
from corenet.optimizers import Adam

runner = CliRunner()
EPOCH_LINE = re.compile(r"^epoch +(\d+)/(\d+)  loss (\S+) \(data (\S+) \+ reg (\S+)\)  train acc (\S+)%  "
                        r"test acc (\S+)%  test loss (\S+)  \S+ m?s$", re.M)


def corenet(*args):
    return runner.invoke(app, [str(a) for a in args])


def iris_net(seed: int = 0, batch_size: int = 16) -> NeuralNetwork:
    np.random.seed(seed)
    net = NeuralNetwork(Adam(1e-2), He(), Constant(0.1))
    net.loss_layer = CrossEntropyLoss()
    net.data_layer = IrisData(batch_size)
    for layer in (FullyConnected(4, 8), ReLU(), FullyConnected(8, 3), SoftMax()):
        net.append_layer(layer)
    return net


# -- corenet train ------------------------------------------------------------------------------------------
def test_train_prints_summary_one_line_per_epoch_and_the_final_line(tmp_path):
    path = tmp_path / "iris.ckpt"
    result = corenet("train", "iris", "-n", 21, "-o", path)  # iris: 99 training samples, batch 16 -> 7 per epoch
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "FullyConnected" in out and "total: 131 parameters in 2 trainable layers" in out
    lines = EPOCH_LINE.findall(out)
    assert [(int(e), int(n)) for e, n, *_ in lines] == [(1, 3), (2, 3), (3, 3)]
    for _, _, loss, data, reg, *_ in lines:
        assert float(loss) == pytest.approx(float(data) + float(reg), abs=2e-4)
    assert "test accuracy:" in out and "on 51 test samples (iris, 21 iterations" in out
    # the bar reads per sample: the mean of the last 50 (here: all 21) batch losses over 16 samples each
    shown = float(re.search(r"loss/sample (\S+)", out).group(1))
    assert shown == pytest.approx(sum(load(path, None).loss) / (21 * 16), abs=6e-5)


def test_quiet_hides_summary_and_epoch_lines(tmp_path):
    result = corenet("train", "iris", "-n", 14, "-q", "-o", tmp_path / "q.ckpt")
    assert result.exit_code == 0, result.output
    assert not EPOCH_LINE.search(result.stdout) and "parameters" not in result.stdout
    assert "loss/sample" not in result.stdout and "test accuracy:" in result.stdout


def test_history_files_beside_the_checkpoint_agree_with_the_network(tmp_path):
    path = tmp_path / "iris.ckpt"
    assert corenet("train", "iris", "-n", 17, "-q", "-o", path).exit_code == 0
    json_path, csv_path = history_paths(path)
    assert json_path.name == "iris.ckpt.history.json" and csv_path.name == "iris.ckpt.history.csv"
    history = History.load(json_path)
    net = load(path, None)
    assert [r.iterations for r in history] == [7, 14, 17] and [r.epoch for r in history] == [1, 2, 3]
    # mean loss per sample = the epoch's batch losses (data + regularization) over its samples
    for record, start in zip(history, (0, 7, 14)):
        batches = net.loss[start:record.iterations]
        assert record.loss == pytest.approx(sum(batches) / (16 * len(batches)), rel=1e-12)
        assert record.regularization_loss == 0.0 and record.data_loss == record.loss
        assert 0.0 <= record.train_accuracy <= 1.0 and record.seconds >= 0
    final = corenet("evaluate", path, "--json")
    assert history[-1].test_accuracy == pytest.approx(json.loads(final.stdout)["accuracy"])
    with open(csv_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["epoch", "iterations", "loss", "data_loss", "regularization_loss", "train_accuracy",
                             "test_accuracy", "seconds", "test_loss"]
    assert [float(row["loss"]) for row in rows] == [r.loss for r in history]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_regularization_part_is_reported_separately(tmp_path):
    pytest.importorskip("corenet_reg_l1l2")
    config = tmp_path / "l2.yaml"
    config.write_text(textwrap.dedent("""
        data: iris
        network:
          optimizer: {name: Adam, args: {learning_rate: 1.0e-2}, regularizer: {name: L2_Regularizer,
                      args: {alpha: 0.05}}}
          layers: [{name: FullyConnected, args: {input_size: 4, output_size: 3}}, SoftMax]
        training: {iterations: 7, batch_size: 16}
    """))
    from corenet.training import train

    run = train(load_config(config))
    (record,) = run.history
    expected = sum(run.network.loss) / (7 * 16)  # what net.loss records, per sample
    assert record.regularization_loss > 0.001 and record.loss == pytest.approx(expected, rel=1e-12)
    assert record.loss == pytest.approx(record.data_loss + record.regularization_loss, rel=1e-12)


def test_plot_draws_loss_and_accuracy_for_train_and_test(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import corenet.plotting as plotting

    drawn = {}
    real_save = plotting.save_figure

    def capture(figure, filename):
        drawn["axes"] = {axes.get_title(): [line.get_label() for line in axes.get_lines()] for axes in figure.axes}
        real_save(figure, filename)

    monkeypatch.setattr(plotting, "save_figure", capture)
    plot = tmp_path / "curves.png"
    result = corenet("train", "iris", "-n", 21, "-q", "--no-checkpoint", "--plot", plot)
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["axes"] == {"iris: loss": ["train, per batch", "train (epoch mean)", "test (data loss)"],
                             "iris: accuracy": ["train", "test"]}


# -- NeuralNetwork.fit ---------------------------------------------------------------------------------------
def test_fit_returns_a_history_and_keeps_the_course_api():
    net = iris_net()
    history = net.fit(3)
    assert isinstance(history, History) and len(history) == 3
    assert [r.iterations for r in history] == [7, 14, 21] and len(net.loss) == 21
    assert history.history["epoch"] == [1, 2, 3]
    assert history[-1].test_accuracy is not None and history[-1].test_loss is not None
    assert history[-1].loss < history[0].loss
    net.train(5)  # the course API is unchanged: it still appends one loss per iteration
    assert len(net.loss) == 26
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        net.fit(0)


def test_fit_with_the_same_seed_trains_exactly_like_train():
    fitted = iris_net(3)
    fitted.fit(2)
    trained = iris_net(3)  # the same seed: the same weights and batches
    trained.train(14)
    assert fitted.loss == trained.loss
    np.testing.assert_array_equal(fitted.layers[0].weights, trained.layers[0].weights)


def test_step_counts_correct_samples_only_for_one_hot_rows():
    label = np.eye(3)[[0, 1, 2, 2]]
    prediction = np.array([[.8, .1, .1], [.1, .8, .1], [.7, .2, .1], [.1, .1, .8]])
    assert Step(1.0, 0.0, prediction, label).correct == 3
    assert Step(1.0, 0.0, prediction[:, :1], label[:, :1]).correct is None  # one column: no classes
    assert Step(1.0, 0.0, prediction, label).samples == 4


def test_epoch_record_line_and_json_round_trip(tmp_path):
    record = EpochRecord(2, 14, 0.25, 0.2, 0.05, 0.9, None, 1.5)
    assert record.line(10) == "epoch  2/10  loss 0.2500 (data 0.2000 + reg 0.0500)  train acc 90.00%  1.5 s"
    history = History([record])
    paths = history.save(tmp_path / "x.ckpt")
    assert History.load(paths[0]).records == [record]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a corenet training history"):
        History.load(tmp_path / "bad.json")


def test_a_checkpoint_does_not_carry_the_last_batch(tmp_path):
    from corenet.network import save

    net = iris_net()
    net.train(2)
    assert net.last_step is not None
    save(tmp_path / "n.ckpt", net)
    assert load(tmp_path / "n.ckpt", None).last_step is None


# -- summary -------------------------------------------------------------------------------------------------
def test_lenet_summary_counts_parameters_exactly():
    pytest.importorskip("corenet_lenet")
    from corenet_lenet.lenet import build

    net = build()
    state = np.random.get_state()
    text = net.summary((1, 28, 28))
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the probe draws nothing
    # by hand: conv 6*1*5*5+6, conv 16*6*5*5+16, FC (784+1)*120, (120+1)*84, (84+1)*10
    by_hand = [156, 2416, 94200, 10164, 850]
    assert sum(by_hand) == 107786
    assert "total: 107,786 parameters in 5 trainable layers" in text
    rows = [line.split() for line in text.splitlines() if re.match(r"^ *\d+ ", line)]
    assert [row[1] for row in rows] == ["Conv", "ReLU", "Pooling", "Conv", "ReLU", "Pooling", "Flatten",
                                        "FullyConnected", "ReLU", "FullyConnected", "ReLU", "FullyConnected",
                                        "SoftMax"]
    counts = [int(re.search(r"\) +([\d,]+)", line).group(1).replace(",", ""))
              for line in text.splitlines() if re.match(r"^ *\d+ ", line)]
    assert [c for c in counts if c] == by_hand
    assert "(b, 6, 28, 28)" in text and "(b, 16, 7, 7)" in text and "(b, 784)" in text and "(b, 10)" in text
    assert "phase: train" in text and "weights 6x1x5x5, bias 6" in text


def test_summary_uses_the_data_layer_and_reports_a_mismatch_in_its_row():
    net = iris_net()
    assert "input (b, 4) from IrisData" in net.summary() and "(b, 8)" in net.summary()
    text = net.summary((5,))
    assert "error: " in text and "expects 4 input features" in text  # the first layer refuses 5 features
    net.phase = "test"
    assert "phase: test" in net.summary()


# -- Ctrl-C names the iteration in the file -----------------------------------------------------------------
def test_ctrl_c_right_after_a_save_names_the_iteration_the_file_holds(tmp_path, monkeypatch):
    """A Ctrl-C landing between a save's rename and its bookkeeping: the message still names the file's iteration."""
    import corenet.network as network_module

    real_save = network_module.save
    saves = []

    def save_then_interrupt(filename, net, **options):
        real_save(filename, net, **options)
        saves.append(len(net.loss))
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(network_module, "save", save_then_interrupt)
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent(f"""
        data: iris
        network:
          optimizer: {{name: Adam, args: {{learning_rate: 1.0e-2}}}}
          layers: [{{name: FullyConnected, args: {{input_size: 4, output_size: 3}}}}, SoftMax]
        training: {{iterations: 50, batch_size: 8, checkpoint: {tmp_path / 'run.ckpt'}, checkpoint_every: 5}}
    """))
    result = corenet("train", config, "-q")
    assert result.exit_code == 130 and saves == [5, 10]
    assert "saved after iteration 10" in result.stderr
    assert len(load(tmp_path / "run.ckpt", None).loss) == 10
