"""`corenet train` learns as well with the reference tier (`--impl reference`) as with the fast tier
(selected by priority once corenet-fast is installed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("corenet_fast")

ITERATIONS = 60


def corenet(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("CORENET_IMPL", "CORENET_LOAD_PLUGINS")}
    result = subprocess.run([sys.executable, "-m", "corenet", *args], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def accuracy(*options: str) -> float:
    """Test accuracy (%) of the default digits config (Conv, BatchNorm, Dropout, Adam) after a short run."""
    result = corenet(*options, "train", "digits", "-n", str(ITERATIONS), "-q", "--no-checkpoint", "--seed", "0")
    found = re.search(r"test accuracy: ([\d.]+)%", result.stdout)
    assert found, result.stdout
    return float(found.group(1))


def test_fast_tier_is_selected_without_a_preference():
    rows = json.loads(corenet("list-layers", "--json").stdout)
    selected = {row["name"]: row["implementation"] for row in rows if row["selected"]}
    assert {name: selected[name] for name in ("Conv", "BatchNormalization", "Dropout", "RNN", "LSTM")} == dict.fromkeys(
        ("Conv", "BatchNormalization", "Dropout", "RNN", "LSTM"), "fast")


def test_train_reaches_the_same_accuracy_with_either_tier():
    reference = accuracy("--impl", "reference")
    fast = accuracy()
    # Dropout's masks differ between the tiers (same distribution), so the runs differ by noise only:
    # over seeds 0-4 either tier scores 90-94% after 60 iterations (standard deviation about 1.5 points)
    assert reference >= 85.0 and fast >= 85.0
    assert abs(reference - fast) <= 5.0
