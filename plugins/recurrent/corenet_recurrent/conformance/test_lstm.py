"""TestLSTM: the LSTM (the shared recurrent contract plus cell-state and gate checks).

The LSTM is the exercise's optional part; its group carries no bonus weight. The gate
order of ``weights`` (API.md: input, forget, cell candidate, output, as in PyTorch) is
checked in the reference tier, which names a swap when it finds one.
"""

import numpy as np
import pytest

from corenet_recurrent.conformance.contract import RecurrentContract

pytestmark = pytest.mark.contract


def _gate_columns(hidden_size: int, gate: str) -> slice:
    """Columns of ``weights`` for a gate in the API order (input, forget, cell candidate, output)."""
    k = ("input", "forget", "cell", "output").index(gate)
    return slice(k * hidden_size, (k + 1) * hidden_size)


class TestLSTM(RecurrentContract):
    name = "LSTM"
    lstm = True

    @pytest.mark.corenet
    def test_carries_hidden_and_cell_state(self, cls):
        np.random.seed(0)
        layer = cls(2, 3, 1)
        layer.memorize = True
        layer.forward(np.random.normal(size=(5, 2)))
        hidden, cell = layer.state
        assert hidden.shape == cell.shape == (3,)
        assert not np.allclose(hidden, cell)
        assert np.all(np.abs(hidden) <= np.abs(np.tanh(cell)) + 1e-15)  # h = o * tanh(c), 0 < o < 1

    @pytest.mark.corenet
    @pytest.mark.parametrize("gate", ["input", "forget", "cell", "output"])
    def test_gate_column_order(self, cls, gate):
        """Only one gate's bias is large: the hand-computed h_1, h_2 identify which block is which."""
        layer = cls(1, 1, 1)
        layer.weights = np.zeros((3, 4))
        layer.weights[-1, _gate_columns(1, gate)] = 2.0
        layer.output_weights = np.array([[1.0], [0.0]])
        layer.memorize = True
        layer.forward(np.zeros((2, 1)))
        s = 1.0 / (1.0 + np.exp(-2.0))
        gates = {"input": 0.5, "forget": 0.5, "cell": 0.0, "output": 0.5}
        gates[gate] = np.tanh(2.0) if gate == "cell" else s
        c1 = gates["input"] * gates["cell"]
        c2 = gates["forget"] * c1 + gates["input"] * gates["cell"]
        np.testing.assert_allclose(layer.state[1], [c2], atol=1e-15)
        np.testing.assert_allclose(layer.state[0], [gates["output"] * np.tanh(c2)], atol=1e-15)

    @pytest.mark.corenet
    def test_forget_gate_keeps_the_cell(self, cls):
        layer = cls(1, 2, 1)
        layer.weights = np.zeros((4, 8))
        layer.weights[-1, _gate_columns(2, "forget")] = 50.0  # f = 1: c never decays
        layer.weights[0, _gate_columns(2, "cell")] = 1.0
        layer.weights[-1, _gate_columns(2, "input")] = -50.0  # i = 0 after the first step ...
        layer.weights[0, _gate_columns(2, "input")] = 100.0  # ... unless x is large
        layer.memorize = True
        x = np.zeros((30, 1))
        x[0] = 1.0
        layer.forward(x)
        np.testing.assert_allclose(layer.state[1], np.tanh(1.0), rtol=1e-9)

    @pytest.mark.corenet
    def test_registered(self, cls):
        import corenet

        registry = corenet.get_registry()
        assert registry.name_of(cls) == "LSTM"
        assert "TestLSTM" in registry.test_groups
