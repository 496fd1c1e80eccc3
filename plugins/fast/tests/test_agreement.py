"""The fast tier computes what the reference tier computes.

For every fast layer (Conv, Pooling, BatchNormalization, RNN, LSTM) a reference and a fast
instance start from the same seed (same default weights), get the same optimizer
(Sgd, or Adam: the reference Adam for the reference layer, the fast Adam for the
fast one) and run several training steps on the same inputs. After every step the
outputs, the input errors, the parameter gradients, the updated parameters and the
layer's state (BatchNormalization's moving statistics, the recurrent carried state)
agree: to 1e-10 (relative, per entry) in float64 and to 1e-5 (relative, over the
whole array) in float32, where both tiers also return the same dtypes.

Dropout draws its masks differently in the two tiers (the fast one cuts bit codes
from random 64-bit words), so the same seed gives different masks; its tests
compare what both tiers must share instead (see ``TestDropout``).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import corenet
from corenet.optimizers import Sgd
from corenet.plugins import get_registry
from corenet.testing import relative_error

pytest.importorskip("corenet_fast")

STEPS = 4
FLOAT64_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-5


def implementation(kind: str, name: str, tier: str):
    """The ``tier`` ("reference" or "fast") implementation of ``name``, or skip when it is not installed."""
    try:
        return get_registry().implementation(kind, name, tier)
    except corenet.errors.RegistryError:
        pytest.skip(f"no {tier} implementation of {name} installed")


@dataclass(frozen=True)
class Case:
    """A layer configuration: ``make(cls)`` builds it, inputs have ``shape``; ``parameters`` are updated."""

    id: str
    name: str
    make: Callable
    shape: tuple[int, ...]
    parameters: tuple[str, ...]
    state: tuple[str, ...] = ()  # further attributes that must agree after every step
    testing_phase_after: bool = False  # a testing-phase forward/backward after the training steps


CASES = [
    Case("Conv2d-3ch-stride(2,1)-even", "Conv", lambda cls: cls((2, 1), (3, 4, 3), 5), (4, 3, 9, 7),
         ("weights", "bias")),
    Case("Conv2d-1ch-stride2", "Conv", lambda cls: cls(2, (1, 5, 5), 6), (3, 1, 11, 10), ("weights", "bias")),
    Case("Conv2d-1x1", "Conv", lambda cls: cls(1, (4, 1, 1), 2), (2, 4, 3, 5), ("weights", "bias")),
    Case("Conv1d-stride3", "Conv", lambda cls: cls([3], (2, 4), 3), (5, 2, 13), ("weights", "bias")),
    Case("Pooling-2x2", "Pooling", lambda cls: cls(2, 2), (3, 4, 8, 6), ()),
    Case("Pooling-2x2-odd-size", "Pooling", lambda cls: cls(2, 2), (2, 3, 7, 9), ()),
    Case("Pooling-3x3-stride2-overlapping", "Pooling", lambda cls: cls(2, 3), (2, 2, 9, 8), ()),
    Case("BatchNorm-vector", "BatchNormalization", lambda cls: cls(6), (16, 6), ("weights", "bias"),
         ("moving_mean", "moving_variance"), testing_phase_after=True),
    Case("BatchNorm-image", "BatchNormalization", lambda cls: cls(3), (5, 3, 6, 7), ("weights", "bias"),
         ("moving_mean", "moving_variance"), testing_phase_after=True),
    Case("RNN", "RNN", lambda cls: cls(3, 5, 2), (9, 3), ("weights", "output_weights"), ("state",)),
    Case("LSTM", "LSTM", lambda cls: cls(3, 4, 2), (9, 3), ("weights", "output_weights"), ("state",)),
    Case("LSTM-memorize", "LSTM", lambda cls: _memorizing(cls(2, 3, 3)), (6, 2), ("weights", "output_weights"),
         ("state",)),
]
OPTIMIZERS = ["Sgd", "Adam"]


def _memorizing(layer):
    layer.memorize = True
    return layer


def optimizer_for(name: str, tier: str):
    if name == "Sgd":  # small enough that training is stable: an unstable step would amplify rounding
        return Sgd(0.002)
    return implementation("optimizers", "Adam", tier)(0.01, 0.9, 0.999)


def build(case: Case, tier: str, optimizer: str, dtype):
    """The ``tier`` layer of ``case`` with the seed-0 default weights in ``dtype`` and its optimizer set."""
    corenet.set_default_dtype(dtype)
    try:
        np.random.seed(0)
        layer = case.make(implementation("layers", case.name, tier))
    finally:
        corenet.set_default_dtype(np.float64)
    layer.optimizer = optimizer_for(optimizer, tier)
    return layer


def observe(layer, x: np.ndarray, label: np.ndarray) -> dict[str, np.ndarray]:
    """One training step (L2 loss against ``label``): output, input error, gradients, parameters, state."""
    output = layer.forward(x)
    seen = {"output": output, "input error": layer.backward(output - label)}
    for name in getattr(layer, "parameter_names", ()):  # none for Pooling
        seen[f"gradient_{name}"] = np.asarray(getattr(layer, f"gradient_{name}"))
        seen[name] = np.asarray(getattr(layer, name))
    return seen


def state_of(layer, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    seen = {}
    for name in names:
        value = getattr(layer, name)
        if isinstance(value, tuple):  # a recurrent state: (h,) or (h, c)
            seen.update({f"{name}[{i}]": part for i, part in enumerate(value)})
        else:
            seen[name] = np.asarray(value)
    return seen


def assert_agree(reference: dict, fast: dict, dtype, where: str) -> None:
    assert reference.keys() == fast.keys(), where
    for key, expected in reference.items():
        got = fast[key]
        assert got.shape == expected.shape, f"{where}: {key}"
        if dtype == np.float64:
            scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
            np.testing.assert_allclose(got, expected, rtol=FLOAT64_TOLERANCE, atol=FLOAT64_TOLERANCE * scale,
                                       err_msg=f"{where}: {key}")
        else:
            assert got.dtype == expected.dtype, f"{where}: {key} is {got.dtype} in the fast tier, {expected.dtype}"
            assert relative_error(got, expected) <= FLOAT32_TOLERANCE, f"{where}: {key}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_reference_and_fast_agree_over_training_steps(case, optimizer, dtype):
    layers = {tier: build(case, tier, optimizer, dtype) for tier in ("reference", "fast")}
    assert type(layers["fast"]) is not type(layers["reference"])
    assert isinstance(layers["fast"], type(layers["reference"]))  # same attributes, same registry name
    rng = np.random.default_rng(1)
    for step in range(STEPS):
        x = (rng.normal(size=case.shape) * 1.5 + 0.5).astype(dtype)
        label = rng.normal(size=copy.deepcopy(layers["reference"]).forward(x).shape).astype(dtype)
        seen = {tier: observe(layer, x, label) | state_of(layer, case.state) for tier, layer in layers.items()}
        assert_agree(seen["reference"], seen["fast"], dtype, f"{case.id}, {optimizer}, step {step + 1}")
    if case.testing_phase_after:
        x = rng.normal(size=case.shape).astype(dtype)
        for layer in layers.values():
            layer.testing_phase = True
        seen = {tier: observe(layer, x, np.zeros_like(x)) for tier, layer in layers.items()}
        assert_agree(seen["reference"], seen["fast"], dtype, f"{case.id}, {optimizer}, testing phase")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_state_saved_by_one_tier_runs_in_the_other(case):
    """A layer's pickled state (what a checkpoint keeps) holds the same attributes in both tiers, and a layer
    of one tier given the other's state computes what the other computes."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=case.shape)
    for source, target in (("fast", "reference"), ("reference", "fast")):
        trained = build(case, source, "Adam", np.float64)
        for _ in range(2):
            output = trained.forward(x)
            trained.backward(output - 1.0)
        state = trained.__getstate__()
        fresh = build(case, target, "Sgd", np.float64)
        assert {k for k, v in state.items() if v is not None} <= set(fresh.__getstate__()), (
            f"{source} keeps attributes the {target} tier does not have")
        restored = pickle.loads(pickle.dumps(copy.deepcopy(state)))
        vars(fresh).update(restored)
        carried = getattr(trained, "state", None)
        expected = trained.forward(x)
        if carried is not None:
            fresh.state = carried
        np.testing.assert_allclose(fresh.forward(x), expected, rtol=1e-12, atol=1e-14)


# -- Adam on its own ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_adam_gives_the_reference_bits(dtype, path, monkeypatch):
    """Both of the fast Adam's paths: the compiled step (when numba is installed) and the NumPy one."""
    from corenet_fast import numba as compiled

    if path == "numba" and not compiled.enabled():
        pytest.skip("numba is not installed (pip install './plugins/fast[numba]')")
    monkeypatch.setenv(compiled.ENV, "1" if path == "numba" else "0")
    reference = implementation("optimizers", "Adam", "reference")(0.01, 0.8, 0.99)
    fast = implementation("optimizers", "Adam", "fast")(0.01, 0.8, 0.99)
    rng = np.random.default_rng(3)
    weights = {"reference": rng.normal(size=(50, 40)).astype(dtype)}
    weights["fast"] = weights["reference"].copy()
    for _ in range(6):
        gradient = rng.normal(size=(50, 40)).astype(dtype) * rng.choice([1e-6, 1.0, 1e3], size=(50, 40))
        weights["reference"] = reference.calculate_update(weights["reference"], gradient)
        weights["fast"] = fast.calculate_update(weights["fast"], gradient)
        np.testing.assert_array_equal(weights["fast"], weights["reference"])
        assert weights["fast"].dtype == weights["reference"].dtype
    np.testing.assert_array_equal(fast.first_moment, reference.first_moment)
    np.testing.assert_array_equal(fast.second_moment, reference.second_moment)
    assert fast.iteration == reference.iteration == 6
    assert "_scratch" not in fast.__getstate__()  # copies and checkpoints leave the buffers out


def test_fast_adam_takes_scalars_and_integer_gradients_like_the_reference():
    reference = implementation("optimizers", "Adam", "reference")(0.1)
    fast = implementation("optimizers", "Adam", "fast")(0.1)
    for gradient in (2.0, np.array([1, -2, 3]), np.array([0.5, 0.25, -1.0])):
        expected = reference.calculate_update(np.ones(3), gradient)
        np.testing.assert_array_equal(fast.calculate_update(np.ones(3), gradient), expected)


# -- Dropout -------------------------------------------------------------------------------------------


class TestDropout:
    """Same seed, different masks: both tiers keep a fraction p of the units (within 5 standard deviations),
    scale every kept unit by exactly 1/p (so the mean is kept), zero the rest, send the error back through
    exactly the forward's mask, are the identity in the testing phase and for p = 1, keep the input's dtype,
    and draw a fresh mask per call that ``np.random.seed`` reproduces."""

    @pytest.fixture(params=["reference", "fast"])
    def tier(self, request):
        return request.param

    @pytest.mark.parametrize("probability", [0.2, 0.5, 0.75, 0.9])
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_kept_fraction_scale_and_backward(self, tier, probability, dtype):
        layer = implementation("layers", "Dropout", tier)(probability)
        np.random.seed(0)
        x = (np.random.uniform(1.0, 2.0, (400, 250))).astype(dtype)  # no zeros in the input
        output = layer.forward(x)
        assert output.dtype == dtype
        kept = output != 0
        spread = np.sqrt(probability * (1 - probability) / x.size)
        assert abs(kept.mean() - probability) <= 5 * spread
        np.testing.assert_allclose(output[kept], x[kept] * dtype(1 / probability), rtol=2e-7 if dtype == np.float32
                                   else 1e-15)
        error = np.random.uniform(1.0, 2.0, x.shape).astype(dtype)
        gradient = layer.backward(error)
        assert gradient.dtype == dtype
        np.testing.assert_array_equal(gradient != 0, kept)
        np.testing.assert_allclose(gradient[kept], error[kept] * dtype(1 / probability),
                                   rtol=2e-7 if dtype == np.float32 else 1e-15)

    def test_seeded_masks_are_reproducible_and_fresh_per_call(self, tier):
        layer = implementation("layers", "Dropout", tier)(0.5)
        x = np.ones((60, 50))
        np.random.seed(4)
        first, second = layer.forward(x), layer.forward(x)
        np.random.seed(4)
        np.testing.assert_array_equal(layer.forward(x), first)
        assert not np.array_equal(first, second)

    def test_identity_in_the_testing_phase_and_for_p_one(self, tier):
        cls = implementation("layers", "Dropout", tier)
        x = np.random.default_rng(5).normal(size=(7, 9))
        testing = cls(0.3)
        testing.testing_phase = True
        np.testing.assert_array_equal(testing.forward(x), x)
        np.testing.assert_array_equal(testing.backward(2 * x), 2 * x)
        keep_all = cls(1.0)
        np.testing.assert_array_equal(keep_all.forward(x), x)
        np.testing.assert_array_equal(keep_all.backward(2 * x), 2 * x)

    def test_the_tiers_keep_the_same_fraction(self):
        """The two tiers' kept fractions agree within their combined sampling noise (same distribution)."""
        fractions = []
        for tier in ("reference", "fast"):
            np.random.seed(6)
            layer = implementation("layers", "Dropout", tier)(0.35)
            fractions.append(np.count_nonzero(layer.forward(np.ones((1000, 1000)))) / 1e6)
        assert abs(fractions[0] - fractions[1]) <= 5 * np.sqrt(2 * 0.35 * 0.65 / 1e6)


# -- a whole network ------------------------------------------------------------------------------------


class _Batches:
    """A data layer handing out a fixed sequence of batches."""

    def __init__(self, batches) -> None:
        self.batches = list(batches)
        self.index = 0

    def next(self):
        batch = self.batches[self.index % len(self.batches)]
        self.index += 1
        return batch


def _network(tier: str):
    from corenet.initializers import Constant, He
    from corenet.losses import CrossEntropyLoss
    from corenet.network import NeuralNetwork

    def layer(name):
        try:
            return get_registry().implementation("layers", name, tier)
        except corenet.errors.RegistryError:
            return get_registry().layers[name]  # names with one implementation

    np.random.seed(0)
    net = NeuralNetwork(implementation("optimizers", "Adam", tier)(2e-3, 0.9, 0.999), He(), Constant(0.1))
    net.loss_layer = CrossEntropyLoss()
    # Conv -> ReLU -> BatchNorm: a Conv bias right before BatchNorm would get a zero gradient (plus
    # rounding noise), which Adam scales up to full steps and the tiers' noise apart
    for stage in (layer("Conv")((1, 1), (1, 3, 3), 4), layer("ReLU")(), layer("BatchNormalization")(4),
                  layer("Pooling")((2, 2), (2, 2)), layer("Flatten")(), layer("FullyConnected")(4 * 4 * 4, 5),
                  layer("SoftMax")()):
        net.append_layer(stage)
    return net


def test_a_network_trains_identically_with_either_tier():
    rng = np.random.default_rng(7)
    batches = []
    for _ in range(3):
        labels = np.eye(5)[rng.integers(0, 5, 12)]
        batches.append((rng.normal(size=(12, 1, 8, 8)), labels))
    nets = {tier: _network(tier) for tier in ("reference", "fast")}
    for net in nets.values():
        net.data_layer = _Batches(batches)
        net.train(6)
    np.testing.assert_allclose(nets["fast"].loss, nets["reference"].loss, rtol=1e-10)
    for ours, theirs in zip(nets["fast"].layers, nets["reference"].layers):
        for name in getattr(theirs, "parameter_names", ()) if theirs.trainable else ():
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10, atol=1e-12)
    probe = batches[0][0]
    np.testing.assert_allclose(nets["fast"].test(probe), nets["reference"].test(probe), rtol=1e-10, atol=1e-14)
