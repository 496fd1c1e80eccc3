"""Example plugin: registers the LeakyReLU layer and its conformance group."""

from corenet import hookimpl
from corenet.plugins import package_path


@hookimpl
def corenet_register_layers(register):
    from corenet_leakyrelu.leaky_relu import LeakyReLU

    register(LeakyReLU)


@hookimpl
def corenet_register_test_groups(register):
    register("TestLeakyReLU", [package_path(__file__, "conformance", "test_leaky_relu.py")], 1)
