"""float32 end to end (issue 6): every layer under ``corenet.set_default_dtype(np.float32)``.

For every core and plugin layer, with float32 inputs:

(a) dtype contract: outputs, input gradients, parameter gradients, and parameters and optimizer
    state after Sgd / SgdWithMomentum / Adam updates are all float32;
(b) gradient check: the float32 analytic gradients (input and every parameter) equal the float64
    analytic gradients of the same layer with the same weights cast up (the float64 suites check
    those numerically);
(c) PyTorch parity in float32: outputs, loss and gradients against the torch counterpart (same
    layout mapping as the float64 conformance tests), and optimizer steps against torch.optim;
(d) a LeNet built and trained for 3 steps in float32 stays float32 and its loss is finite;
(e) BatchNormalization's float32 batch statistics (both tiers) within 1e-6 of float64's.

Layers and Adam are the registry's selected implementations: the reference tier in a
checkout's test run, the fast tier with ``CORENET_IMPL=fast``.

Every comparison uses ``relative_error`` (||a - b|| / (||a|| + ||b||)) <= 1e-4.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import corenet
from corenet.errors import RegistryError
from corenet.initializers import He
from corenet.layers.activations import ReLU, SoftMax
from corenet.layers.flatten import Flatten
from corenet.layers.fully_connected import FullyConnected
from corenet.layers.pooling import Pooling
from corenet.losses import CrossEntropyLoss
from corenet.network import NeuralNetwork
from corenet.optimizers import Sgd, SgdWithMomentum
from corenet.testing import FixedBatch, L2Loss, relative_error

TOLERANCE = 1e-4
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


@pytest.fixture(autouse=True)
def float32_default():
    """Every test builds its layers with float32 parameters; float64 is restored afterwards."""
    corenet.set_default_dtype(np.float32)
    yield
    corenet.set_default_dtype(np.float64)


def plugin(module: str, name: str) -> type:
    """A plugin's object, or skip the test when the plugin is not installed."""
    return getattr(pytest.importorskip(module), name)


def layer_class(name: str) -> type:
    """The registry's selected implementation of layer ``name``, or skip when no plugin provides it."""
    layers = corenet.get_registry().layers
    if name not in layers:
        pytest.skip(f"no installed plugin provides {name}")
    return layers[name]


def Conv(*args):  # noqa: N802 (stands for the class)
    return layer_class("Conv")(*args)


def Adam(*args):  # noqa: N802
    return corenet.get_registry().optimizers["Adam"](*args)


# -- torch counterparts, in our parameter layout ------------------------------------------------
# Each takes (F, x, params, layer, output) with ``params`` the layer's parameters as torch leaves
# in our layout, so their .grad compares directly with gradient_<name>.

def torch_conv(F, x, params, layer, output):
    weights, bias = params
    padding = []
    for size in reversed(layer.convolution_shape[1:]):  # F.pad lists the last axis first
        padding += [size // 2, (size - 1) // 2]
    function = F.conv1d if len(layer.convolution_shape) == 2 else F.conv2d
    return function(F.pad(x, padding), weights, bias, stride=layer.stride_shape)


def torch_batchnorm(F, x, params, layer, output):
    torch = pytest.importorskip("torch")
    epsilon = plugin("corenet_batchnorm.functional", "EPSILON")
    weights, bias = params
    if layer.testing_phase:
        mean, variance = (torch.from_numpy(np.asarray(a, np.float32)) for a in (layer.moving_mean,
                                                                                layer.moving_variance))
        return F.batch_norm(x, mean, variance, weights, bias, training=False, eps=epsilon)
    return F.batch_norm(x, None, None, weights, bias, training=True, eps=epsilon)


def torch_dropout(F, x, params, layer, output):
    # F.dropout cannot replay NumPy's mask: apply the same kept units, scaled by 1/p as torch does
    torch = pytest.importorskip("torch")
    return x * torch.from_numpy(output != 0) / layer.probability


# -- cases -------------------------------------------------------------------------------------

def batchnorm(channels: int) -> Callable[[], Any]:
    """BatchNormalization with gamma and beta away from their symmetric start (1 and 0)."""
    def make():
        layer = layer_class("BatchNormalization")(channels)
        layer.weights = np.random.uniform(0.5, 1.5, channels).astype(np.float32)
        layer.bias = np.random.uniform(-0.5, 0.5, channels).astype(np.float32)
        return layer
    return make


def train_statistics(shape: tuple[int, ...]) -> Callable[[Any, Any], None]:
    """BatchNormalization testing phase: moving averages from two training batches of ``shape`` first."""
    def prepare(layer, dtype) -> None:
        rng = np.random.default_rng(7)
        for scale in (2.0, 3.0):
            layer.forward((rng.normal(size=shape) * scale + 1).astype(dtype))
        layer.testing_phase = True
    return prepare


def recurrent(name: str, module: str) -> Callable[[], Any]:
    return lambda: layer_class(name)(3, 4, 2)


def memorized_call(layer, dtype):
    """LSTM memorize: a first call whose last state starts the tested call; returns that state."""
    layer.memorize = True
    layer.forward(np.random.default_rng(9).normal(size=(5, 3)).astype(dtype))
    state = layer.state
    assert all(np.abs(part).max() > 1e-3 for part in state)  # the tested call really starts elsewhere
    return state


def one_hot(shape, rng) -> np.ndarray:
    label = np.zeros(shape, dtype=np.float32)
    label[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1
    return label


@dataclass(frozen=True)
class Case:
    """One layer configuration, run by every test below (``id`` names it in the test ids)."""

    id: str
    make: Callable[[], Any]
    shape: tuple[int, ...]
    parameters: tuple[str, ...] = ()  # parameter names; gradient_<name> holds each gradient
    torch_fn: Callable | None = None  # (F, x, params, layer, output) -> output; None: see mirror
    mirror: bool = False  # recurrent: compare with corenet_recurrent.conformance.helpers.TorchMirror
    prepare: Callable | None = None  # (layer, dtype) -> carried state or None, before the tested call
    seed: int | None = None  # reseed np.random before every forward (Dropout)
    cross_entropy: bool = False  # CrossEntropyLoss with one-hot labels instead of L2Loss


CASES = [
    Case("FullyConnected", lambda: FullyConnected(5, 3), (6, 5), ("weights",),
         lambda F, x, p, layer, out: F.linear(x, p[0][:-1].T, p[0][-1])),
    Case("ReLU", ReLU, (4, 3, 5), (), lambda F, x, p, layer, out: F.relu(x)),
    Case("SoftMax", SoftMax, (5, 4), (), lambda F, x, p, layer, out: F.softmax(x, dim=1)),
    Case("SoftMax+CrossEntropyLoss", SoftMax, (6, 4), (), lambda F, x, p, layer, out: F.softmax(x, dim=1),
         cross_entropy=True),
    Case("Flatten", Flatten, (3, 2, 3, 4), (), lambda F, x, p, layer, out: x.flatten(1)),
    Case("Conv2d-stride2-even", lambda: Conv((2, 2), (3, 4, 4), 4), (2, 3, 7, 8), ("weights", "bias"),
         torch_conv),
    Case("Conv2d-1channel-stride(2,1)", lambda: Conv((2, 1), (1, 3, 2), 3), (3, 1, 6, 5),
         ("weights", "bias"), torch_conv),
    Case("Conv1d-stride2-even", lambda: Conv((2,), (3, 4), 4), (2, 3, 9), ("weights", "bias"), torch_conv),
    Case("Pooling-disjoint", lambda: Pooling((2, 2), (2, 2)), (2, 3, 6, 7), (),
         lambda F, x, p, layer, out: F.max_pool2d(x, (2, 2), (2, 2))),
    Case("Pooling-overlapping", lambda: Pooling((1, 2), (3, 2)), (2, 3, 6, 7), (),
         lambda F, x, p, layer, out: F.max_pool2d(x, (3, 2), (1, 2))),
    Case("BatchNorm-vector-train", batchnorm(5), (8, 5), ("weights", "bias"), torch_batchnorm),
    Case("BatchNorm-image-train", batchnorm(2), (6, 2, 3, 3), ("weights", "bias"), torch_batchnorm),
    Case("BatchNorm-vector-test", batchnorm(5), (8, 5), ("weights", "bias"), torch_batchnorm,
         prepare=train_statistics((6, 5))),
    Case("BatchNorm-image-test", batchnorm(2), (6, 2, 3, 3), ("weights", "bias"), torch_batchnorm,
         prepare=train_statistics((6, 2, 3, 3))),
    Case("Dropout", lambda: layer_class("Dropout")(0.6), (8, 6), (), torch_dropout,
         seed=11),
    Case("TanH", lambda: layer_class("TanH")(), (4, 5), (),
         lambda F, x, p, layer, out: x.tanh()),
    Case("Sigmoid", lambda: layer_class("Sigmoid")(), (4, 5), (),
         lambda F, x, p, layer, out: x.sigmoid()),
    Case("RNN", recurrent("RNN", "rnn"), (7, 3), ("weights", "output_weights"), mirror=True),
    Case("LSTM", recurrent("LSTM", "lstm"), (7, 3), ("weights", "output_weights"), mirror=True),
    Case("LSTM-memorize", recurrent("LSTM", "lstm"), (7, 3), ("weights", "output_weights"), mirror=True,
         prepare=memorized_call),
]
TRAINABLE = [case for case in CASES if case.parameters]
OPTIMIZERS = {
    "Sgd": lambda: Sgd(0.05),
    "SgdWithMomentum": lambda: SgdWithMomentum(0.05, 0.9),
    "Adam": lambda: Adam(0.01, 0.9, 0.999),
}


def ids(cases):
    return [case.id for case in cases]


def build(case: Case, seed: int = 0):
    """The layer (float32 parameters), a float32 input and the generator that draws its label."""
    np.random.seed(seed)
    layer = case.make()
    rng = np.random.default_rng(seed)
    x = rng.normal(size=case.shape).astype(np.float32)
    return layer, x, rng


def label_for(case: Case, output_shape, rng) -> np.ndarray:
    if case.cross_entropy:
        return one_hot(output_shape, rng)
    return rng.normal(size=output_shape).astype(np.float32)


def step(case: Case, layer, x, label):
    """One forward/loss/backward: (output, loss, loss error, input gradient)."""
    if case.seed is not None:
        np.random.seed(case.seed)
    output = layer.forward(x)
    loss = CrossEntropyLoss() if case.cross_entropy else L2Loss()
    value = loss.forward(output, label)
    error = loss.backward(label)
    return output, value, error, layer.backward(error)


def probe_label(case: Case, layer, x, rng, carried=None) -> np.ndarray:
    """A label shaped like the layer's output (one forward; a carried recurrent state is put back)."""
    if case.seed is not None:
        np.random.seed(case.seed)
    shape = layer.forward(x).shape
    if carried is not None:
        layer.state = carried
    return label_for(case, shape, rng)


def run(case: Case, layer, x, label=None, rng=None):
    """Prepare ``layer`` as the case says, then one step; a label is drawn if none is given."""
    carried = case.prepare(layer, x.dtype) if case.prepare else None
    if label is None:
        label = probe_label(case, layer, x, rng, carried)
    return label, step(case, layer, x, label)


def float64_twin(layer):
    """A copy of ``layer`` whose float32 arrays (parameters, statistics) are cast up to float64."""
    twin = copy.deepcopy(layer)
    for name, value in vars(twin).items():
        if isinstance(value, np.ndarray) and value.dtype == F32:
            setattr(twin, name, value.astype(np.float64))
    return twin


# -- (a) dtype contract -------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_dtype_contract(case):
    layer, x, rng = build(case)
    for name in case.parameters:
        assert getattr(layer, name).dtype == F32, f"{name} created as {getattr(layer, name).dtype}"
    _, (output, loss, error, input_gradient) = run(case, layer, x, rng=rng)
    assert output.dtype == F32
    assert np.isfinite(loss)
    assert error.dtype == F32, f"loss error is {error.dtype}"
    assert input_gradient.dtype == F32 and input_gradient.shape == x.shape
    for name in case.parameters:
        gradient = getattr(layer, f"gradient_{name}")
        assert gradient.dtype == F32, f"gradient_{name} is {gradient.dtype}"
    for part in getattr(layer, "state", None) or ():
        assert part.dtype == F32


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("case", TRAINABLE, ids=ids(TRAINABLE))
def test_parameters_stay_float32_after_updates(case, optimizer):
    layer, x, rng = build(case)
    layer.optimizer = OPTIMIZERS[optimizer]()
    before = {name: getattr(layer, name).copy() for name in case.parameters}
    label, _ = run(case, layer, x, rng=rng)
    step(case, layer, x, label)  # a second update: momentum and Adam now update existing state
    for name in case.parameters:
        value = getattr(layer, name)
        assert value.dtype == F32, f"{name} became {value.dtype} after {optimizer}"
        assert not np.array_equal(value, before[name]), f"{name} was not updated"
        state = layer.parameter_optimizer(name)
        for slot in ("velocity", "first_moment", "second_moment"):
            if getattr(state, slot, None) is not None:
                assert getattr(state, slot).dtype == F32, f"{optimizer}.{slot} of {name}: {getattr(state, slot).dtype}"


# -- (b) float32 gradients against float64 ones -------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_gradients_match_float64(case):
    layer, x, rng = build(case)
    twin = float64_twin(layer)
    label, (output, loss, _, input_gradient) = run(case, layer, x, rng=rng)
    x64, label64 = x.astype(np.float64), label.astype(np.float64)
    _, (output64, loss64, _, input_gradient64) = run(case, twin, x64, label64)
    assert output64.dtype == F64 and input_gradient64.dtype == F64  # the reference really is float64
    assert relative_error(output, output64) <= TOLERANCE
    assert loss == pytest.approx(loss64, rel=TOLERANCE)
    assert relative_error(input_gradient, input_gradient64) <= TOLERANCE
    for name in case.parameters:
        gradient, gradient64 = getattr(layer, f"gradient_{name}"), getattr(twin, f"gradient_{name}")
        assert getattr(twin, name).dtype == F64 and np.abs(gradient64).max() > 0
        assert relative_error(gradient, gradient64) <= TOLERANCE, name


# -- (c) PyTorch parity in float32 ----------------------------------------------------------------

def torch_loss(torch, case: Case, output, label):
    label = torch.from_numpy(label)
    if case.cross_entropy:
        return -(label * torch.log(output)).sum()
    return 0.5 * ((output - label) ** 2).sum()


def mirror_of(layer):
    """TorchMirror (float64 by construction) of a recurrent layer, switched to float32."""
    mirror = plugin("corenet_recurrent.conformance.helpers", "TorchMirror").of(layer)
    mirror.cell.float()
    mirror.linear.float()
    return mirror


def mirror_forward(torch, mirror, x, state):
    """The mirror's sigmoid output for x, starting from ``state`` (None: zeros), in float32."""
    if state is None:
        hidden, _ = mirror.cell(x)
    else:
        parts = tuple(torch.from_numpy(np.asarray(part, np.float32)).reshape(1, -1) for part in state)
        hidden, _ = mirror.cell(x, parts if mirror.lstm else parts[0])
    return torch.sigmoid(mirror.linear(hidden))


TORCH_CASES = [case for case in CASES if case.torch_fn or case.mirror]


@pytest.mark.parametrize("case", TORCH_CASES, ids=ids(TORCH_CASES))
def test_matches_torch_float32(case):
    torch = pytest.importorskip("torch")
    layer, x, rng = build(case)
    params = [torch.tensor(getattr(layer, name), requires_grad=True) for name in case.parameters]
    state = case.prepare(layer, np.float32) if case.prepare else None
    label = probe_label(case, layer, x, rng, state)
    output, loss, _, input_gradient = step(case, layer, x, label)

    x_t = torch.tensor(x, requires_grad=True)
    if case.mirror:
        mirror = mirror_of(layer)
        output_t = mirror_forward(torch, mirror, x_t, state)
    else:
        output_t = case.torch_fn(torch.nn.functional, x_t, params, layer, output)
    assert output_t.dtype == torch.float32
    loss_t = torch_loss(torch, case, output_t, label)
    loss_t.backward()
    theirs = dict(zip(case.parameters, mirror.gradients())) if case.mirror else {
        name: p.grad.numpy() for name, p in zip(case.parameters, params)}

    assert relative_error(output, output_t.detach().numpy()) <= TOLERANCE
    assert loss == pytest.approx(loss_t.item(), rel=TOLERANCE)
    assert relative_error(input_gradient, x_t.grad.numpy()) <= TOLERANCE
    for name in case.parameters:
        assert relative_error(getattr(layer, f"gradient_{name}"), theirs[name]) <= TOLERANCE, name


TORCH_OPTIMIZERS = {
    "Sgd": lambda torch, params: torch.optim.SGD(params, lr=0.05),
    # ours: v <- mu v - lr g; w + v. torch (dampening 0): b <- mu b + g; w - lr b; so v = -lr b
    "SgdWithMomentum": lambda torch, params: torch.optim.SGD(params, lr=0.05, momentum=0.9, dampening=0),
    "Adam": lambda torch, params: torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8),
}
STEP_CASES = [case for case in TRAINABLE if case.prepare is None]


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("case", STEP_CASES, ids=ids(STEP_CASES))
def test_optimizer_steps_match_torch_float32(case, optimizer):
    torch = pytest.importorskip("torch")
    layer, x, rng = build(case)
    start = [getattr(layer, name).copy() for name in case.parameters]
    if case.mirror:
        mirror = mirror_of(layer)
        torch_optimizer = TORCH_OPTIMIZERS[optimizer](torch, mirror.parameters())
    else:
        params = [torch.tensor(value, requires_grad=True) for value in start]
        torch_optimizer = TORCH_OPTIMIZERS[optimizer](torch, params)
    layer.optimizer = OPTIMIZERS[optimizer]()
    label = probe_label(case, layer, x, rng)
    for _ in range(4):
        output, *_ = step(case, layer, x, label)
        torch_optimizer.zero_grad()
        x_t = torch.from_numpy(x)
        if case.mirror:
            output_t = mirror_forward(torch, mirror, x_t, None)
        else:
            output_t = case.torch_fn(torch.nn.functional, x_t, params, layer, output)
        torch_loss(torch, case, output_t, label).backward()
        torch_optimizer.step()
    theirs = mirror.weights() if case.mirror else [p.detach().numpy() for p in params]
    for name, initial, final in zip(case.parameters, start, theirs):
        ours = getattr(layer, name)
        assert ours.dtype == F32
        change, change_t = ours - initial, np.asarray(final) - initial
        assert np.abs(change).max() > 1e-4, f"{name} did not train"
        assert relative_error(change, change_t) <= TOLERANCE, name


# -- (d) a LeNet in float32 ---------------------------------------------------------------------

def image_batch(batch: int = 4) -> FixedBatch:
    """The same float32 batch of 28x28 images and one-hot labels on every next()."""
    rng = np.random.default_rng(3)
    return FixedBatch(rng.random((batch, 1, 28, 28)).astype(np.float32), one_hot((batch, 10), rng))


def lenet() -> NeuralNetwork:
    """corenet_lenet.lenet.build() when installed, else the same Conv/ReLU/Pooling/FC/SoftMax stack."""
    try:
        from corenet_lenet.lenet import build as build_lenet
    except ImportError:
        build_lenet = None
    if build_lenet is not None:
        return build_lenet()
    net = NeuralNetwork(Adam(5e-4), He(), He())
    net.loss_layer = CrossEntropyLoss()
    for layer in (Conv(1, (1, 5, 5), 6), ReLU(), Pooling(2, 2), Conv(1, (6, 5, 5), 16), ReLU(), Pooling(2, 2),
                  Flatten(), FullyConnected(16 * 7 * 7, 84), ReLU(), FullyConnected(84, 10), SoftMax()):
        net.append_layer(layer)
    return net


def test_lenet_trains_in_float32():
    np.random.seed(0)
    net = lenet()
    net.data_layer = image_batch()
    net.train(3)
    assert len(net.loss) == 3 and np.all(np.isfinite(net.loss))
    trainable = [layer for layer in net.layers if getattr(layer, "trainable", False)]
    assert trainable
    for layer in trainable:
        for name in layer.parameter_names:
            assert getattr(layer, name).dtype == F32, f"{layer!r}.{name}"
            assert getattr(layer, f"gradient_{name}").dtype == F32, f"{layer!r}.gradient_{name}"
            adam = layer.parameter_optimizer(name)
            assert adam.iteration == 3
            assert adam.first_moment.dtype == F32 and adam.second_moment.dtype == F32, f"{layer!r}.{name}"
    # every activation and every error on the way back is float32
    activation = net.data_layer.input_tensor
    for layer in net.layers:
        activation = layer.forward(activation)
        assert activation.dtype == F32, f"{layer!r} output"
    assert np.isfinite(net.loss_layer.forward(activation, net.data_layer.label_tensor))
    error = net.loss_layer.backward(net.data_layer.label_tensor)
    assert error.dtype == F32
    for layer in reversed(net.layers):
        error = layer.backward(error)
        assert error.dtype == F32, f"{layer!r} input gradient"
    assert net.test(net.data_layer.input_tensor).dtype == F32


# -- (e) BatchNormalization's float32 statistics -------------------------------------------------

RATIOS = np.concatenate([[0.0], np.logspace(0, 4, 17)])  # mean / standard deviation


@pytest.mark.parametrize("tier", ["reference", "fast"])
@pytest.mark.parametrize("shape", [(64, 16, 14, 14), (300, 4), (2, 2, 128, 128)], ids=["image", "vector", "large"])
def test_batchnorm_float32_statistics_match_float64(tier, shape):
    """For every mean/std ratio from 1 to 1e4 (and 0), a float32 batch gives per-channel mean and variance
    within 1e-6 (relative) of those of the same numbers in float64, and parameter gradients within float32's
    rounding of a sum."""
    corenet.set_default_dtype(np.float64)  # moving statistics kept in float64: they show the batch's exactly
    try:
        cls = corenet.get_registry().implementation("layers", "BatchNormalization", tier)
    except RegistryError:
        pytest.skip(f"no {tier} BatchNormalization installed")
    rng = np.random.default_rng(0)
    for ratio in RATIOS:
        x32 = (ratio + rng.standard_normal(shape)).astype(np.float32)
        error32 = rng.standard_normal(shape).astype(np.float32)
        single, double = cls(shape[1]), cls(shape[1])
        single.forward(x32)
        double.forward(x32.astype(np.float64))
        np.testing.assert_allclose(single.moving_mean, double.moving_mean, rtol=1e-6, atol=1e-7,
                                   err_msg=f"mean/std {ratio}")
        np.testing.assert_allclose(single.moving_variance, double.moving_variance, rtol=1e-6,
                                   err_msg=f"mean/std {ratio}")
        single.backward(error32)
        double.backward(error32.astype(np.float64))
        # float32 sums of m products stay far within 1e-5 of the sum of |products| (|x̂| < 6 here)
        scale = 6 * np.sum(np.abs(error32.astype(np.float64)), axis=(0, *range(2, len(shape))))
        assert np.all(np.abs(single.gradient_weights - double.gradient_weights) <= 1e-5 * scale)
        assert np.all(np.abs(single.gradient_bias - double.gradient_bias) <= 1e-5 * scale)
