"""The tests every recurrent layer (RNN, LSTM) must pass, whoever wrote it.

``class TestRNN(RecurrentContract)`` with ``name = "RNN"`` tests ``impl("RNN")``: the
installed RNN or an explicit target (``corenet check my_rnn.py:RNN --as RNN``). This base
is not collected on its own (its name does not start with ``Test``).

Tiers:

- ``contract``: only what the exercise asks. The layer is seen through ``weights``,
  ``gradient_weights``, ``optimizer``, ``memorize``, ``initialize``,
  ``calculate_regularization_loss``, ``trainable`` and ``testing_phase``. The output
  layer's weights, which the exercise gives no attribute, are controlled with
  initializers that hand out known arrays, and their gradient is read from what
  backward hands the optimizer.
- ``reference``: the same weights (found through initialize) in corenet's reference
  layer and in PyTorch; forward, backward, ``gradient_weights`` and several training
  steps must agree, and the usual bugs are named.
- ``corenet``: corenet's extras (``state``, ``output_weights``, dtype rules, error wording).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from corenet.checking.expect import (
    expect,
    expect_attribute,
    expect_close,
    expect_equal,
    expect_gradient,
    expect_shape,
    fail,
)
from corenet.checking.probes import (
    KnownArrays,
    Probe,
    Tracked,
    find,
    footprint,
    growth,
    locate,
    shared_optimizer,
)
from corenet.errors import ShapeError
from corenet.initializers import Constant, Xavier
from corenet.optimizers import Adam, Sgd, SgdWithMomentum
from corenet.testing import L2Loss, ReferenceL2, gradient_check, gradient_check_weights
from corenet_recurrent.conformance.helpers import (
    SIZES,
    TIME,
    ControlError,
    Replay,
    TorchMirror,
    control,
    textbook_backward,
    textbook_forward,
    weights_shape,
    which_step_was_kept,
)

GRADIENT_TOLERANCE = 1e-5
AGREEMENT = {"rtol": 1e-9, "atol": 1e-11}
TORCH_TOLERANCE = 1e-8
OPTIMIZERS = {
    "sgd": lambda: Sgd(0.5),
    "momentum": lambda: SgdWithMomentum(0.3, 0.9),
    "adam": lambda: Adam(0.05, 0.9, 0.999),
}
N_IN, HIDDEN, N_OUT = SIZES


def sequence(seed: int = 1, time: int = TIME) -> tuple[np.ndarray, np.ndarray]:
    """(time, input_size) inputs and (time, output_size) targets in (0, 1)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(time, N_IN)), rng.uniform(0.1, 0.9, size=(time, N_OUT))


def known_layer(cls, seed: int = 21):
    """``cls(*SIZES)`` initialized with known arrays (returned too, for replays)."""
    initializers = KnownArrays(seed), KnownArrays(seed + 1)
    layer = cls(*SIZES)
    layer.initialize(*initializers)
    return layer, initializers


def reinitialized(cls, initializers):
    """A fresh ``cls(*SIZES)`` given the same known arrays again."""
    for initializer in initializers:
        initializer.rewind()
    layer = cls(*SIZES)
    layer.initialize(*initializers)
    return layer


def backward_checked(layer, error, log) -> np.ndarray:
    """``layer.backward(error)``; a shared optimizer copy (logged by Tracked) fails with its name."""
    del log[:]
    try:
        result = layer.backward(error)
    except Exception:
        problem = shared_optimizer(log)
        if problem:
            fail(problem)
        raise
    problem = shared_optimizer(log)
    if problem:
        fail(problem)
    return result


class RecurrentContract:
    """Shared behaviour of RNN and LSTM (``name``, ``lstm`` set by the subclass)."""

    name = "RNN"
    lstm = False

    @pytest.fixture
    def cls(self, impl):
        return impl(self.name)

    @property
    def shape(self) -> tuple[int, int]:
        return weights_shape(self.lstm)

    # == contract =====================================================================================
    def test_flags(self, cls):
        layer = cls(*SIZES)
        expect_equal(getattr(layer, "trainable", None), True, f"{self.name}(...).trainable",
                     "a layer with weights sets trainable True")
        expect_equal(getattr(layer, "testing_phase", None), False, f"{self.name}(...).testing_phase")
        expect_equal(expect_attribute(layer, "memorize", f"{self.name}(...)"), False,
                     f"{self.name}(...).memorize", "the exercise initializes memorize with False")

    def test_forward_and_backward_shapes(self, cls):
        layer, _ = known_layer(cls)
        x, labels = sequence()
        output = layer.forward(x)
        expect_shape(output, (TIME, N_OUT), f"forward output of {self.name}{SIZES} for a ({TIME}, {N_IN}) sequence",
                     "the batch axis is time: one output row per time step")
        expect_shape(layer.backward(np.asarray(output) - labels), (TIME, N_IN), "backward output",
                     "one error row per time step, input_size wide")

    def test_weights_and_gradient_weights_shapes(self, cls):
        layer, _ = known_layer(cls)
        weights = np.asarray(expect_attribute(layer, "weights", f"{self.name}(...)"))
        rows = f"input_size + hidden_size + 1 = {self.shape[0]} rows: the hidden layer's stacked weights"
        expect(weights.shape in (self.shape, self.shape[::-1]),
               f"weights has shape {weights.shape}, expected {self.shape} ({rows}) or its transpose")
        x, labels = sequence()
        layer.backward(np.asarray(layer.forward(x)) - labels)
        expect_shape(np.asarray(expect_attribute(layer, "gradient_weights", f"{self.name}(...)")), weights.shape,
                     "gradient_weights", "it has the shape of weights")

    def test_initialize_sets_every_weight(self, cls):
        layer = cls(*SIZES)
        layer.initialize(Constant(0.0), Constant(0.0))
        x, _ = sequence()
        expect_close(layer.forward(5 * x), np.full((TIME, N_OUT), 0.5),
                     "forward output after initialize(Constant(0), Constant(0))",
                     "with every weight and bias zero the output is sigmoid(0) = 0.5: initialize must set both "
                     "the hidden and the output layer from the two initializers", rtol=0, atol=1e-12)
        layer, (weights_init, _) = known_layer(cls)
        expect(weights_init.with_fans(HIDDEN, N_OUT),
               f"initialize never asked its weights initializer for the output layer (fan_in {HIDDEN} = "
               f"hidden_size, fan_out {N_OUT} = output_size); got fans "
               f"{[(r.fan_in, r.fan_out) for r in weights_init.requests]}")
        handed_out = np.concatenate([r.array.ravel() for r in weights_init.requests])
        found = int(np.isin(np.asarray(layer.weights, dtype=np.float64), handed_out).sum())
        expect(found >= (self.shape[0] - 1) * self.shape[1],
               f"after initialize, weights holds {found} of the values the weights initializer returned, expected "
               f"all {(self.shape[0] - 1) * self.shape[1]} weights of the hidden layer (its bias row comes from the "
               f"bias initializer)")

    def test_memorize_off_starts_every_sequence_from_zero(self, cls):
        layer, _ = known_layer(cls)
        x, _ = sequence()
        first = np.array(layer.forward(x))
        expect(np.allclose(layer.forward(x), first, rtol=0, atol=1e-12),
               "hidden state leaks between sequences: with memorize False a second forward of the same sequence gave "
               "other outputs; every forward must start from a zero hidden state")

    def test_memorize_on_carries_the_state(self, cls):
        layer, initializers = known_layer(cls)
        x, _ = sequence(time=10)
        layer.memorize = True
        halves = np.vstack([layer.forward(x[:4]), layer.forward(x[4:])])
        whole = reinitialized(cls, initializers).forward(x)
        expect_close(halves, whole, "forward(x[:4]) then forward(x[4:]) with memorize True",
                     "they must equal forward(x) in one call: carry the last hidden state (the LSTM's cell state "
                     "too) into the next call", **AGREEMENT)
        layer.memorize = False
        expect(np.allclose(layer.forward(x), whole, **AGREEMENT),
               "hidden state leaks between sequences: after switching memorize off, forward did not start from zeros")

    def test_gradient_input(self, cls):
        layer, _ = known_layer(cls)
        x, labels = sequence()
        expect_gradient(gradient_check([layer, L2Loss()], x, labels), "the error backward returns (w.r.t. the input)",
                        tolerance=GRADIENT_TOLERANCE)

    def test_gradient_weights(self, cls):
        layer, _ = known_layer(cls)
        x, labels = sequence()
        error = gradient_check_weights([layer, L2Loss()], x, labels, parameter="weights")
        expect_gradient(error, "gradient_weights (summed over all time steps)", "forward must use the weights "
                        "assigned to layer.weights; backward sums every step's gradient", tolerance=GRADIENT_TOLERANCE)

    def test_gradient_of_every_tensor_the_optimizer_updates(self, cls):
        """Central differences w.r.t. every array initialize() handed out (the output layer's too) against the
        gradient backward gives the optimizer for the tensor holding it."""
        layer, initializers = known_layer(cls)
        x, labels = sequence()
        probe = Probe()
        layer.optimizer = probe
        layer.backward(np.asarray(layer.forward(x)) - labels)
        expect(probe.log, "with an optimizer set, backward never called optimizer.calculate_update(weights, "
               "gradient): backward must update the weights through the optimizer")

        def loss() -> float:
            output = np.asarray(reinitialized(cls, initializers).forward(x), dtype=np.float64)
            return 0.5 * float(np.sum((output - labels) ** 2))

        for kind, initializer in zip(("weights", "bias"), initializers):
            for request in initializer.requests:
                # the update holding most of this array (an implementation may overwrite part of it, e.g. asking
                # for the bias row from the weights initializer and then replacing it)
                update, (at, found) = max(((u, find(request.array, u.weights)) for u in probe.log),
                                          key=lambda pair: int(pair[1][1].sum()))
                what = f"the {kind} initializer's array of shape {request.shape} (fans {request.fan_in}, " \
                       f"{request.fan_out})"
                expect(found.any(), f"{what} never reaches optimizer.calculate_update: backward must update "
                       f"every weight tensor, the output layer's too")
                analytic = update.gradient.ravel()[at[found]]
                numeric = np.zeros(int(found.sum()))
                flat = request.array.reshape(-1)
                for count, index in enumerate(np.flatnonzero(found)):
                    original = flat[index]
                    flat[index] = original + 1e-5
                    plus = loss()
                    flat[index] = original - 1e-5
                    minus = loss()
                    flat[index] = original
                    numeric[count] = (plus - minus) / 2e-5
                scale = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300)
                expect_gradient(float(np.linalg.norm(analytic - numeric) / scale),
                                f"the gradient backward hands the optimizer for {what}", tolerance=GRADIENT_TOLERANCE)

    def test_gradient_of_a_memorized_second_sequence(self, cls):
        first, _ = sequence(seed=5)
        x, labels = sequence(seed=6)
        replay = Replay(cls, first)
        expect_gradient(gradient_check([replay, L2Loss()], x, labels),
                        "the error backward returns for a second sequence with memorize True",
                        "backward goes through this sequence only, starting from the carried state",
                        tolerance=GRADIENT_TOLERANCE)
        expect_gradient(gradient_check_weights([replay, L2Loss()], x, labels, parameter="weights"),
                        "gradient_weights for a second sequence with memorize True", tolerance=GRADIENT_TOLERANCE)

    def test_error_at_the_last_step_reaches_the_first_input(self, cls):
        layer, _ = known_layer(cls)
        x, _ = sequence()
        layer.forward(x)
        error = np.zeros((TIME, N_OUT))
        error[-1] = 1.0
        dx = np.asarray(layer.backward(error))
        expect(np.abs(dx[0]).max() > 1e-8, "an error only at the last output gives no error at the first input: "
               "backward must go through time (full BPTT), not step by step")

    def test_optimizer_updates_the_weights(self, cls):
        layer, _ = known_layer(cls)
        x, labels = sequence()
        before = np.array(layer.weights, dtype=np.float64)
        layer.backward(np.asarray(layer.forward(x)) - labels)
        expect_close(layer.weights, before, "weights after backward without an optimizer",
                     "no optimizer: no update", rtol=0, atol=0)
        layer.optimizer = Sgd(0.5)
        before = np.array(layer.weights, dtype=np.float64)
        layer.backward(np.asarray(layer.forward(x)) - labels)
        expect_close(layer.weights, before - 0.5 * np.asarray(layer.gradient_weights),
                     "weights after one Sgd(0.5) step",
                     "backward sets weights to optimizer.calculate_update(weights, gradient_weights)",
                     rtol=1e-10, atol=1e-12)

    def test_training_grows_the_output(self, cls):
        """The course's update test: descending on -0.5 |y|^2 must grow the output every step."""
        layer, _ = known_layer(cls)
        layer.optimizer = Sgd(1)
        x, _ = sequence()
        for step in range(10):
            output = np.array(layer.forward(x))
            layer.backward(-output)
            grown = np.asarray(layer.forward(x))
            expect(np.sum(grown**2) > np.sum(output**2), f"training step {step + 1} on the error -output did not "
                   f"grow the output: backward must update both weight sets with the optimizer")

    def test_regularization_loss(self, cls):
        layer, _ = known_layer(cls)
        layer.optimizer = Sgd(0.1)
        expect_close(layer.calculate_regularization_loss(), 0.0, "calculate_regularization_loss() without a "
                     "regularizer")
        probe = Probe()  # records the weight tensors backward updates: both weight sets, as the layer holds them
        probe.add_regularizer(ReferenceL2(0.3))
        layer.optimizer = probe
        loss = float(layer.calculate_regularization_loss())
        x, labels = sequence()
        layer.backward(np.asarray(layer.forward(x)) - labels)
        hidden_only = 0.3 * float(np.sum(np.asarray(layer.weights, dtype=np.float64) ** 2))
        both = 0.3 * sum(float(np.sum(update.weights**2)) for update in probe.log)
        expect(np.isclose(loss, hidden_only, rtol=1e-9) or np.isclose(loss, both, rtol=1e-9),
               f"calculate_regularization_loss() with an L2 regularizer (alpha 0.3) is {loss:.6g}, expected the "
               f"regularizer's norm of the weights ({hidden_only:.6g}) or of every weight tensor ({both:.6g})")

    # == reference ===================================================================================
    def controlled(self, cls):
        """The layer under test with known weights (API.md layout); fails naming a gate/row swap."""
        try:
            return control(cls, self.lstm, sequence(seed=3)[0])
        except ControlError as exc:
            fail(str(exc))

    def twin(self, impl, controlled):
        """corenet's reference layer with the controlled layer's weights."""
        layer = impl.reference(self.name)(*SIZES)
        layer.weights = controlled.weights.copy()
        layer.output_weights = controlled.output_weights.copy()
        return layer

    def expect_gradient_weights(self, controlled, twin, weights, state, x, error, what: str) -> None:
        """The layer's gradient_weights equals the reference's; a sum over too few steps is named.

        ``weights`` and ``state`` are what the forward of ``x`` started from (API layout).
        """
        gradient = controlled.api(controlled.layer.gradient_weights)
        if not np.allclose(gradient, twin.gradient_weights, **AGREEMENT):
            trace = textbook_forward(weights, controlled.output_weights, x, state, self.lstm)
            named = which_step_was_kept(gradient, textbook_backward(trace, error).shares)
            if named:
                fail(named)
        expect_close(gradient, twin.gradient_weights, what, **AGREEMENT)

    @pytest.mark.reference
    def test_weights_follow_the_api_layout(self, cls):
        """Forward equals the textbook cell with the weights found through initialize (names gate/row swaps)."""
        expect_shape(self.controlled(cls).weights, self.shape, "weights in API.md's layout")

    @pytest.mark.reference
    def test_forward_and_backward_agree_with_the_reference(self, cls, impl):
        controlled = self.controlled(cls)
        twin = self.twin(impl, controlled)
        layer = controlled.layer
        x, labels = sequence()
        output = layer.forward(x)
        expected = twin.forward(x)
        expect_close(output, expected, "forward output", **AGREEMENT)
        error = expected - labels
        probe = Probe()
        layer.optimizer = probe
        expect_close(layer.backward(error), twin.backward(error), "backward output (error w.r.t. the input)",
                     **AGREEMENT)
        self.expect_gradient_weights(controlled, twin, controlled.weights, None, x, error, "gradient_weights")
        updated = [u for u in probe.log if locate(controlled.output_weights[:-1], u.weights) is not None]
        expect(updated, "backward never hands the output layer's weights to the optimizer")
        update = updated[0]
        for part, rows in (("weights", slice(None, -1)), ("bias", slice(-1, None))):
            at = locate(controlled.output_weights[rows], update.weights)
            if at is not None:
                expect_close(update.gradient.ravel()[at], twin.gradient_output_weights[rows].ravel(),
                             f"the gradient of the output layer's {part} given to the optimizer", **AGREEMENT)

    @pytest.mark.reference
    @pytest.mark.parametrize("memorize", [False, True], ids=["memorize-off", "memorize-on"])
    @pytest.mark.parametrize("kind", list(OPTIMIZERS))
    def test_training_agrees_with_the_reference(self, cls, impl, kind, memorize):
        controlled = self.controlled(cls)
        twin = self.twin(impl, controlled)
        layer, log = controlled.layer, []
        layer.optimizer = Tracked(OPTIMIZERS[kind](), log)
        twin.optimizer = OPTIMIZERS[kind]()
        layer.memorize = twin.memorize = memorize
        steps = 5
        for step in range(1, steps + 1):
            x, labels = sequence(seed=100 + step)
            hint = f"with {kind}, memorize {memorize}; step {step} of {steps}"
            weights, state = twin.weights.copy(), twin.state if memorize else None  # what this step starts from
            expected = twin.forward(x)
            expect_close(layer.forward(x), expected, f"forward output ({hint})",
                         None if step == 1 else "the previous step's update differs", **AGREEMENT)
            error = expected - labels
            dx = backward_checked(layer, error, log)
            expect_close(dx, twin.backward(error), f"backward output ({hint})", **AGREEMENT)
            self.expect_gradient_weights(controlled, twin, weights, state, x, error, f"gradient_weights ({hint})")
            expect_close(controlled.api(layer.weights), twin.weights, f"weights after the update ({hint})",
                         "backward must set weights to what its own optimizer copy returns", **AGREEMENT)
        x, _ = sequence(seed=200)
        expect_close(layer.forward(x), twin.forward(x), f"forward output after {steps} {kind} steps",
                     "the output layer's updates differ", **AGREEMENT)

    @pytest.mark.reference
    def test_memorize_off_does_not_leak_state(self, cls, impl):
        controlled = self.controlled(cls)
        twin = self.twin(impl, controlled)
        layer = controlled.layer
        first, _ = sequence(seed=7)
        x, _ = sequence(seed=8)
        layer.forward(first)
        output = np.asarray(layer.forward(x), dtype=np.float64)
        expected = twin.forward(x)
        if not np.allclose(output, expected, **AGREEMENT):
            carried = textbook_forward(controlled.weights, controlled.output_weights, first, lstm=self.lstm).state
            continued = textbook_forward(controlled.weights, controlled.output_weights, x, carried, self.lstm).outputs
            if np.allclose(output, continued, **AGREEMENT):
                fail("hidden state leaks between sequences: with memorize False the second forward continued from "
                     "the first call's last hidden state instead of zeros")
        expect_close(output, expected, "forward output of a second sequence with memorize False", **AGREEMENT)

    @pytest.mark.reference
    def test_memory_stays_flat(self, cls):
        controlled = self.controlled(cls)
        layer = controlled.layer
        layer.optimizer = Adam(1e-3)
        layer.memorize = True
        x, labels = sequence()

        def calls(count: int) -> None:
            for _ in range(count):
                layer.backward(np.asarray(layer.forward(x)) - labels)

        calls(3)
        before = footprint(layer)
        calls(20)
        grown = growth(before, footprint(layer), 20)
        expect(grown is None, f"memory grows with every call: {grown}; keep only the current sequence's values "
               f"(start each forward with fresh lists, or overwrite them)")

    @pytest.mark.reference
    def test_regularization_loss_agrees_with_the_reference(self, cls, impl):
        controlled = self.controlled(cls)
        twin = self.twin(impl, controlled)
        for layer in (controlled.layer, twin):
            optimizer = Sgd(0.1)
            optimizer.add_regularizer(ReferenceL2(0.3))
            layer.optimizer = optimizer
        expect_close(controlled.layer.calculate_regularization_loss(), twin.calculate_regularization_loss(),
                     "calculate_regularization_loss() with an L2 regularizer",
                     "API.md: the regularizer's norm summed over both weight sets", rtol=1e-9, atol=0)

    @pytest.mark.reference
    @pytest.mark.parametrize("carried", [False, True], ids=["zero-state", "carried-state"])
    def test_agrees_with_torch(self, cls, carried):
        torch = pytest.importorskip("torch")
        controlled = self.controlled(cls)
        layer = controlled.layer
        mirror = TorchMirror(*SIZES, self.lstm, controlled.weights, controlled.output_weights)
        x, _ = sequence(time=8)
        error = np.random.default_rng(4).normal(size=(8, N_OUT))
        state = None
        if carried:
            first = sequence(seed=9, time=5)[0]
            layer.memorize = True
            layer.forward(first)
            state = textbook_forward(controlled.weights, controlled.output_weights, first, lstm=self.lstm).state
        output = layer.forward(x)
        probe = Probe()
        layer.optimizer = probe
        dx = layer.backward(error)
        xt = torch.tensor(x, requires_grad=True)
        yt, _ = mirror.forward(xt, state)
        (yt * torch.from_numpy(error)).sum().backward()
        expect_close(output, yt.detach().numpy(), "forward output vs torch", rtol=0, atol=TORCH_TOLERANCE)
        expect_close(dx, xt.grad.numpy(), "backward output vs torch", rtol=0, atol=TORCH_TOLERANCE)
        gradient_weights, gradient_output_weights = mirror.gradients()
        expect_close(controlled.api(layer.gradient_weights), gradient_weights, "gradient_weights vs torch", rtol=0,
                     atol=TORCH_TOLERANCE)
        update = next(u for u in probe.log if locate(controlled.output_weights[:-1], u.weights) is not None)
        at = locate(controlled.output_weights[:-1], update.weights)
        expect_close(update.gradient.ravel()[at], gradient_output_weights[:-1].ravel(),
                     "the output layer's weight gradient vs torch", rtol=0, atol=TORCH_TOLERANCE)

    @pytest.mark.reference
    @pytest.mark.parametrize("memorize", [False, True], ids=["memorize-off", "memorize-on"])
    @pytest.mark.parametrize("kind", ["adam", "momentum"])
    def test_training_agrees_with_torch(self, cls, kind, memorize):
        torch = pytest.importorskip("torch")
        controlled = self.controlled(cls)
        layer = controlled.layer
        mirror = TorchMirror(*SIZES, self.lstm, controlled.weights, controlled.output_weights)
        if kind == "adam":
            layer.optimizer = Adam(0.02, 0.9, 0.999)
            optimizer = torch.optim.Adam(mirror.parameters(), lr=0.02, betas=(0.9, 0.999), eps=1e-8)
        else:
            # ours: v <- mu v - lr g; w + v. torch (dampening 0): b <- mu b + g; w - lr b; v = -lr b.
            layer.optimizer = SgdWithMomentum(0.05, 0.9)
            optimizer = torch.optim.SGD(mirror.parameters(), lr=0.05, momentum=0.9, dampening=0)
        layer.memorize = memorize
        state = None
        for step in range(12):
            x, labels = sequence(seed=100 + step)
            layer.backward(np.asarray(layer.forward(x)) - labels)  # L = 0.5 ||y - labels||^2
            optimizer.zero_grad()
            yt, final = mirror.forward(torch.from_numpy(x), state if memorize else None)
            (0.5 * ((yt - torch.from_numpy(labels)) ** 2).sum()).backward()
            optimizer.step()
            state = final
        weights, _ = mirror.weights()
        expect(np.abs(controlled.api(layer.weights) - controlled.weights).max() > 1e-2, "12 training steps did not "
               "change the weights")
        expect_close(controlled.api(layer.weights), weights, f"weights after 12 {kind} steps vs torch", rtol=0,
                     atol=TORCH_TOLERANCE)
        x, _ = sequence(seed=300)
        expected, _ = mirror.forward(torch.from_numpy(x), state if memorize else None)
        expect_close(layer.forward(x), expected.detach().numpy(), f"forward output after 12 {kind} steps vs torch",
                     "the output layer's updates differ", rtol=0, atol=TORCH_TOLERANCE)

    # == corenet extras ==============================================================================
    def make(self, cls, seed: int = 0):
        np.random.seed(seed)
        return cls(*SIZES)

    @pytest.mark.corenet
    def test_corenet_shapes_and_defaults(self, cls):
        layer = self.make(cls)
        assert layer.weights.shape == layer.weights_shape == self.shape
        assert layer.output_weights.shape == layer.output_weights_shape == (HIDDEN + 1, N_OUT)
        assert layer.gradient_weights.shape == layer.weights.shape
        assert layer.gradient_output_weights.shape == layer.output_weights.shape
        assert layer.optimizer is None and layer.weights.dtype == np.float64
        assert layer.gates == (4 if self.lstm else 1)

    @pytest.mark.corenet
    @pytest.mark.parametrize("argument", [0, 1, 2])
    @pytest.mark.parametrize("value", [0, -3, 2.5, True, "4"])
    def test_rejects_bad_sizes(self, cls, argument, value):
        sizes = list(SIZES)
        sizes[argument] = value
        name = ("input_size", "hidden_size", "output_size")[argument]
        with pytest.raises(ValueError, match=rf"{self.name}: {name} must be a positive integer"):
            cls(*sizes)

    @pytest.mark.corenet
    def test_state_after_forward_is_the_textbook_state(self, cls):
        layer = self.make(cls)
        x, _ = sequence()
        trace = textbook_forward(layer.weights, layer.output_weights, x, lstm=self.lstm)
        np.testing.assert_allclose(layer.forward(x), trace.outputs, rtol=0, atol=1e-12)
        assert len(layer.state) == layer.state_parts
        for ours, theirs in zip(layer.state, trace.state):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)

    @pytest.mark.corenet
    def test_float32_in_float32_out(self, cls):
        layer = self.make(cls)
        x, labels = sequence()
        y = layer.forward(x.astype(np.float32))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, textbook_forward(layer.weights, layer.output_weights, x, lstm=self.lstm).outputs,
                                   atol=1e-5)
        assert layer.backward((y - labels).astype(np.float32)).dtype == np.float32
        assert layer.gradient_weights.dtype == np.float32

    @pytest.mark.corenet
    def test_integer_input_computed_as_float(self, cls):
        layer = self.make(cls)
        x = np.arange(TIME * N_IN).reshape(TIME, N_IN) % 3 - 1
        y = layer.forward(x)
        assert y.dtype == np.float64
        expected = textbook_forward(layer.weights, layer.output_weights, x.astype(float), lstm=self.lstm).outputs
        np.testing.assert_allclose(y, expected, atol=1e-12)

    @pytest.mark.corenet
    def test_forward_uses_assigned_integer_weights(self, cls):
        layer = self.make(cls)
        x, _ = sequence()
        before = layer.forward(x)
        layer.weights = np.ones(layer.weights_shape, dtype=int)
        shape = layer.output_weights_shape
        layer.output_weights = np.arange(shape[0] * shape[1]).reshape(shape) % 2
        after = layer.forward(x)
        assert not np.allclose(before, after)
        expected = textbook_forward(layer.weights, layer.output_weights, x, lstm=self.lstm).outputs
        np.testing.assert_allclose(after, expected, atol=1e-12)

    @pytest.mark.corenet
    def test_reset_state_forgets(self, cls):
        layer = self.make(cls)
        x, _ = sequence()
        layer.memorize = True
        fresh = layer.forward(x)
        assert not np.allclose(layer.forward(x), fresh)
        layer.reset_state()
        assert layer.state is None
        np.testing.assert_array_equal(layer.forward(x), fresh)

    @pytest.mark.corenet
    def test_state_assignment_is_checked(self, cls):
        layer = self.make(cls)
        with pytest.raises(ShapeError, match=r"state must be"):
            layer.state = tuple(np.zeros(HIDDEN + 1) for _ in range(layer.state_parts))
        with pytest.raises(ShapeError, match=r"state must be"):
            layer.state = tuple(np.zeros(HIDDEN) for _ in range(layer.state_parts + 1))

    @pytest.mark.corenet
    def test_gradient_output_weights(self, cls):
        layer = self.make(cls)
        x, labels = sequence()
        error = gradient_check_weights([layer, L2Loss()], x, labels, parameter="output_weights")
        assert error <= GRADIENT_TOLERANCE

    @pytest.mark.corenet
    def test_each_weight_set_has_its_own_optimizer_copy(self, cls):
        layer = self.make(cls)
        optimizer = Adam(1e-3)
        layer.optimizer = optimizer
        assert layer.optimizer is optimizer
        copies = [layer.parameter_optimizer(name) for name in ("weights", "output_weights")]
        assert copies[0] is not copies[1] and optimizer not in copies
        x, labels = sequence()
        layer.backward(layer.forward(x) - labels)
        assert copies[0].first_moment.shape == layer.weights.shape
        assert copies[1].first_moment.shape == layer.output_weights.shape
        assert optimizer.first_moment is None

    @pytest.mark.corenet
    def test_backward_updates_both_weight_sets(self, cls):
        layer = self.make(cls)
        layer.optimizer = Sgd(0.5)
        before = layer.weights.copy(), layer.output_weights.copy()
        x, labels = sequence()
        layer.backward(layer.forward(x) - labels)
        np.testing.assert_allclose(layer.weights, before[0] - 0.5 * layer.gradient_weights, atol=1e-15)
        np.testing.assert_allclose(layer.output_weights, before[1] - 0.5 * layer.gradient_output_weights, atol=1e-15)

    @pytest.mark.corenet
    def test_initialize_fans_and_bias_shapes(self, cls):
        from corenet.checking.doubles import RecordingInitializer

        layer = self.make(cls)
        weights_init, bias_init = RecordingInitializer(0.25), RecordingInitializer(-0.5)
        layer.initialize(weights_init, bias_init)
        columns = self.shape[1]
        fan_in = N_IN + HIDDEN
        assert weights_init.calls == [((fan_in, columns), fan_in, columns), ((HIDDEN, N_OUT), HIDDEN, N_OUT)]
        assert bias_init.calls == [((1, columns), fan_in, columns), ((1, N_OUT), HIDDEN, N_OUT)]
        assert np.all(layer.weights[:-1] == 0.25) and np.all(layer.weights[-1] == -0.5)
        assert np.all(layer.output_weights[:-1] == 0.25) and np.all(layer.output_weights[-1] == -0.5)

    @pytest.mark.corenet
    def test_initialize_draws_from_the_global_generator(self, cls):
        layer = self.make(cls)
        np.random.seed(3)
        layer.initialize(Xavier(), Constant(0.1))
        first = layer.weights.copy()
        np.random.seed(3)
        layer.initialize(Xavier(), Constant(0.1))
        np.testing.assert_array_equal(layer.weights, first)
        assert np.all(layer.weights[-1] == 0.1)

    @pytest.mark.corenet
    @pytest.mark.parametrize("kind", ["L1_Regularizer", "L2_Regularizer"])
    def test_network_loss_includes_regularization(self, cls, impl, kind):
        from corenet.checking.doubles import FixedBatch
        from corenet.network import NeuralNetwork

        regularizer = impl.reference(kind)
        alpha = 0.05
        optimizer = Sgd(1e-3)
        optimizer.add_regularizer(regularizer(alpha))
        net = NeuralNetwork(optimizer, Xavier(), Constant(0.1))
        x, labels = sequence()
        net.data_layer = FixedBatch(x, labels)
        net.loss_layer = L2Loss()
        layer = self.make(cls)
        net.append_layer(layer)
        weights, output_weights = layer.weights.copy(), layer.output_weights.copy()
        loss = net.forward()
        data_loss = 0.5 * np.sum((layer.forward(x) - labels) ** 2)
        norm = (lambda w: np.abs(w).sum()) if kind == "L1_Regularizer" else (lambda w: (w**2).sum())
        penalty = alpha * (norm(weights) + norm(output_weights))
        assert loss == pytest.approx(data_loss + penalty, rel=1e-12)
        net.backward()  # the update subtracts lr * regularizer gradient on top of the step
        shrink = alpha * (np.sign(weights) if kind == "L1_Regularizer" else weights)
        np.testing.assert_allclose(layer.weights, weights - 1e-3 * layer.gradient_weights - 1e-3 * shrink, atol=1e-15)

    @pytest.mark.corenet
    def test_wrong_feature_count_names_layer_and_sizes(self, cls):
        layer = self.make(cls)
        with pytest.raises(ShapeError) as caught:
            layer.forward(np.zeros((TIME, N_IN + 2)))
        message = str(caught.value)
        assert repr(layer) in message
        assert f"expects {N_IN} input features but got {N_IN + 2}" in message

    @pytest.mark.corenet
    @pytest.mark.parametrize("shape", [(2, 6, 3), (6,)])
    def test_wrong_rank_says_time_features(self, cls, shape):
        layer = self.make(cls)
        with pytest.raises(ShapeError, match=r"takes \(time, features\)") as caught:
            layer.forward(np.zeros(shape))
        assert repr(layer) in str(caught.value) and str(shape) in str(caught.value)

    @pytest.mark.corenet
    def test_empty_sequence_refused(self, cls):
        with pytest.raises(ShapeError, match="empty"):
            self.make(cls).forward(np.zeros((0, N_IN)))

    @pytest.mark.corenet
    def test_backward_before_forward(self, cls):
        with pytest.raises(ShapeError, match="backward called before forward"):
            self.make(cls).backward(np.zeros((TIME, N_OUT)))

    @pytest.mark.corenet
    def test_error_of_wrong_shape(self, cls):
        layer = self.make(cls)
        layer.forward(sequence()[0])
        with pytest.raises(ShapeError, match=rf"expects an error of shape \({TIME}, {N_OUT}\)"):
            layer.backward(np.zeros((TIME + 1, N_OUT)))

    @pytest.mark.corenet
    def test_assigned_weights_of_wrong_shape(self, cls):
        layer = self.make(cls)
        layer.weights = np.zeros((2, 2))
        with pytest.raises(ShapeError, match=r"weights must have shape"):
            layer.forward(sequence()[0])

    @pytest.mark.corenet
    def test_memory_stays_flat_over_10000_calls(self, cls):
        layer = self.make(cls)
        layer.optimizer = Adam(1e-3)
        layer.memorize = True
        x, labels = sequence(time=5)
        for _ in range(10):
            layer.backward(layer.forward(x) - labels)
        before = footprint(layer)
        for _ in range(10_000):
            layer.backward(layer.forward(x) - labels)
        assert footprint(layer) == before
        assert np.all(np.isfinite(layer.weights))

    @pytest.mark.corenet
    def test_pickle_round_trip(self, cls):
        layer = self.make(cls)
        layer.memorize = True
        x, _ = sequence()
        layer.forward(x)
        clone = pickle.loads(pickle.dumps(layer))
        np.testing.assert_array_equal(clone.forward(x), layer.forward(x))

    @pytest.mark.corenet
    def test_torch_mirror_of_a_corenet_layer(self, cls):
        torch = pytest.importorskip("torch")
        layer = self.make(cls)
        x, _ = sequence()
        expected, _ = TorchMirror.of(layer).forward(torch.from_numpy(x))
        np.testing.assert_allclose(layer.forward(x), expected.detach().numpy(), rtol=0, atol=TORCH_TOLERANCE)
