"""The loss curve of a training run as an image (matplotlib, an optional extra)."""

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


def plot_loss(losses: Sequence[float], filename, title: str = "training loss") -> None:
    """Write the loss per iteration and its running mean to ``filename``, atomically.

    The image format follows the suffix (``.png``, ``.svg``, ``.pdf``, ...).
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    from corenet.files import atomic_write

    target = Path(filename)
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
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
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=target.suffix.lstrip(".").lower() or "png")
    atomic_write(target, buffer.getvalue())
