"""A progress bar with the running mean loss per sample, for long training runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def training_progress(total: int, description: str = "training") -> Iterator[Callable[[int, float], None]]:
    """Yield ``callback(iteration, loss)`` that advances a rich progress bar showing ``loss`` smoothed.

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
        smoothed: list[float] = []

        def callback(iteration: int, loss: float) -> None:
            value = loss if not smoothed else 0.95 * smoothed[0] + 0.05 * loss
            smoothed[:] = [value]
            progress.update(task, advance=1, loss=f"{value:.4f}")

        yield callback
