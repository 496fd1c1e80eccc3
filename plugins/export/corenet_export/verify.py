"""Run an exported network (PyTorch or onnxruntime) and measure how closely it agrees with corenet."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corenet_export.errors import require


@dataclass
class Agreement:
    """How exported outputs compare with corenet's: the largest element-wise relative difference and
    whether every sample gets the same predicted class."""

    max_relative: float
    same_classes: bool
    samples: int

    def within(self, rtol: float) -> bool:
        return self.same_classes and self.max_relative <= rtol


def classes(output: np.ndarray) -> np.ndarray:
    """Predicted classes of (samples, outputs): the arg max of a row, or the bit y > 0.5 of a single output."""
    output = np.asarray(output)
    return (output[:, 0] > 0.5).astype(int) if output.shape[1] == 1 else output.argmax(axis=1)


def agreement(actual: list[np.ndarray], expected: list[np.ndarray]) -> Agreement:
    """Compare outputs batch by batch (``expected``: corenet's); shapes must match."""
    if len(actual) != len(expected):
        raise ValueError(f"{len(actual)} output batches against {len(expected)}")
    worst, same, samples = 0.0, True, 0
    for got, want in zip(actual, expected):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            raise ValueError(f"output of shape {got.shape}, corenet's is {want.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(got == want, 0.0, np.abs(got - want) / np.abs(want))
        worst = max(worst, float(relative.max(initial=0.0)))
        same = same and bool(np.array_equal(classes(got), classes(want)))
        samples += want.shape[0]
    return Agreement(worst, same, samples)


def import_module_file(path: str | Path):
    """Import a generated module file (without entering it in ``sys.modules``)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_torch(weights: str | Path, module_file: str | Path, class_name: str,
              inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Build the generated class, ``load_state_dict(torch.load(weights))``, eval mode, and run each input."""
    torch = require("torch", "Running the PyTorch export")
    model = getattr(import_module_file(module_file), class_name)()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    dtype = next((p.dtype for p in model.state_dict().values() if p.dtype.is_floating_point), torch.float64)
    with torch.no_grad():
        return [model(torch.as_tensor(np.asarray(x)).to(dtype)).numpy() for x in inputs]


def run_onnx(path: str | Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the ONNX file with onnxruntime's CPU provider, inputs as float32."""
    ort = require("onnxruntime", "Running the ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: np.asarray(x, dtype=np.float32)})[0] for x in inputs]


def corenet_outputs(network, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """corenet's testing-phase outputs, every input from a zero recurrent state (as the exports start)."""
    outputs = []
    for x in inputs:
        for layer in getattr(network, "layers", network):
            if callable(getattr(layer, "reset_state", None)):
                layer.reset_state()
        outputs.append(network.test(x))
    return outputs
