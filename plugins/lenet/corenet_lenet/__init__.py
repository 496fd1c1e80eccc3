"""corenet plugin: the LeNet model (hook implementations only).

``configs/lenet-mnist.yaml`` ships beside it: ``corenet train lenet-mnist --data FOLDER``.
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
