"""Pictures of training (matplotlib, an optional extra, imported only when a picture is drawn)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MISSING_MATPLOTLIB = "plotting needs matplotlib, which is not installed: pip install 'corenet[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` (before any training) if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(MISSING_MATPLOTLIB) from None


def check_target(filename) -> None:
    """Fail early (before training) if ``filename`` cannot be written as a plot."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    target = Path(filename)
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = target.suffix.lstrip(".").lower()
    if suffix not in formats:
        raise ValueError(f"--plot {target}: unknown image type {target.suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join('.' + name for name in sorted(formats))}")
    if not target.parent.is_dir():
        raise ValueError(f"--plot {target}: folder {target.parent} does not exist")


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Running mean over ``window`` values (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(0, ends - window)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def new_figure(columns: int = 1, rows: int = 1, size: tuple[float, float] = (7, 4)):
    """A matplotlib Figure (Agg backend, no window) and its axes, ``rows`` x ``columns``."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, [axis for row in axes for axis in row]


def save_figure(figure, filename) -> None:
    """Write ``figure`` to ``filename`` atomically; the format follows the suffix (.png, .svg, .pdf...)."""
    from corenet.files import atomic_write

    target = Path(filename)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=target.suffix.lstrip(".").lower() or "png")
    atomic_write(target, buffer.getvalue())


def plot_history(history, filename, title: str = "training", iteration_losses: Sequence[float] | None = None,
                 iterations_per_epoch: int | None = None) -> None:
    """Loss (left) and accuracy (right) per epoch, training and test, in one figure.

    ``history`` is a :class:`~corenet.history.History`; ``iteration_losses`` (the mean
    loss per sample of every iteration, optional) is drawn faintly behind the epoch
    means, at fractional epochs given ``iterations_per_epoch``.
    """
    figure, (loss_axes, accuracy_axes) = new_figure(columns=2, size=(11, 4))
    records = list(history)
    ends = np.array([r.iterations for r in records], dtype=float)
    per_epoch = iterations_per_epoch or (ends[0] if records else 1)
    epochs = ends / per_epoch
    if iteration_losses is not None and len(iteration_losses):
        x = np.arange(1, len(iteration_losses) + 1) / per_epoch
        loss_axes.plot(x, iteration_losses, color="tab:blue", alpha=0.25, linewidth=0.7, label="train, per batch")
    if records:
        train_style, test_style = ("o-", "s--") if len(records) <= 30 else ("-", "--")
        loss_axes.plot(epochs, [r.loss for r in records], train_style, color="tab:blue", label="train (epoch mean)")
        test_losses = [np.nan if r.test_loss is None else r.test_loss for r in records]
        if not np.all(np.isnan(test_losses)):
            loss_axes.plot(epochs, test_losses, test_style, color="tab:orange", label="test (data loss)")
        for name, color, style in (("train_accuracy", "tab:blue", train_style),
                                   ("test_accuracy", "tab:orange", test_style)):
            values = [np.nan if getattr(r, name) is None else getattr(r, name) for r in records]
            if not np.all(np.isnan(values)):
                accuracy_axes.plot(epochs, values, style, color=color, label=name.replace("_accuracy", ""))
    loss_axes.set(xlabel="epoch", ylabel="loss per sample", title=f"{title}: loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    save_figure(figure, filename)


def plot_loss(losses: Sequence[float], filename, title: str = "training loss") -> None:
    """Write the loss per iteration and its running mean to ``filename``, atomically.

    The image format follows the suffix (``.png``, ``.svg``, ``.pdf``, ...).
    """
    figure, (axes,) = new_figure()
    iterations = np.arange(1, len(losses) + 1)
    axes.plot(iterations, losses, color="tab:blue", alpha=0.35, linewidth=0.8, label="loss per iteration")
    if len(losses) > 1:
        window = max(1, len(losses) // 50)
        axes.plot(iterations, smooth(losses, window), color="tab:blue", linewidth=1.8,
                  label=f"running mean ({window})")
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, filename)
