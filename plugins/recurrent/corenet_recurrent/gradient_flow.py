"""How far back the gradient reaches on the delayed-recall task: RNN versus LSTM.

After every epoch of :func:`~corenet_recurrent.recall.train_recall` the layer is
probed on fresh streams: a window of ``window`` steps (after ``warmup`` steps that
set up a running state) is fed forward, a unit error is put on the last output y_T
only, and the norm of the input gradient the layer's backward returns for each
step, ||∂y_T/∂x_{T-j}||, is recorded against the number of steps back j (averaged
over ``streams`` streams). A vanishing gradient shows as a curve that falls by
orders of magnitude with j. The probe streams come from a private generator, so the
training itself is exactly that of ``corenet recall`` with the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from corenet.inspection import time_step_gradients
from corenet_recurrent.recall import RecallConfig, encode, train_recall

#: rows of the terminal table: steps back j
TABLE_STEPS = (0, 1, 2, 5, 10, 15, 20, 30, 40, 49)


@dataclass
class GradientFlow:
    """One cell's probes: ``norms[i]`` (window,) indexed by steps back j, measured after ``epochs[i]``
    epochs (0: before training)."""

    cell: str
    window: int
    epochs: list[int] = field(default_factory=list)
    norms: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    accuracy: float = float("nan")

    def early_late_ratio(self, index: int = -1) -> float:
        """Mean gradient over the earliest fifth of the window (largest j) over the latest fifth (smallest j)."""
        norms = self.norms[index]
        fifth = max(1, self.window // 5)
        return float(norms[-fifth:].mean() / norms[:fifth].mean())


def probe(layer, window: int, streams: int, rng: np.random.RandomState, warmup: int = 50) -> np.ndarray:
    """Mean over ``streams`` random bit streams of ||∂y_T/∂x_{T-j}||, j = 0 .. window - 1."""
    total = np.zeros(window)
    for _ in range(streams):
        inputs = encode(rng.randint(0, 2, size=warmup + window))
        norms = time_step_gradients(layer, inputs[warmup:], warmup=inputs[:warmup] if warmup else None)
        total += norms[::-1]  # index j = steps back from the last one
    return total / streams


def recall_gradient_flow(
    config: RecallConfig,
    window: int = 50,
    streams: int = 20,
    on_epoch: Callable[[int, float], None] | None = None,
    on_chunk: Callable[[], None] | None = None,
) -> GradientFlow:
    """Train one cell as ``corenet recall`` does and probe it before training and after every epoch."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise ValueError(f"streams must be an integer >= 1, got {streams!r}")
    flow = GradientFlow(config.cell, window)
    rng = np.random.RandomState(config.seed)

    def measure(done: int, layer) -> None:
        flow.epochs.append(done)
        flow.norms.append(probe(layer, window, streams, rng))

    def losses(epoch: int, loss: float) -> None:
        flow.losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, loss)

    result = train_recall(config, on_epoch=losses, on_chunk=on_chunk, after_epoch=measure)
    flow.accuracy = result.accuracy
    return flow


def table_rows(flows: list[GradientFlow]) -> list[list[str]]:
    """Rows ``[j, norm of each cell]`` after the last epoch, for j in TABLE_STEPS and the window's last step."""
    window = min(flow.window for flow in flows)
    steps = sorted({j for j in TABLE_STEPS if j < window} | {window - 1})
    return [[str(j), *(f"{flow.norms[-1][j]:.2e}" for flow in flows)] for j in steps]


def plot_flows(flows: list[GradientFlow], filename, delay: int) -> None:
    """Left: ||∂y_T/∂x_{T-j}|| over j after the last epoch (solid) and before training (dotted), log scale.
    Right: the early/late ratio of every cell over the epochs."""
    from corenet.plotting import new_figure, save_figure

    figure, (steps_axes, ratio_axes) = new_figure(columns=2, size=(11, 4))
    colors = {"rnn": "tab:red", "lstm": "tab:blue"}
    for flow in flows:
        color = colors.get(flow.cell, None)
        j = np.arange(flow.window)
        steps_axes.semilogy(j, flow.norms[-1], "-", color=color,
                            label=f"{flow.cell.upper()} after {flow.epochs[-1]} epochs")
        steps_axes.semilogy(j, flow.norms[0], ":", color=color, label=f"{flow.cell.upper()} untrained")
        ratios = [flow.early_late_ratio(i) for i in range(len(flow.epochs))]
        ratio_axes.semilogy(flow.epochs, ratios, "o-", color=color, markersize=3, label=flow.cell.upper())
    steps_axes.axvline(delay, color="grey", linewidth=0.8, linestyle="--", label=f"delay k = {delay}")
    steps_axes.set(xlabel="steps back j", ylabel="‖∂y_T / ∂x_(T-j)‖",
                   title="gradient reaching each earlier step")
    ratio_axes.set(xlabel="epoch", ylabel="earliest fifth / latest fifth",
                   title="how much gradient reaches the window's start")
    for axes in (steps_axes, ratio_axes):
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8)
    save_figure(figure, filename)
