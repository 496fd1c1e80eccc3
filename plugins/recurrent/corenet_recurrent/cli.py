"""``corenet recall``: train RNN and/or LSTM on the delayed-recall task from the command line."""

from __future__ import annotations

import enum
import re
from typing import Annotated

import typer


class Cell(str, enum.Enum):
    rnn = "rnn"
    lstm = "lstm"
    both = "both"


_CELL = typer.Option("--cell", "-c", help="Which layer to train: rnn, lstm or both.")
_DELAY = typer.Option("--delay", "-k", min=0, help="k: the target is the input k steps back.")
_EPOCHS = typer.Option("--epochs", "-e", min=1, help="Epochs (one fresh stream each).")
_SEED = typer.Option("--seed", help="Seed for NumPy's global generator.")
_HIDDEN = typer.Option("--hidden", min=1, help="Hidden state size.")
_LR = typer.Option("--lr", help="Adam's initial learning rate, > 0 (cosine decay to 1/20 of it).")
_STEPS = typer.Option("--steps-per-epoch", min=1, help="Length of each epoch's stream.")
_CHUNK = typer.Option("--chunk", min=1, help="TBPTT chunk length (steps per forward/backward).")
_TEST_STREAMS = typer.Option("--test-streams", min=1, help="Held-out streams for the accuracy.")
_TEST_LENGTH = typer.Option("--test-length", min=2, help="Steps per held-out stream.")

#: RecallConfig's and RowsConfig's field names and the flags that set them, so an error names what
#: the user typed.
_FLAGS = {"cell": "--cell", "delay": "--delay", "epochs": "--epochs", "seed": "--seed", "hidden_size": "--hidden",
          "learning_rate": "--lr", "steps_per_epoch": "--steps-per-epoch", "chunk": "--chunk",
          "test_streams": "--test-streams", "test_length": "--test-length"}
_FIELD = re.compile(r"\b(" + "|".join(_FLAGS) + r")\b")


def _in_flags(message: str) -> str:
    """A config error with each field name replaced by its flag ('learning_rate' -> '--lr')."""
    return _FIELD.sub(lambda match: _FLAGS[match.group(1)], message)


def recall(
    cell: Annotated[Cell, _CELL] = Cell.both,
    delay: Annotated[int, _DELAY] = 10,
    epochs: Annotated[int, _EPOCHS] = 40,
    seed: Annotated[int, _SEED] = 0,
    hidden: Annotated[int, _HIDDEN] = 32,
    learning_rate: Annotated[float, _LR] = 0.01,
    steps: Annotated[int, _STEPS] = 5000,
    chunk: Annotated[int, _CHUNK] = 50,
    test_streams: Annotated[int, _TEST_STREAMS] = 10,
    test_length: Annotated[int, _TEST_LENGTH] = 1000,
) -> None:
    """Delayed recall: learn y_t = x_{t-k} on a random bit stream with truncated BPTT.

    Trains with memorize=True in chunks, prints the loss (binary cross-entropy)
    per epoch and the held-out accuracy of each cell.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from corenet_recurrent.recall import RecallConfig, train_recall

    cells = ["rnn", "lstm"] if cell is Cell.both else [cell.value]
    try:
        configs = [
            RecallConfig(cell=name, delay=delay, epochs=epochs, hidden_size=hidden,
                         learning_rate=learning_rate, steps_per_epoch=steps, chunk=chunk,
                         test_streams=test_streams, test_length=test_length, seed=seed)
            for name in cells
        ]
    except ValueError as exc:
        raise typer.BadParameter(_in_flags(str(exc))) from exc
    console = Console()
    results = []
    for config in configs:
        chunks = -(-config.steps_per_epoch // config.chunk)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"{config.cell} k={config.delay}", total=config.epochs * chunks)

            def on_epoch(epoch: int, loss: float, name: str = config.cell) -> None:
                progress.console.print(f"{name} epoch {epoch + 1:>3}/{epochs}  loss {loss:.4f}")

            def on_chunk(task=task) -> None:
                progress.advance(task)

            result = train_recall(config, on_epoch=on_epoch, on_chunk=on_chunk)
        console.print(f"{config.cell}: held-out accuracy {result.accuracy:.4f} "
                      f"(training {result.train_seconds:.1f} s)")
        results.append(result)
    table = Table(title=f"delayed recall, k = {delay}")
    for column in ("cell", "epochs", "training steps", "train seconds", "held-out accuracy"):
        table.add_column(column)
    for result in results:
        c = result.config
        table.add_row(c.cell, str(c.epochs), str(c.epochs * c.steps_per_epoch), f"{result.train_seconds:.1f}",
                      f"{result.accuracy:.4f}")
    console.print(table)


class RowsCell(str, enum.Enum):
    rnn = "rnn"
    lstm = "lstm"


def digit_rows(
    cell: Annotated[RowsCell, typer.Option("--cell", "-c", help="rnn or lstm.")] = RowsCell.lstm,
    hidden: Annotated[int, _HIDDEN] = 32,
    epochs: Annotated[int, typer.Option("--epochs", "-e", min=1, help="Epochs (every training image once).")] = 20,
    learning_rate: Annotated[float, _LR] = 0.003,
    seed: Annotated[int, _SEED] = 0,
) -> None:
    """Read 8x8 digits row by row: an LSTM (or RNN) classifies each image from its 8 pixel rows.

    Scikit-learn's digits as sequences (1198 training, 599 test images): 8 steps of 8 pixels each, the last step's prediction counts. Prints the loss and held-out accuracy per epoch.
    """  # noqa: E501 (one line per paragraph: typer keeps a docstring's line breaks)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from corenet_recurrent.digit_rows import DigitRows, RowsConfig, train_digit_rows, training_steps

    try:
        config = RowsConfig(cell=cell.value, hidden_size=hidden, epochs=epochs, learning_rate=learning_rate,
                            seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(_in_flags(str(exc))) from exc
    data = DigitRows()
    console = Console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"{config.cell} reading digit rows", total=training_steps(config, data))

        def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
            progress.console.print(f"epoch {epoch + 1:>3}/{epochs}  loss per row {loss:.4f}  "
                                   f"held-out accuracy {accuracy:.2%}")

        def on_step() -> None:
            progress.advance(task)

        result = train_digit_rows(config, on_epoch=on_epoch, on_step=on_step, data=data)
    console.print(f"{config.cell}, hidden {config.hidden_size}: held-out accuracy {result.accuracy:.2%} "
                  f"on {len(data.test_input)} test digits (training {result.train_seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add ``recall`` and ``digit-rows`` to the corenet typer app."""
    app.command("recall")(recall)
    app.command("digit-rows")(digit_rows)
