"""The delayed-recall example of the recurrent plugin: data, loss, training budget and the CLI command."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("corenet_recurrent")

from corenet_recurrent.recall import (  # noqa: E402
    RecallConfig,
    binary_cross_entropy,
    delayed,
    encode,
    learning_rate_at,
    train_recall,
)


def test_targets_are_the_input_k_steps_back():
    bits = np.array([1, 0, 0, 1, 1, 0, 1])
    target, mask = delayed(bits, 2)
    np.testing.assert_array_equal(target[2:, 0], bits[:-2])
    np.testing.assert_array_equal(mask[:, 0], [False, False, True, True, True, True, True])
    np.testing.assert_array_equal(encode(bits)[:, 0], 2 * bits - 1)


def test_binary_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(0)
    output = rng.uniform(0.05, 0.95, size=(6, 1))
    target = rng.integers(0, 2, size=(6, 1)).astype(float)
    mask = np.array([[False], [True], [True], [True], [False], [True]])
    loss, error = binary_cross_entropy(output, target, mask)
    expected = -np.mean((target * np.log(output) + (1 - target) * np.log(1 - output))[mask])
    assert loss == pytest.approx(expected, rel=1e-12)
    step = 1e-6
    for row in range(6):
        bumped = output.copy()
        bumped[row] += step
        numeric = (binary_cross_entropy(bumped, target, mask)[0] - loss) / step
        assert error[row, 0] == pytest.approx(numeric, abs=1e-4)
    assert error[0, 0] == 0.0 and error[4, 0] == 0.0


def test_binary_cross_entropy_survives_saturated_outputs():
    output, target = np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]])
    loss, error = binary_cross_entropy(output, target, np.ones((2, 1), bool))
    assert np.isfinite(loss) and np.all(np.isfinite(error))


def test_config_is_validated():
    with pytest.raises(ValueError, match="cell must be one of"):
        RecallConfig(cell="gru")
    with pytest.raises(ValueError, match="chunk must be an integer >= 1"):
        RecallConfig(chunk=0)
    with pytest.raises(ValueError, match="test_length"):
        RecallConfig(delay=20, test_length=10)


def test_learning_rate_decays_from_start_to_a_twentieth():
    config = RecallConfig(epochs=11, learning_rate=0.02)
    rates = [learning_rate_at(config, epoch) for epoch in range(11)]
    assert rates[0] == pytest.approx(0.02) and rates[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_short_delay_is_learned_quickly(cell):
    """k = 3: both cells reach >= 95% held-out accuracy in 3 epochs (15,000 steps, about a second)."""
    result = train_recall(RecallConfig(cell=cell, delay=3, epochs=3, seed=0))
    assert len(result.losses) == 3 and result.losses[-1] < result.losses[0]
    assert result.accuracy >= 0.95
    assert result.layer.memorize is True


def test_training_is_reproducible():
    config = RecallConfig(cell="lstm", delay=2, epochs=1, steps_per_epoch=500, test_streams=2,
                          test_length=200)
    first, second = train_recall(config), train_recall(config)
    assert first.losses == second.losses and first.accuracy == second.accuracy


def test_untrained_network_is_at_chance():
    config = RecallConfig(cell="lstm", delay=3, epochs=1, steps_per_epoch=1, chunk=1, seed=0)
    assert 0.3 < train_recall(config).accuracy < 0.7


def test_cli_command_prints_epochs_and_accuracy():
    from typer.testing import CliRunner

    from corenet.cli import app

    result = CliRunner().invoke(app, ["recall", "--cell", "both", "--delay", "3", "--epochs", "2",
                                      "--steps-per-epoch", "2000", "--test-streams", "2"])
    assert result.exit_code == 0, result.output
    assert "rnn epoch   2/2" in result.output and "lstm epoch   1/2" in result.output
    assert result.output.count("held-out accuracy") >= 2


def test_cli_rejects_bad_options():
    from typer.testing import CliRunner

    from corenet.cli import app

    result = CliRunner().invoke(app, ["recall", "--cell", "gru"])
    assert result.exit_code != 0
    result = CliRunner().invoke(app, ["recall", "--delay", "50", "--test-length", "20"])
    assert result.exit_code != 0
    assert "--test-length (20) must exceed --delay (50)" in result.output, result.output
    result = CliRunner().invoke(app, ["recall", "--lr", "0"])
    assert result.exit_code != 0
    assert "--lr must be > 0, got 0.0" in result.output and "learning_rate" not in result.output, result.output


@pytest.mark.slow
def test_long_delay_lstm_reaches_95_percent():
    """The README budget: k = 10, 40 epochs of 5,000 steps; the LSTM must reach >= 95% held out."""
    lstm = train_recall(RecallConfig(cell="lstm", delay=10, epochs=40, seed=0))
    assert lstm.accuracy >= 0.95
