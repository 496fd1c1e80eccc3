"""The delayed-recall task: read a random bit stream x_t, output y_t = x_{t-k}.

A network must hold the last k bits in its state. Training uses truncated BPTT:
``memorize=True`` carries the state from one chunk (50 steps by default) to the
next while gradients stop at the chunk boundary. The loss is binary cross-entropy
on the layer's sigmoid output, averaged over the chunk's steps whose target
exists (t >= k); its gradient w.r.t. y is handed to the layer's backward, which
updates both weight sets with Adam. Accuracy counts y_t > 0.5 as bit 1 over
held-out streams drawn after training. Every draw uses NumPy's global generator,
so ``seed`` reproduces a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from corenet.optimizers import Adam
from corenet_recurrent.lstm import LSTM
from corenet_recurrent.rnn import RNN
from corenet_recurrent.schedule import cosine_decay

CELLS = {"rnn": RNN, "lstm": LSTM}


@dataclass
class RecallConfig:
    """Task and training budget. One epoch = one fresh stream of ``steps_per_epoch`` steps, in chunks.

    Adam's learning rate follows a cosine from ``learning_rate`` down to a
    twentieth of it over the epochs (without the decay the RNN often learns and
    then diverges late in training).
    """

    cell: str = "lstm"
    delay: int = 10
    epochs: int = 40
    hidden_size: int = 32
    learning_rate: float = 0.01
    steps_per_epoch: int = 5000
    chunk: int = 50
    test_streams: int = 10
    test_length: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        counts = ("delay", "epochs", "hidden_size", "steps_per_epoch", "chunk", "test_streams", "test_length")
        for name in counts:
            value = getattr(self, name)
            minimum = 0 if name == "delay" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if self.test_length <= self.delay:
            raise ValueError(f"test_length ({self.test_length}) must exceed delay ({self.delay})")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")


@dataclass
class RecallResult:
    """Loss per epoch, held-out accuracy and wall time of one training run."""

    config: RecallConfig
    layer: object = None
    losses: list[float] = field(default_factory=list)
    accuracy: float = float("nan")
    train_seconds: float = 0.0


def bit_stream(length: int) -> np.ndarray:
    """``length`` random bits (0/1) from NumPy's global generator."""
    return np.random.randint(0, 2, size=length)


def encode(bits: np.ndarray) -> np.ndarray:
    """Bits as a (time, 1) input sequence of -1/+1."""
    return (2.0 * bits - 1.0).reshape(-1, 1)


def delayed(bits: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets y_t = x_{t-delay} as (time, 1) and a (time, 1) mask that is False where t < delay."""
    target = np.zeros((bits.size, 1))
    target[delay:, 0] = bits[: bits.size - delay]
    mask = np.zeros((bits.size, 1), dtype=bool)
    mask[delay:] = True
    return target, mask


def binary_cross_entropy(
    output: np.ndarray, target: np.ndarray, mask: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean BCE over the masked steps and its gradient w.r.t. ``output`` (0 where masked out)."""
    count = max(int(mask.sum()), 1)
    tiny = np.finfo(output.dtype).tiny
    clipped = np.clip(output, 1e-12, 1.0 - 1e-12)
    losses = -(target * np.log(clipped) + (1.0 - target) * np.log(1.0 - clipped))
    loss = float(losses[mask].sum() / count)
    # d/dy of BCE is (y - t) / (y (1 - y)); the layer multiplies by y (1 - y) again, so guard the division.
    error = np.where(mask, (output - target) / np.maximum(output * (1.0 - output), tiny), 0.0) / count
    return loss, error


def learning_rate_at(config: RecallConfig, epoch: int) -> float:
    """Cosine decay from ``learning_rate`` to a twentieth of it over the epochs."""
    return cosine_decay(config.learning_rate, epoch, config.epochs)


def build_layer(config: RecallConfig):
    """A fresh RNN or LSTM (1 input, 1 output) with Adam and memorize=True."""
    layer = CELLS[config.cell](1, config.hidden_size, 1)
    layer.optimizer = Adam(config.learning_rate, 0.9, 0.999)
    layer.memorize = True
    return layer


def run_stream(
    layer, bits: np.ndarray, delay: int, chunk: int, train: bool, on_chunk: Callable[[], None] | None = None
) -> tuple[float, int, int]:
    """Feed one stream chunk by chunk from a zero state (TBPTT when ``train``).

    Returns (mean chunk loss, correctly recalled bits, counted bits).
    """
    layer.reset_state()
    inputs = encode(bits)
    target, mask = delayed(bits, delay)
    total_loss, correct, counted, chunks = 0.0, 0, 0, 0
    for start in range(0, bits.size, chunk):
        window = slice(start, start + chunk)
        output = layer.forward(inputs[window])
        loss, error = binary_cross_entropy(output, target[window], mask[window])
        if train:
            layer.backward(error)
        total_loss += loss
        chunks += 1
        hits = (output > 0.5) == (target[window] > 0.5)
        correct += int(hits[mask[window]].sum())
        counted += int(mask[window].sum())
        if on_chunk is not None:
            on_chunk()
    return total_loss / chunks, correct, counted


def evaluate(layer, config: RecallConfig) -> float:
    """Accuracy on ``test_streams`` fresh streams of ``test_length`` steps (no weight updates)."""
    correct = counted = 0
    for _ in range(config.test_streams):
        bits = bit_stream(config.test_length)
        _, hits, n = run_stream(layer, bits, config.delay, config.chunk, train=False)
        correct += hits
        counted += n
    return correct / counted


def train_recall(
    config: RecallConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    on_chunk: Callable[[], None] | None = None,
    after_epoch: Callable[[int, object], None] | None = None,
) -> RecallResult:
    """Seed NumPy's generator, train one cell, then measure held-out accuracy.

    ``on_epoch(epoch, mean chunk loss)`` runs after each epoch, ``on_chunk()``
    after every training chunk (progress bars), ``after_epoch(done, layer)`` with the
    layer being trained before the first epoch (done = 0) and after each (done = epochs
    so far), for probes (which must not draw from NumPy's global generator, or the
    run changes).
    """
    np.random.seed(config.seed)
    layer = build_layer(config)
    result = RecallResult(config, layer=layer)
    if after_epoch is not None:
        after_epoch(0, layer)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        rate = learning_rate_at(config, epoch)
        for name in layer.parameter_names:
            layer.parameter_optimizer(name).learning_rate = rate
        bits = bit_stream(config.steps_per_epoch)
        loss, _, _ = run_stream(layer, bits, config.delay, config.chunk, train=True, on_chunk=on_chunk)
        result.losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, loss)
        if after_epoch is not None:
            after_epoch(epoch + 1, layer)
    result.train_seconds = time.perf_counter() - started
    result.accuracy = evaluate(layer, config)
    return result
