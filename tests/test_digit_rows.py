"""The digit-rows example of the recurrent plugin: an LSTM/RNN reading real 8x8 digits row by row."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("corenet_recurrent")

from corenet_recurrent.digit_rows import (  # noqa: E402 (after the skip)
    DigitRows,
    RowsConfig,
    accuracy,
    build_network,
    train_digit_rows,
    training_steps,
)


def test_data_layer_gives_each_training_image_once_per_epoch_as_rows():
    np.random.seed(0)
    data = DigitRows()
    assert data.train_input.shape == (1198, 8, 8) and data.test_input.shape == (599, 8, 8)
    seen = set()
    for _ in range(data.train_size):
        rows, labels = data.next()
        assert rows.shape == (8, 8) and labels.shape == (8, 10)
        assert np.all(labels == labels[0]) and labels[0].sum() == 1  # one label, repeated for every row
        matches = np.flatnonzero(np.all(data.train_input == rows, axis=(1, 2)))
        assert np.argmax(data.train_label[matches[0]]) == np.argmax(labels[0])
        seen.add(rows.tobytes())
    assert len(seen) == len({image.tobytes() for image in data.train_input})


def test_accuracy_counts_the_last_steps_prediction():
    network = build_network(RowsConfig(hidden_size=4))
    sequences = np.random.default_rng(0).uniform(size=(5, 8, 8))
    predictions = np.array([np.argmax(network.test(rows)[-1]) for rows in sequences])
    labels = np.eye(10)[predictions]
    assert accuracy(network, sequences, labels) == 1.0
    assert accuracy(network, sequences, np.eye(10)[(predictions + 1) % 10]) == 0.0


@pytest.mark.parametrize("cell, least", [("lstm", 0.75), ("rnn", 0.55)])
def test_a_few_epochs_learn_to_read_digits(cell, least):
    # seeds 0-2 gave 0.79-0.81 (LSTM) and 0.63-0.69 (RNN) after 4 epochs; chance is 0.1, and the
    # default 20 epochs reach 0.92 (LSTM) and 0.89 (RNN)
    result = train_digit_rows(RowsConfig(cell=cell, epochs=4, seed=0))
    assert len(result.accuracies) == 4 and len(result.losses) == 4
    assert result.losses[-1] < result.losses[0]
    assert result.accuracy > least


def test_same_seed_same_run():
    first, second = (train_digit_rows(RowsConfig(epochs=1, hidden_size=8, seed=3)) for _ in range(2))
    assert first.losses == second.losses and first.accuracies == second.accuracies


def test_training_steps_and_bad_config():
    assert training_steps(RowsConfig(epochs=3)) == 3 * 1198
    for bad, name in (({"cell": "gru"}, "cell"), ({"hidden_size": 0}, "hidden_size"), ({"epochs": 1.5}, "epochs"),
                      ({"learning_rate": -1.0}, "learning_rate")):
        with pytest.raises(ValueError, match=name):
            RowsConfig(**bad)


def test_cli_prints_epochs_and_accuracy_and_names_flags_in_errors():
    from typer.testing import CliRunner

    from corenet.cli import app

    result = CliRunner().invoke(app, ["digit-rows", "--epochs", "2", "--hidden", "8"])
    assert result.exit_code == 0, result.output
    assert "epoch   2/2" in result.output and "held-out accuracy" in result.output
    assert "on 599 test digits" in result.output
    result = CliRunner().invoke(app, ["digit-rows", "--lr", "-1"])
    assert result.exit_code != 0 and "--lr must be a finite real number > 0, got -1.0" in result.output
    result = CliRunner().invoke(app, ["digit-rows", "--cell", "gru"])
    assert result.exit_code != 0
