"""The weights of the conformance groups in a grade: one fixed table, never the installed plugins' say.

A plugin registers its group with a bonus weight (``corenet run-tests --bonus`` shows it), but a
grade must not change because a student's or anyone's plugin is installed on the grading machine:
``corenet grade`` scores with :data:`COURSE_WEIGHTS`, or with the teacher's file (``--weights``),
a YAML or JSON mapping of group name to weight::

    TestRNN: 40
    TestBatchNorm: 25
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import yaml

#: the course's table: group -> points; the groups of the core (weight 0) run for feedback only
COURSE_WEIGHTS: dict[str, float] = {
    "TestRNN": 40.0,
    "TestBatchNorm": 25.0,
    "TestConstraints": 5.0,
    "TestDropout": 5.0,
    "TestLeNet": 5.0,
    "TestTanH": 2.5,
    "TestSigmoid": 2.5,
    "TestLSTM": 0.0,
    "TestFullyConnected": 0.0,
    "TestReLU": 0.0,
    "TestSoftMax": 0.0,
    "TestCrossEntropyLoss": 0.0,
    "TestOptimizers": 0.0,
    "TestInitializers": 0.0,
    "TestFlatten": 0.0,
    "TestConv": 0.0,
    "TestPooling": 0.0,
    "TestNeuralNetwork": 0.0,
}


class WeightsError(ValueError):
    """A weights table that cannot be used: unreadable, not a mapping, a bad weight or an unknown group."""


def read_weights(path: Path) -> dict[str, float]:
    """The group -> weight mapping in the YAML or JSON file ``path`` (weights: finite numbers >= 0)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WeightsError(f"--weights {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise WeightsError(f"--weights {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                           f"({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not data:
        raise WeightsError(f"--weights {path}: expected a mapping of group names to weights, e.g. 'TestRNN: 40', "
                           f"got {type(data).__name__ if data is not None else 'an empty file'}")
    weights = {}
    for group, weight in data.items():
        if not isinstance(group, str):
            raise WeightsError(f"--weights {path}: group names are strings such as TestRNN, got {group!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight < 0:
            raise WeightsError(f"--weights {path}: the weight of {group} must be a number >= 0, got {weight!r}")
        weights[group] = float(weight)
    return weights


def check_groups(weights: dict[str, float], known: Iterable[str], source: str) -> None:
    """Refuse a table naming a group that is not installed (it would score 0 for everyone)."""
    known = set(known)
    unknown = sorted(set(weights) - known)
    if unknown:
        raise WeightsError(f"{source} names {'a group' if len(unknown) == 1 else 'groups'} that no installed "
                           f"plugin provides: {', '.join(unknown)}; known groups: {', '.join(sorted(known))}")

