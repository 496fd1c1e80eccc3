"""Which implementation tier a corenet case is built from: the registry's choice, 'reference' or 'fast'.

A :class:`TierRegistry` looks like the plugin registry to the case builders
(``layers``, ``optimizers``, ... name -> class) but answers with the
implementation labelled ``label`` wherever one exists, and with the registry's
selected implementation for names the tier does not cover (FullyConnected, ReLU,
Sgd, ... have one implementation only).
"""

from __future__ import annotations

from corenet.plugins import KINDS

#: ``--impl`` choices: the tiers each runs ("selected": whatever the registry selects)
IMPL_CHOICES = {"selected": ("selected",), "reference": ("reference",), "fast": ("fast",),
                "both": ("reference", "fast")}


def parse_impl(impl: str | None) -> tuple[str, ...]:
    """``reference``, ``fast``, ``both`` (or None: the registry's selection) -> the tiers to run."""
    try:
        return IMPL_CHOICES[(impl or "selected").strip().lower()]
    except KeyError:
        raise ValueError(f"--impl must be one of reference, fast, both; got {impl!r}") from None


class TierRegistry:
    """The registry as seen by one tier (see the module docstring); ``label`` None: the selection as it is."""

    def __init__(self, registry, label: str | None) -> None:
        self.label = label
        self.tier_names: list[str] = []  # names whose class the tier chose over the selection
        for kind in KINDS:
            table = dict(getattr(registry, kind))
            if label is not None:
                for name in table:
                    for impl in registry.implementations_of(kind, name):
                        if impl.label == label:
                            if impl.obj is not table[name]:
                                self.tier_names.append(name)
                            table[name] = impl.obj
                            break
            setattr(self, kind, table)
        self.covered = label is None or any(
            impl.label == label for impls in registry.implementations.values() for impl in impls)
