"""Probes that look inside training: per layer and epoch, and per time step of a recurrent layer.

:class:`LayerProbe` wraps the ``forward``/``backward`` of a network's layers (as
instance attributes, removed again by :meth:`LayerProbe.detach`; no layer class is
changed) and measures, over every training batch of an epoch:

- the output's mean and standard deviation (over all its numbers);
- for ReLU, the fraction of *dead* units: output positions that were 0 for every
  sample of the epoch; for TanH the fraction of outputs with |y| > 0.99 and for
  Sigmoid outside (0.01, 0.99) (*saturated*: their derivative is nearly 0);
- the norm of the gradient w.r.t. the layer's input (the error it returns; the
  network's first layer skips computing it, so it has none) and w.r.t. each
  parameter tensor (``gradient_<name>``), per batch, averaged over the epoch;
- the update/weight ratio ||W_after - W_before|| / ||W_before|| of each parameter
  per step, averaged over the epoch (around 1e-3 is the usual healthy range).

Testing-phase forwards (the test set after each epoch) are not counted.

:func:`time_step_gradients` measures, for a layer whose batch axis is time (RNN,
LSTM), how strongly the last output responds to the input at each earlier step.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np

from corenet.summary import parameters_of

#: |y| above this counts as a saturated TanH output
TANH_SATURATION = 0.99
#: y outside (SIGMOID_SATURATION, 1 - SIGMOID_SATURATION) counts as a saturated Sigmoid output
SIGMOID_SATURATION = 0.01


def saturated(kind: str, output: np.ndarray) -> int:
    """How many numbers of a TanH/Sigmoid ``output`` are saturated."""
    if kind == "TanH":
        return int(np.count_nonzero(np.abs(output) > TANH_SATURATION))
    return int(np.count_nonzero((output <= SIGMOID_SATURATION) | (output >= 1.0 - SIGMOID_SATURATION)))


@dataclass
class LayerEpoch:
    """One layer in one epoch (see the module docstring). Norms are per batch, averaged over the epoch;
    None where not measured (``dead_fraction`` only for ReLU, ``saturated_fraction`` only for TanH/Sigmoid)."""

    epoch: int
    index: int
    layer: str
    output_mean: float
    output_std: float
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    input_gradient_norm: float | None = None
    gradient_norms: dict[str, float] = field(default_factory=dict)
    update_ratios: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class _Meter:
    """Running sums for one layer over one epoch."""

    def __init__(self) -> None:
        self.total = 0.0
        self.squares = 0.0
        self.count = 0
        self.active: np.ndarray | None = None  # per output position: positive at least once
        self.saturated = 0
        self.input_norms: list[float] = []
        self.gradient_norms: dict[str, list[float]] = {}
        self.update_ratios: dict[str, list[float]] = {}


def _kind(layer) -> str:
    """'ReLU', 'TanH', 'Sigmoid' or another registry/class name."""
    from corenet.plugins import get_registry

    try:
        name = get_registry().name_of(layer, "layers")
    except Exception:  # a registry that cannot load: the class name still says it
        name = None
    return name or type(layer).__name__


class LayerProbe:
    """Measures every layer of ``net`` while it trains; :meth:`close_epoch` returns one epoch's numbers."""

    def __init__(self, net) -> None:
        self.net = net
        self.layers = list(net.layers)
        self.kinds = [_kind(layer) for layer in self.layers]
        self._meters = [_Meter() for _ in self.layers]
        self._attached = False
        self.epochs: list[list[LayerEpoch]] = []

    # -- wrapping -------------------------------------------------------------------------------------
    def attach(self) -> LayerProbe:
        """Wrap every layer's forward and backward (instance attributes shadowing the class's methods)."""
        if self._attached:
            return self
        for index, layer in enumerate(self.layers):
            layer.forward = self._forward(index, layer, layer.forward)
            layer.backward = self._backward(index, layer, layer.backward)
        self._attached = True
        return self

    def detach(self) -> None:
        """Remove the wrappers: the layers are exactly as before (pickles and checkpoints unaffected)."""
        for layer in self.layers:
            for name in ("forward", "backward"):
                layer.__dict__.pop(name, None)
        self._attached = False

    def __enter__(self) -> LayerProbe:
        return self.attach()

    def __exit__(self, *exc_info) -> None:
        self.detach()

    def _forward(self, index: int, layer, forward):
        kind = self.kinds[index]

        def probed(input_tensor):
            output = forward(input_tensor)
            if not getattr(layer, "testing_phase", False):
                self._record_output(self._meters[index], kind, np.asarray(output))
            return output

        return probed

    def _backward(self, index: int, layer, backward):
        def probed(error_tensor):
            before = {name: array.astype(np.float64, copy=True) for name, array in parameters_of(layer).items()}
            result = backward(error_tensor)
            meter = self._meters[index]
            if result is not None:
                meter.input_norms.append(float(np.linalg.norm(np.asarray(result, dtype=np.float64))))
            after = parameters_of(layer)
            for name, old in before.items():
                gradient = getattr(layer, f"gradient_{name}", None)
                if gradient is not None:
                    norm = float(np.linalg.norm(np.asarray(gradient, dtype=np.float64)))
                    meter.gradient_norms.setdefault(name, []).append(norm)
                scale = float(np.linalg.norm(old))
                if name in after and after[name].shape == old.shape and scale > 0:
                    change = float(np.linalg.norm(after[name].astype(np.float64) - old))
                    meter.update_ratios.setdefault(name, []).append(change / scale)
            return result

        return probed

    @staticmethod
    def _record_output(meter: _Meter, kind: str, output: np.ndarray) -> None:
        values = output.astype(np.float64, copy=False)
        meter.total += float(values.sum())
        meter.squares += float(np.square(values).sum())
        meter.count += values.size
        if kind == "ReLU" and values.ndim >= 1 and values.shape[0]:
            active = (values > 0).any(axis=0)
            if meter.active is None or meter.active.shape != active.shape:
                meter.active = active
            else:
                meter.active |= active
        elif kind in ("TanH", "Sigmoid"):
            meter.saturated += saturated(kind, values)

    # -- results --------------------------------------------------------------------------------------
    def close_epoch(self, epoch: int) -> list[LayerEpoch]:
        """The numbers of the batches since the last call, one :class:`LayerEpoch` per layer; resets."""
        rows = []
        for index, (layer, kind, meter) in enumerate(zip(self.layers, self.kinds, self._meters)):
            count = max(meter.count, 1)
            mean = meter.total / count
            variance = max(meter.squares / count - mean * mean, 0.0)
            row = LayerEpoch(epoch, index, type(layer).__name__, mean, float(np.sqrt(variance)))
            if kind == "ReLU" and meter.active is not None:
                row.dead_fraction = float(1.0 - meter.active.mean())
            if kind in ("TanH", "Sigmoid") and meter.count:
                row.saturated_fraction = meter.saturated / meter.count
            if meter.input_norms:
                row.input_gradient_norm = float(np.mean(meter.input_norms))
            row.gradient_norms = {name: float(np.mean(v)) for name, v in meter.gradient_norms.items()}
            row.update_ratios = {name: float(np.mean(v)) for name, v in meter.update_ratios.items()}
            rows.append(row)
        for meter in range(len(self._meters)):
            self._meters[meter] = _Meter()
        self.epochs.append(rows)
        return rows


#: the columns of the terminal table, in order
TABLE_COLUMNS = ("epoch", "#", "layer", "output mean", "output std", "dead / saturated", "‖dL/d input‖",
                 "‖dL/d parameter‖", "update / weight")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def table_rows(epochs: list[list[LayerEpoch]]) -> list[list[str]]:
    """One row of strings per layer and epoch, matching :data:`TABLE_COLUMNS`."""
    rows = []
    for layers in epochs:
        for row in layers:
            if row.dead_fraction is not None:
                fraction = f"{row.dead_fraction:.1%} dead"
            elif row.saturated_fraction is not None:
                fraction = f"{row.saturated_fraction:.1%} saturated"
            else:
                fraction = "-"
            gradients = ", ".join(f"{name} {_number(v)}" for name, v in row.gradient_norms.items()) or "-"
            updates = ", ".join(f"{name} {_number(v)}" for name, v in row.update_ratios.items()) or "-"
            rows.append([str(row.epoch), str(row.index), row.layer, _number(row.output_mean),
                         _number(row.output_std), fraction, _number(row.input_gradient_norm), gradients, updates])
    return rows


def plot_layers(epochs: list[list[LayerEpoch]], filename, title: str = "inside the layers") -> None:
    """Four panels over the epochs, one line per layer: output std, dead/saturated fraction, input
    gradient norm and update/weight ratio (of each layer's first parameter)."""
    from corenet.plotting import new_figure, save_figure

    figure, panels = new_figure(columns=2, rows=2, size=(11, 7))
    if not epochs:
        save_figure(figure, filename)
        return
    x = [layers[0].epoch for layers in epochs]
    count = len(epochs[0])
    specs = (
        ("output std", lambda r: r.output_std, False),
        ("dead (ReLU) / saturated (TanH, Sigmoid) fraction",
         lambda r: r.dead_fraction if r.dead_fraction is not None else r.saturated_fraction, False),
        ("‖dL/d input‖ per batch", lambda r: r.input_gradient_norm, True),
        ("update / weight ratio", lambda r: next(iter(r.update_ratios.values()), None), True),
    )
    for axes, (label, value, logarithmic) in zip(panels, specs):
        for index in range(count):
            values = [value(layers[index]) for layers in epochs]
            if all(v is None for v in values):
                continue
            series = [np.nan if v is None else v for v in values]
            style = "o-" if len(x) <= 30 else "-"
            axes.plot(x, series, style, markersize=3, color=f"C{index % 10}",
                      label=f"{index} {epochs[0][index].layer}")
        axes.set(xlabel="epoch", title=label)
        if logarithmic and axes.get_lines():
            axes.set_yscale("log")
        axes.grid(alpha=0.3)
        if axes.get_lines():
            axes.legend(fontsize=7)
    figure.suptitle(title)
    save_figure(figure, filename)


# -- recurrent layers: the gradient reaching each time step ---------------------------------------------------
def time_step_gradients(layer, sequence: np.ndarray, warmup: np.ndarray | None = None) -> np.ndarray:
    """||∂y_T/∂x_t|| for every step t of ``sequence`` (time, features): the norm of the input gradient that a
    unit error at the last output (and nowhere else) sends back to step t, shape (time,).

    Runs on a deep copy of ``layer`` without its optimizer, so the layer's weights and
    state are untouched; the copy starts from a zero state. ``warmup`` (time', features),
    if given, is fed first with ``memorize`` on, so the probe starts from the state a
    running stream would have.
    Uses the error tensor the layer's ``backward`` returns (its batch axis is time).
    """
    probe = copy.deepcopy(layer)
    if hasattr(probe, "optimizer"):
        probe.optimizer = None
    if hasattr(probe, "reset_state"):
        probe.reset_state()
    if warmup is not None:
        if hasattr(probe, "memorize"):
            probe.memorize = True
        probe.forward(warmup)
    output = np.asarray(probe.forward(sequence))
    error = np.zeros_like(output)
    error[-1] = 1.0
    gradient = np.asarray(probe.backward(error), dtype=np.float64)
    return np.linalg.norm(gradient.reshape(gradient.shape[0], -1), axis=1)
