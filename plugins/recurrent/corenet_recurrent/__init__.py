"""corenet plugin: TanH, Sigmoid, Elman RNN, LSTM and the `corenet recall` and `corenet digit-rows`
commands (hook implementations)."""

from corenet import hookimpl
from corenet.plugins import REFERENCE_TIER, package_path


@hookimpl
def corenet_register_layers(register):
    from corenet_recurrent.activations import Sigmoid, TanH
    from corenet_recurrent.lstm import LSTM
    from corenet_recurrent.rnn import RNN

    for layer in (TanH, Sigmoid, RNN, LSTM):
        register(layer, **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    register("TestTanH", [package_path(__file__, "conformance", "test_tanh.py")], 2.5, names=("TanH",))
    register("TestSigmoid", [package_path(__file__, "conformance", "test_sigmoid.py")], 2.5, names=("Sigmoid",))
    register("TestRNN", [package_path(__file__, "conformance", "test_rnn.py")], 40, names=("RNN",))
    # The LSTM is the exercise's optional part: its group carries no bonus weight.
    register("TestLSTM", [package_path(__file__, "conformance", "test_lstm.py")], 0, names=("LSTM",))


@hookimpl
def corenet_register_inspections(register):
    from corenet_recurrent.inspect_recall import inspect_recall

    register(inspect_recall, "recall")


@hookimpl
def corenet_register_commands(app):
    from corenet_recurrent.cli import register

    register(app)
