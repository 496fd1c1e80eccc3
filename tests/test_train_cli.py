"""`corenet train` and `corenet evaluate`: configs, checkpoints, Ctrl-C, seeds, plots, MNIST folders."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from corenet.cli import app
from corenet.config import load_config
from corenet.data.iris import IrisData
from corenet.network import load
from corenet.plugins import get_registry

runner = CliRunner()


def corenet(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def iris_checkpoint(tmp_path):
    path = tmp_path / "iris.ckpt"
    result = corenet("train", "iris", "-n", 150, "-q", "--checkpoint", path)
    assert result.exit_code == 0, result.output
    return path


# -- train ----------------------------------------------------------------------------------------------
def test_train_named_config_saves_checkpoint_and_prints_accuracy(iris_checkpoint, tmp_path):
    net = load(iris_checkpoint, None)
    assert len(net.loss) == 150
    assert net.metadata["data"]["name"] == "iris" and net.metadata["config"] == "iris"
    assert no_temp_files(tmp_path)


def test_train_without_argument_uses_the_default_digits_config(tmp_path):
    result = corenet("train", "-n", 3, "-q", "--no-checkpoint")
    assert result.exit_code == 0, result.output
    assert "test accuracy:" in result.stdout and "on 599 test samples (digits, 3 iterations" in result.stdout
    assert not list(tmp_path.iterdir())


def test_train_list_shows_shipped_configs():
    result = corenet("train", "--list")
    assert result.exit_code == 0
    for name in ("digits", "iris", "lenet-mnist", "digits-regularized"):
        assert name in result.stdout


def test_same_seed_same_run_bit_for_bit(tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        path = tmp_path / f"{name}.ckpt"
        result = corenet("train", "digits-regularized", "-n", 12, "-q", "--seed", seed, "-o", path)  # Dropout masks too
        assert result.exit_code == 0, result.output
        runs[name] = load(path, None)
    assert runs["a"].loss == runs["b"].loss and len(runs["a"].loss) == 12
    for first, second in zip(runs["a"].layers, runs["b"].layers):
        if first.trainable:
            np.testing.assert_array_equal(first.weights, second.weights)
    assert runs["a"].loss != runs["c"].loss


def test_bad_config_exits_2_with_the_key_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""
        data: {name: iris}
        network:
          optimizer: {name: Adam, args: {learning_rate: 1.0e-3}}
          layers: [{name: FullyConected, args: {input_size: 4, output_size: 3}}, SoftMax]
        training: {iterations: 5}
    """))
    result = corenet("train", path, "-q")
    assert result.exit_code == 2
    assert "network.layers[0].name: unknown layer 'FullyConected'" in result.stderr
    assert "did you mean 'FullyConnected'" in result.stderr


def test_config_without_softmax_exits_2_with_the_loss_message(tmp_path):
    path = tmp_path / "nosoftmax.yaml"
    path.write_text(textwrap.dedent("""
        data: {name: iris}
        network:
          optimizer: {name: Sgd, args: {learning_rate: 1.0e-3}}
          layers: [{name: FullyConnected, args: {input_size: 4, output_size: 3}}]
        training: {iterations: 5}
    """))
    result = corenet("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 2, result.output
    assert "nosoftmax.yaml: CrossEntropyLoss: predictions must be probabilities" in result.stderr
    assert "is the SoftMax layer missing" in result.stderr


def test_size_mismatch_between_layers_names_the_layer_key(tmp_path):
    path = tmp_path / "mismatch.yaml"
    path.write_text(textwrap.dedent("""
        data: {name: iris}
        network:
          optimizer: {name: Sgd, args: {learning_rate: 1.0e-3}}
          layers:
            - {name: FullyConnected, args: {input_size: 4, output_size: 8}}
            - ReLU
            - {name: FullyConnected, args: {input_size: 7, output_size: 3}}
            - SoftMax
        training: {iterations: 5, batch_size: 8}
    """))
    result = corenet("train", path, "-q", "--no-checkpoint")
    assert result.exit_code == 2, result.output
    assert ("mismatch.yaml: network.layers[2] (FullyConnected): FullyConnected(7, 3) expects 7 input features "
            "but got 8") in result.stderr


def test_plot_writes_a_png_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    result = corenet("train", "iris", "-n", 20, "-q", "--no-checkpoint", "--plot", plot)
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert no_temp_files(tmp_path)


def test_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = corenet("train", "iris", "-n", 5, "-q", "-o", tmp_path / "x.ckpt", "--plot", tmp_path / "l.png")
    assert result.exit_code == 2
    assert "matplotlib, which is not installed: pip install 'corenet[plot]'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_plot_with_unknown_suffix_fails_before_training(tmp_path):
    pytest.importorskip("matplotlib")
    result = corenet("train", "iris", "-n", 5, "-q", "--plot", tmp_path / "loss.xyz")
    assert result.exit_code == 2 and "unknown image type '.xyz'" in result.stderr


# -- Ctrl-C ---------------------------------------------------------------------------------------------
class InterruptingIris(IrisData):
    """IrisData whose next() raises KeyboardInterrupt (as Ctrl-C would) after ``interrupt_at`` batches."""

    def __init__(self, batch_size: int, interrupt_at: int = 12) -> None:
        super().__init__(batch_size)
        self.interrupt_at = interrupt_at
        self.calls = 0

    def next(self):
        self.calls += 1
        if self.calls > self.interrupt_at:
            raise KeyboardInterrupt
        return super().next()


@pytest.fixture
def interrupting_config(tmp_path, monkeypatch):
    monkeypatch.setitem(get_registry().datasets, "interrupting", InterruptingIris)
    path = tmp_path / "interrupt.yaml"
    path.write_text(textwrap.dedent(f"""
        data: {{name: interrupting, args: {{interrupt_at: 12}}}}
        network:
          optimizer: {{name: Adam, args: {{learning_rate: 1.0e-2}}}}
          layers: [{{name: FullyConnected, args: {{input_size: 4, output_size: 3}}}}, SoftMax]
        training: {{iterations: 50, batch_size: 8, checkpoint: {tmp_path / 'run.ckpt'}, checkpoint_every: 5}}
    """))
    return path


def test_ctrl_c_keeps_the_last_good_checkpoint(interrupting_config, tmp_path):
    result = corenet("train", interrupting_config, "-q")
    assert result.exit_code == 130
    assert "interrupted after 12 of 50 iterations" in result.stderr
    assert "keeps the last good network, saved after iteration 10" in result.stderr
    net = load(tmp_path / "run.ckpt", None)
    assert len(net.loss) == 10
    assert no_temp_files(tmp_path)


def test_ctrl_c_before_the_first_save_leaves_an_old_checkpoint_unchanged(interrupting_config, tmp_path,
                                                                         iris_checkpoint):
    old = (tmp_path / "run.ckpt")
    old.write_bytes(iris_checkpoint.read_bytes())
    original = old.read_bytes()
    text = interrupting_config.read_text().replace("interrupt_at: 12", "interrupt_at: 3")
    interrupting_config.write_text(text)
    result = corenet("train", interrupting_config, "-q")
    assert result.exit_code == 130 and "is unchanged" in result.stderr
    assert old.read_bytes() == original


def test_ctrl_c_from_a_callback_via_the_api(tmp_path):
    from corenet.training import train

    config = load_config("iris", {"training.iterations": 40, "training.checkpoint_every": 3})

    def stop(iteration, loss):
        if iteration == 7:
            raise KeyboardInterrupt

    run = train(config, checkpoint=tmp_path / "api.ckpt", callback=stop)
    assert run.interrupted and run.completed == 8 and run.saved_at == 6 and run.evaluation is None
    assert len(load(tmp_path / "api.ckpt", None).loss) == 6


# -- evaluate -----------------------------------------------------------------------------------------
def test_evaluate_reports_accuracy_and_confusion_matrix(iris_checkpoint):
    result = corenet("evaluate", iris_checkpoint)
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.stdout and "accuracy:" in result.stdout
    report = json.loads(corenet("evaluate", iris_checkpoint, "--data", "iris", "--json").stdout)
    confusion = np.array(report["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == report["count"] == 51
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 51)
    assert report["accuracy"] > 0.8


def test_evaluate_refuses_a_code_running_file_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(Payload(), protocol=4))
    result = corenet("evaluate", evil, "--data", "iris")
    assert result.exit_code == 1
    assert f"{evil}: global not allowed: the file asks for {os.system.__module__}.system" in result.stderr
    assert "nothing from the file was run" in result.stderr
    assert not marker.exists()


def test_evaluate_damaged_and_mismatched_files(tmp_path, iris_checkpoint):
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(iris_checkpoint.read_bytes()[:-40])
    result = corenet("evaluate", cut, "--data", "iris")
    assert result.exit_code == 1 and str(cut) in result.stderr and "truncated" in result.stderr
    result = corenet("evaluate", iris_checkpoint, "--data", "digits")
    assert result.exit_code == 1 and "does not fit the data set digits" in result.stderr
    result = corenet("evaluate", iris_checkpoint, "--data", "cifar")
    assert result.exit_code == 2 and "--data cifar: neither a data set (digits, iris, mnist" in result.stderr
    result = corenet("evaluate", iris_checkpoint, "--data", "mnist")
    assert result.exit_code == 2 and "--data FOLDER" in result.stderr


# -- MNIST from a folder of IDX files ---------------------------------------------------------------
def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def mnist_folder(tmp_path):
    rng = np.random.RandomState(0)
    labels = np.arange(60) % 10
    images = rng.randint(0, 60, (60, 28, 28))
    for index, label in enumerate(labels):  # a learnable bright bar per class
        images[index, 2 * label:2 * label + 3, :] = 255
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder


def test_data_option_points_the_lenet_config_at_an_idx_folder(mnist_folder, tmp_path):
    path = tmp_path / "lenet.ckpt"
    result = corenet("train", "lenet-mnist", "--data", mnist_folder, "-n", 4, "-b", 8, "-q", "-o", path)
    assert result.exit_code == 0, result.output
    assert "on 12 test samples (lenet-mnist, 4 iterations" in result.stdout  # the last 20% of 60
    net = load(path, None)
    assert len(net.loss) == 4 and net.metadata["data"]["args"]["path"] == str(mnist_folder)
    report = json.loads(corenet("evaluate", path, "--json").stdout)  # the data set saved with it
    assert report["data"] == "mnist" and report["count"] == 12
    report = json.loads(corenet("evaluate", path, "--data", mnist_folder, "--json").stdout)
    assert report["count"] == 12


def test_lenet_config_without_data_says_how_to_get_it():
    result = corenet("train", "lenet-mnist", "-q")  # CORENET_DATA: an empty folder (conftest)
    assert result.exit_code == 2 and "no MNIST files in corenet's data folder" in result.stderr
    assert "corenet data fetch mnist" in result.stderr and "--data FOLDER" in result.stderr


def test_data_option_on_a_config_that_reads_no_files(mnist_folder):
    result = corenet("train", "iris", "--data", mnist_folder, "-q")
    assert result.exit_code == 2 and "does not read files" in result.stderr


def test_evaluate_has_no_trust_option(iris_checkpoint):
    result = corenet("evaluate", iris_checkpoint, "--trust")
    assert result.exit_code == 2 and "--trust" in result.output


def test_train_refuses_to_save_over_its_own_config_unless_forced(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(textwrap.dedent("""
        data: {name: iris}
        network:
          optimizer: {name: Sgd, args: {learning_rate: 1.0e-2}}
          layers:
            - {name: FullyConnected, args: {input_size: 4, output_size: 3}}
            - SoftMax
        training: {iterations: 5, batch_size: 8}
    """))
    text = config.read_bytes()
    result = corenet("train", config, "-q", "-o", config)
    assert result.exit_code == 1, result.output
    assert f"{config}: exists and is not a corenet checkpoint (it looks like a text file)" in result.stderr
    assert "--force" in result.stderr and "test accuracy" not in result.stdout  # refused before training
    assert config.read_bytes() == text
    target = tmp_path / "notes.txt"
    target.write_text("my notes\n")
    result = corenet("train", config, "-q", "-o", target, "--force")
    assert result.exit_code == 0, result.output
    assert len(load(target, None).loss) == 5
    result = corenet("train", config, "-q", "-o", target)  # now a checkpoint: replaced without --force
    assert result.exit_code == 0, result.output


def test_unwritable_checkpoint_path_fails_before_training(tmp_path):
    result = corenet("train", "iris", "-q", "-o", tmp_path / "missing" / "x.ckpt")
    assert result.exit_code == 1 and "folder" in result.stderr and "does not exist" in result.stderr
    assert "test accuracy" not in result.stdout


def test_evaluate_on_a_folder_keeps_the_checkpoints_data_arguments(mnist_folder, tmp_path):
    config = tmp_path / "split.yaml"
    config.write_text(textwrap.dedent("""
        data: {name: mnist, args: {split: 50}}
        network: {model: LeNet}
        training: {iterations: 2, batch_size: 8}
    """))
    path = tmp_path / "split.ckpt"
    result = corenet("train", config, "--data", mnist_folder, "-q", "-o", path)
    assert result.exit_code == 0, result.output
    assert "on 10 test samples" in result.stdout  # 60 images split at 50
    report = json.loads(corenet("evaluate", path, "--data", mnist_folder, "--json").stdout)
    assert report["count"] == 10  # the folder replaced the path; the split was kept
