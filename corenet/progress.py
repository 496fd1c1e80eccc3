"""A progress bar with the running mean loss per sample, for long training runs."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: the bar shows the mean of this many latest iterations' losses
WINDOW = 50


@contextmanager
def training_progress(total: int, description: str = "training") -> Iterator[Callable[[int, float], None]]:
    """Yield ``callback(iteration, loss)`` that advances a rich progress bar showing the mean of the
    last :data:`WINDOW` losses.

    ``loss`` is the mean loss per sample of the step's batch (what ``corenet train``
    passes), so the bar reads on the same scale as the per-epoch lines.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss/sample {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, loss="-")  # no loss before the first step
        recent: deque[float] = deque(maxlen=WINDOW)

        def callback(iteration: int, loss: float) -> None:
            recent.append(loss)
            progress.update(task, advance=1, loss=f"{sum(recent) / len(recent):.4f}")

        yield callback
