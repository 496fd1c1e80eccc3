"""corenet plugin: the L1 and L2 weight constraints (hook implementations only)."""

from corenet import hookimpl
from corenet.plugins import REFERENCE_TIER, package_path


@hookimpl
def corenet_register_regularizers(register):
    from corenet_reg_l1l2.constraints import L1_Regularizer, L2_Regularizer

    register(L1_Regularizer, **REFERENCE_TIER)
    register(L2_Regularizer, **REFERENCE_TIER)


@hookimpl
def corenet_register_test_groups(register):
    register("TestConstraints", [package_path(__file__, "conformance", "test_constraints.py")], 5,
             names=("L1_Regularizer", "L2_Regularizer"))
