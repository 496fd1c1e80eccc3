"""What training did, epoch by epoch: :class:`History` (like Keras' ``History``) and its files.

One :class:`EpochRecord` per epoch holds the mean loss per training sample, split
into its data part (the loss layer's value) and its regularization part, the
training accuracy (over the epoch's batches, measured in the training phase, so with
Dropout active and on weights that changed during the epoch), the test accuracy and
test loss (testing phase, on the data layer's test set after the epoch) and the
wall time. ``loss == data_loss + regularization_loss``.

Per sample: the network's loss of one batch is the sum of the loss layer's value
over its samples plus the regularization loss, once per batch; both parts are
divided by the number of samples in the epoch's batches.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

#: the history files beside a checkpoint: ``<checkpoint>.history.json`` and ``.csv``
SUFFIXES = (".history.json", ".history.csv")


@dataclass
class EpochRecord:
    """One epoch: ``iterations`` is the total number of training iterations after it.

    Accuracies are fractions in [0, 1]; None where they could not be measured (labels
    that are not one-hot class rows, a data layer without a test set).
    """

    epoch: int
    iterations: int
    loss: float
    data_loss: float
    regularization_loss: float
    train_accuracy: float | None
    test_accuracy: float | None
    seconds: float
    test_loss: float | None = None

    def line(self, epochs: int | None = None) -> str:
        """One Keras-like line: ``epoch 3/10  loss 0.2131 (data 0.2101 + reg 0.0030)  train acc ...``."""
        width = len(str(epochs)) if epochs else 1
        of = f"/{epochs}" if epochs else ""
        parts = [f"epoch {self.epoch:>{width}}{of}",
                 f"loss {self.loss:.4f} (data {self.data_loss:.4f} + reg {self.regularization_loss:.4f})"]
        if self.train_accuracy is not None:
            parts.append(f"train acc {self.train_accuracy:.2%}")
        if self.test_accuracy is not None:
            parts.append(f"test acc {self.test_accuracy:.2%}")
        if self.test_loss is not None:
            parts.append(f"test loss {self.test_loss:.4f}")
        parts.append(f"{self.seconds:.1f} s" if self.seconds >= 0.1 else f"{self.seconds * 1000:.0f} ms")
        return "  ".join(parts)


FIELDS = tuple(f.name for f in fields(EpochRecord))


class History:
    """The epochs of a training run, in order; ``history.history`` maps each field to its list."""

    def __init__(self, records: list[EpochRecord] | None = None) -> None:
        self.records: list[EpochRecord] = list(records or [])

    def append(self, record: EpochRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[EpochRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> EpochRecord:
        return self.records[index]

    @property
    def history(self) -> dict[str, list]:
        """Field name -> one value per epoch (Keras' ``History.history``)."""
        return {name: [getattr(record, name) for record in self.records] for name in FIELDS}

    def to_json(self) -> str:
        return json.dumps({"epochs": [asdict(record) for record in self.records]}, indent=2) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIELDS)
        for record in self.records:
            writer.writerow(["" if getattr(record, name) is None else getattr(record, name) for name in FIELDS])
        return buffer.getvalue()

    def save(self, checkpoint) -> tuple[Path, Path]:
        """Write ``<checkpoint>.history.json`` and ``<checkpoint>.history.csv`` atomically; return both paths."""
        from corenet.files import atomic_write

        json_path, csv_path = history_paths(checkpoint)
        atomic_write(json_path, self.to_json().encode("utf-8"))
        atomic_write(csv_path, self.to_csv().encode("utf-8"))
        return json_path, csv_path

    @classmethod
    def load(cls, filename) -> History:
        """Read a ``.history.json`` file written by :meth:`save`."""
        path = Path(filename)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls([EpochRecord(**{name: entry.get(name) for name in FIELDS}) for entry in data["epochs"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a corenet training history ({exc})") from exc

    def __repr__(self) -> str:
        return f"History({len(self.records)} epochs)"


def history_paths(checkpoint) -> tuple[Path, Path]:
    """``(<checkpoint>.history.json, <checkpoint>.history.csv)``."""
    path = Path(checkpoint)
    return tuple(path.with_name(path.name + suffix) for suffix in SUFFIXES)  # type: ignore[return-value]


class EpochMeter:
    """Sums the steps of one epoch: losses, samples and correctly classified samples."""

    def __init__(self) -> None:
        self.data_loss = 0.0
        self.regularization_loss = 0.0
        self.samples = 0
        self.correct = 0
        self.counted = 0  # samples whose correctness could be judged

    def add(self, step) -> None:
        """Add a :class:`corenet.network.Step` (the network's last forward)."""
        self.data_loss += step.data_loss
        self.regularization_loss += step.regularization_loss
        self.samples += step.samples
        correct = step.correct
        if correct is not None:
            self.correct += correct
            self.counted += step.samples

    def record(self, epoch: int, iterations: int, seconds: float, test_accuracy: float | None = None,
               test_loss: float | None = None) -> EpochRecord:
        samples = max(self.samples, 1)
        data, regularization = self.data_loss / samples, self.regularization_loss / samples
        accuracy = self.correct / self.counted if self.counted else None
        return EpochRecord(epoch, iterations, data + regularization, data, regularization, accuracy,
                           test_accuracy, seconds, test_loss)

