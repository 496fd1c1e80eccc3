"""corenet plugin: inverted dropout (hook implementations only)."""

from corenet import hookimpl
from corenet.plugins import REFERENCE_TIER, package_path


@hookimpl
def corenet_register_layers(register):
    from corenet_dropout.dropout import Dropout

    register(Dropout, **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    register("TestDropout", [package_path(__file__, "conformance", "test_dropout.py")], 5, names=("Dropout",))
