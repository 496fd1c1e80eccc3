"""corenet-fast's compiled kernels (corenet_fast.numba) compute what the reference layers compute.

Every case runs twice: with the compiled kernels (skipped when numba is not installed)
and with ``CORENET_FAST_NUMBA=0``, which must fall back to corenet-fast's NumPy code.
Each run checks which path the layer took, then trains a reference and a fast layer
side by side for several steps: outputs, input errors, gradients, updated parameters
and state agree to 1e-10 (relative, per entry) in float64 and 1e-5 (relative, whole
array) in float32. A NaN in the input must reach the output and stop training with
the network's DivergenceError (the kernels' fastmath flags keep NaN semantics).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

import corenet
from corenet.errors import DivergenceError
from corenet.optimizers import Adam, Sgd
from corenet.plugins import get_registry
from corenet.testing import relative_error

pytest.importorskip("corenet_fast")
from corenet_fast import numba as compiled  # noqa: E402  (after the skip: corenet-fast may be absent)

HAS_NUMBA = importlib.util.find_spec("numba") is not None
STEPS = 3
FLOAT64_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Case:
    """``make(cls)`` builds the layer for inputs of ``shape``; ``kernel_dtypes``: where the compiled path runs."""

    id: str
    name: str
    make: object
    shape: tuple[int, ...]
    kernel_dtypes: tuple[str, ...]
    state: tuple[str, ...] = ()
    testing_phase_after: bool = False


def _memorizing(layer):
    layer.memorize = True
    return layer


BOTH = ("float64", "float32")
CASES = [
    Case("Pooling-2x2", "Pooling", lambda cls: cls(2, 2), (3, 4, 8, 6), BOTH),
    Case("Pooling-2x2-odd-size", "Pooling", lambda cls: cls((2, 2), (2, 2)), (2, 3, 7, 5), BOTH),
    Case("Pooling-3x3-numpy", "Pooling", lambda cls: cls(2, 3), (2, 2, 9, 8), ()),
    Case("BatchNorm-image", "BatchNormalization", lambda cls: cls(3), (5, 3, 6, 7), BOTH,
         ("moving_mean", "moving_variance"), testing_phase_after=True),
    Case("BatchNorm-vector", "BatchNormalization", lambda cls: cls(6), (16, 6), BOTH,
         ("moving_mean", "moving_variance"), testing_phase_after=True),
    Case("LSTM", "LSTM", lambda cls: cls(3, 5, 2), (9, 3), ("float32",), ("state",)),
    Case("LSTM-memorize", "LSTM", lambda cls: _memorizing(cls(2, 4, 3)), (7, 2), ("float32",), ("state",)),
]


@pytest.fixture(params=["numba", "numpy"])
def path(request, monkeypatch):
    """'numba': compiled kernels on (skipped without numba); 'numpy': CORENET_FAST_NUMBA=0."""
    if request.param == "numba":
        if not HAS_NUMBA:
            pytest.skip("numba is not installed (pip install './plugins/fast[numba]')")
        monkeypatch.delenv(compiled.ENV, raising=False)
    else:
        monkeypatch.setenv(compiled.ENV, "0")
    return request.param


def implementation(name: str, tier: str):
    return get_registry().implementation("layers", name, tier)


def build(case: Case, tier: str, dtype, optimizer: str):
    corenet.set_default_dtype(dtype)
    try:
        np.random.seed(0)
        layer = case.make(implementation(case.name, tier))
    finally:
        corenet.set_default_dtype(np.float64)
    layer.optimizer = Sgd(0.002) if optimizer == "Sgd" else Adam(0.01, 0.9, 0.999)
    return layer


def observe(layer, x: np.ndarray, label: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    output = layer.forward(x)
    seen = {"output": output, "input error": layer.backward(output - label)}
    for name in getattr(layer, "parameter_names", ()):
        seen[f"gradient_{name}"] = np.asarray(getattr(layer, f"gradient_{name}"))
        seen[name] = np.asarray(getattr(layer, name))
    for name in names:
        value = getattr(layer, name)
        parts = value if isinstance(value, tuple) else (value,)
        seen.update({f"{name}[{i}]": np.asarray(part) for i, part in enumerate(parts)})
    return seen


def assert_agree(reference: dict, fast: dict, dtype, where: str) -> None:
    assert reference.keys() == fast.keys(), where
    for key, expected in reference.items():
        got = fast[key]
        assert got.shape == expected.shape and got.dtype == expected.dtype, f"{where}: {key}"
        if dtype == np.float64:
            scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
            np.testing.assert_allclose(got, expected, rtol=FLOAT64_TOLERANCE, atol=FLOAT64_TOLERANCE * scale,
                                       err_msg=f"{where}: {key}")
        else:
            assert relative_error(got, expected) <= FLOAT32_TOLERANCE, f"{where}: {key}"


@pytest.mark.parametrize("optimizer", ["Sgd", "Adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_agrees_with_the_reference_over_training_steps(case, dtype, optimizer, path):
    layers = {tier: build(case, tier, dtype, optimizer) for tier in ("reference", "fast")}
    rng = np.random.default_rng(1)
    for step in range(STEPS):
        x = (rng.normal(size=case.shape) * 1.5 + 0.5).astype(dtype)
        label = rng.normal(size=copy.deepcopy(layers["reference"]).forward(x).shape).astype(dtype)
        seen = {tier: observe(layer, x, label, case.state) for tier, layer in layers.items()}
        ran_compiled = layers["fast"]._compiled is not None
        assert ran_compiled == (path == "numba" and np.dtype(dtype).name in case.kernel_dtypes), \
            f"{case.id}: the {path} path did not run"
        assert_agree(seen["reference"], seen["fast"], dtype, f"{case.id}, {path}, {optimizer}, step {step + 1}")
    if case.testing_phase_after:
        x = rng.normal(size=case.shape).astype(dtype)
        for layer in layers.values():
            layer.testing_phase = True
        seen = {tier: observe(layer, x, np.zeros_like(x), case.state) for tier, layer in layers.items()}
        assert_agree(seen["reference"], seen["fast"], dtype, f"{case.id}, {path}, testing phase")


@pytest.mark.parametrize("case", [case for case in CASES if case.kernel_dtypes], ids=lambda case: case.id)
def test_pickled_layer_leaves_the_kernel_buffers_out(case, path):
    layer = build(case, "fast", np.float32, "Sgd")
    x = np.random.default_rng(2).normal(size=case.shape).astype(np.float32)
    layer.backward(layer.forward(x))
    state = layer.__getstate__()
    assert state.get("_compiled") is None and state.get("_compiled_buffers") is None


class _FixedBatch:
    def __init__(self, inputs: np.ndarray, labels: np.ndarray) -> None:
        self.inputs, self.labels = inputs, labels

    def next(self):
        return self.inputs, self.labels


def _network(first_layer, inputs: np.ndarray, classes: int):
    """first_layer -> (Flatten) -> FC -> SoftMax with cross entropy, on one fixed batch."""
    from corenet.initializers import He
    from corenet.layers.activations import SoftMax
    from corenet.layers.flatten import Flatten
    from corenet.layers.fully_connected import FullyConnected
    from corenet.losses import CrossEntropyLoss
    from corenet.network import NeuralNetwork

    net = NeuralNetwork(Sgd(0.01), He(), He())
    net.append_layer(first_layer)
    features = first_layer.forward(np.nan_to_num(inputs)).reshape(len(inputs), -1).shape[1]
    if inputs.ndim > 2:
        net.append_layer(Flatten())
    net.append_layer(FullyConnected(features, classes))
    net.append_layer(SoftMax())
    net.loss_layer = CrossEntropyLoss()
    labels = np.eye(classes, dtype=inputs.dtype)[np.arange(len(inputs)) % classes]
    net.data_layer = _FixedBatch(inputs, labels)
    return net


NAN_CASES = [
    ("Pooling", lambda: implementation("Pooling", "fast")(2, 2), (4, 2, 6, 6), BOTH),
    ("BatchNormalization", lambda: implementation("BatchNormalization", "fast")(2), (4, 2, 3, 3), BOTH),
    ("LSTM", lambda: implementation("LSTM", "fast")(3, 4, 5), (6, 3), ("float32",)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, make, shape, kernel_dtypes", NAN_CASES, ids=[c[0] for c in NAN_CASES])
def test_a_nan_reaches_the_networks_guard(name, make, shape, kernel_dtypes, dtype, path):
    corenet.set_default_dtype(dtype)
    try:
        layer = make()
        inputs = np.random.default_rng(3).normal(size=shape).astype(dtype)
        inputs.flat[len(inputs.flat) // 2] = np.nan
        net = _network(layer, inputs, 3)
        assert np.isnan(layer.forward(inputs)).any()
        assert (layer._compiled is not None) == (path == "numba" and np.dtype(dtype).name in kernel_dtypes)
        with pytest.raises(DivergenceError, match="iteration 1"):
            net.train(1)
    finally:
        corenet.set_default_dtype(np.float64)


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
def test_rational_tanh_is_close_to_tanh_and_keeps_nan(monkeypatch):
    monkeypatch.delenv(compiled.ENV, raising=False)
    lstm = compiled.kernels("lstm")
    assert lstm is not None
    values = np.concatenate([np.linspace(-12, 12, 4001), [0.0, 1e-30, -1e-30, 8.99, 9.01, np.inf, -np.inf]])
    approximated = np.array([lstm.tanh32(np.float32(v)) for v in values], dtype=np.float64)
    exact = np.tanh(values.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(approximated - exact)) < 4e-7
    assert np.isnan(lstm.tanh32(np.float32(np.nan))) and np.isnan(lstm.sigmoid32(np.float32(np.nan)))


def test_switch_and_unknown_kernel(monkeypatch):
    monkeypatch.setenv(compiled.ENV, "off")
    assert not compiled.enabled() and compiled.kernels("pooling") is None
    monkeypatch.setenv(compiled.ENV, "1")
    assert compiled.enabled() == HAS_NUMBA
    with pytest.raises(ValueError, match="unknown kernel module 'fft'"):
        compiled.kernels("fft")


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
def test_cached_kernels_start_fast_and_a_cold_compile_announces_itself(tmp_path):
    """A process that compiles prints the one-time message; the next one loads the cache without it, and its
    first call (numba itself already loaded by ``kernels``) takes well under the 0.5 s start-up budget."""
    script = (
        "import time, numpy as np\n"
        "from corenet_fast.numba import kernels\n"
        "bn = kernels('batchnorm')\n"
        "start = time.perf_counter()\n"
        "x = np.ones((2, 3, 4)); out = np.empty_like(x); m = np.empty(3); v = np.empty(3)\n"
        "bn.train_forward(x, np.ones(3), np.zeros(3), 1e-11, out, m, v)\n"
        "print(time.perf_counter() - start)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != compiled.ENV}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)

    def run() -> tuple[float, str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return float(done.stdout.strip()), done.stderr

    cold_seconds, cold_messages = run()
    warm_seconds, warm_messages = run()
    assert "corenet-fast: compiling kernels (once" in cold_messages
    assert "compiling" not in warm_messages
    assert warm_seconds < 0.5 and warm_seconds < cold_seconds


def test_importing_the_fast_plugin_does_not_import_numba():
    code = "import sys, corenet_fast.numba.layers, corenet_fast; print('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_message_waits_for_a_slow_first_call(monkeypatch, capsys):
    """Kernel announces only first calls that outlast MESSAGE_AFTER, and only once per process."""
    monkeypatch.setattr(compiled, "MESSAGE_AFTER", 0.05)
    monkeypatch.setattr(compiled, "_announced", False)
    quick = compiled.Kernel(lambda x: x)
    slow = compiled.Kernel(lambda x: time.sleep(0.3) or x)
    assert quick(np.ones(1))[0] == 1.0
    assert "compiling" not in capsys.readouterr().err
    slow(np.ones(1))
    slow(np.ones(1, dtype=np.float32))
    assert capsys.readouterr().err.count("corenet-fast: compiling kernels") == 1
