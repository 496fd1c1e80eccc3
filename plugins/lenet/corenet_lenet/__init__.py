"""corenet plugin: the LeNet model (hook implementations only).

Two training configs ship beside it in ``configs/``: ``corenet train lenet-mnist --data FOLDER``
and ``corenet train digits-regularized`` (the default digits network with BatchNormalization,
Dropout and L2, from the plugins this one depends on).
"""

from corenet import hookimpl
from corenet.plugins import REFERENCE_TIER, package_path


@hookimpl
def corenet_register_models(register):
    from corenet_lenet.lenet import build

    register(build, "LeNet", **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    # build() plus the NeuralNetwork module's save/load, which its round trip goes through
    register("TestLeNet", [package_path(__file__, "conformance", "test_lenet.py")], 5, names=("LeNet", "save", "load"))
