"""corenet plugin: batch normalization (hook implementations only)."""

from corenet import hookimpl
from corenet.plugins import REFERENCE_TIER, package_path


@hookimpl
def corenet_register_layers(register):
    from corenet_batchnorm.batchnorm import BatchNormalization

    register(BatchNormalization, **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    register("TestBatchNorm", [package_path(__file__, "conformance", "test_batchnorm.py")], 25,
             names=("BatchNormalization",))
