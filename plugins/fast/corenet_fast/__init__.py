"""corenet plugin: the fast tier (hook implementations only).

Every class registered here subclasses the reference class of the same name, so
checkpoints, configs and the conformance suite treat both alike; the registry
selects the fast one (priority 10 over the reference tier's 0) unless
``--impl reference`` / ``CORENET_IMPL=reference`` asks for the textbook code.
"""

from corenet import hookimpl

#: how corenet-fast registers: ``register(FastConv, "Conv", **FAST_TIER)``
FAST_TIER = {"implementation": "fast", "priority": 10}

#: registry name -> "module:class" of its fast layer (imported when registered)
LAYERS: dict[str, str] = {
    # Pooling, BatchNormalization and LSTM use compiled kernels when numba is installed (corenet_fast.numba)
    "Conv": "corenet_fast.conv:Conv",
    "BatchNormalization": "corenet_fast.numba.layers:BatchNormalization",
    "Dropout": "corenet_fast.dropout:Dropout",
    "Pooling": "corenet_fast.numba.layers:Pooling",
    "RNN": "corenet_fast.rnn:RNN",
    "LSTM": "corenet_fast.numba.layers:LSTM",
}
#: registry name -> "module:class" of its fast optimizer
OPTIMIZERS: dict[str, str] = {
    "Adam": "corenet_fast.optimizers:Adam",
}


def _load(target: str) -> type:
    from importlib import import_module

    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


@hookimpl
def corenet_register_layers(register):
    for name, target in LAYERS.items():
        register(_load(target), name, **FAST_TIER)


@hookimpl
def corenet_register_optimizers(register):
    for name, target in OPTIMIZERS.items():
        register(_load(target), name, **FAST_TIER)
