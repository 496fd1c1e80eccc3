"""Which registry names a conformance group tests, and which groups test a name."""

from __future__ import annotations

from collections.abc import Iterable

from corenet.plugins import TestGroup

#: names tested by groups that register without ``names=`` and are not called Test<Name>
KNOWN_GROUP_NAMES: dict[str, tuple[str, ...]] = {
    "TestConstraints": ("L1_Regularizer", "L2_Regularizer"),
    "TestBatchNorm": ("BatchNormalization",),
    "TestLeNet": ("LeNet",),
}


def names_of(group: TestGroup) -> tuple[str, ...]:
    """The registry names ``group`` tests: as registered, else the known table, else TestX -> X."""
    if group.names:
        return group.names
    if group.name in KNOWN_GROUP_NAMES:
        return KNOWN_GROUP_NAMES[group.name]
    return (group.name[4:],) if group.name.startswith("Test") and len(group.name) > 4 else (group.name,)


def groups_testing(names: Iterable[str], groups: Iterable[TestGroup]) -> list[TestGroup]:
    """The groups (in the given order) that test at least one of ``names``."""
    wanted = set(names)
    return [group for group in groups if wanted & set(names_of(group))]


def all_groups(registry=None) -> list[TestGroup]:
    """Every registered group, by name."""
    if registry is None:
        from corenet.plugins import get_registry

        registry = get_registry()
    return [registry.test_groups[name] for name in sorted(registry.test_groups)]
