"""Deliberately broken course-layout submissions fail in the right group with a message naming the bug.

Each submission is a course-layout folder (``tests/course_layout.py``) whose one broken
file is a learner's plain implementation (``tests/fixtures/api_only/``) with a minimal,
realistic mistake applied as text edits. ``corenet check PATH --layout course --json``
must fail that file's group with a one-line message naming the mistake, in the tier
that catches it; the course's own kind of tests (our contract tier) let several of
them through. The correct folder, and the API-only classes checked one by one, must
pass every contract and reference test (no false failures).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from course_layout import course_sources, write_course_folder

HERE = Path(__file__).resolve().parent
API_ONLY = HERE / "fixtures" / "api_only"
MY_GROUPS = ("TestDropout", "TestBatchNorm", "TestConstraints", "TestTanH", "TestSigmoid", "TestRNN", "TestLSTM",
             "TestLeNet")


def edited(source: str, edits: list[tuple[str, str]]) -> str:
    """``source`` with every (old, new) replacement applied; each ``old`` must occur."""
    for old, new in edits:
        assert old in source, f"fixture edit does not apply: {old!r}"
        source = source.replace(old, new)
    return source


L2_AS_EUCLIDEAN_NORM = '''import numpy as np


class L1_Regularizer:
    def __init__(self, alpha):
        self.alpha = alpha

    def calculate_gradient(self, weights):
        return self.alpha * np.sign(weights)

    def norm(self, weights):
        return self.alpha * np.sum(np.abs(weights))


class L2_Regularizer:
    def __init__(self, alpha):
        self.alpha = alpha

    def calculate_gradient(self, weights):
        return self.alpha * weights

    def norm(self, weights):
        return self.alpha * np.linalg.norm(weights)  # the Euclidean norm: a square root too many
'''


@dataclass(frozen=True)
class Bug:
    """One broken submission: which file is broken how, and the failure it must produce."""

    id: str
    group: str
    names: tuple[str, ...]  # course names the folder implements
    file: str  # the broken file in the folder
    message: str  # regular expression the failure's one-line message must match
    tier: str  # the tier that names the bug
    base: str | None = None  # api_only file the broken one starts from
    edits: tuple[tuple[str, str], ...] = ()
    source: str | None = None  # or the whole broken file
    contract_passes: bool = False  # the course's kind of tests let it through

    def files(self) -> dict[str, str]:
        if self.source is not None:
            return {self.file: self.source}
        if self.base is not None:
            return {self.file: edited((API_ONLY / self.base).read_text(), list(self.edits))}
        sources = course_sources(self.names)
        return {self.file: edited(sources[self.file], list(self.edits))}


BUGS = [
    Bug("a-last-step-only", "TestRNN", ("RNN",), "Layers/RNN.py",
        r"gradient_weights differs from the sum over all 7 time steps: looks like only the last step was kept",
        "reference", "rnn.py", (("self.gradient_weights += np.outer", "self.gradient_weights = np.outer"),)),
    Bug("b-shared-optimizer", "TestRNN", ("RNN",), "Layers/RNN.py",
        r"one optimizer object updated 2 different weight tensors .*Adam/momentum state gets mixed", "reference",
        "rnn.py", (("self._output_optimizer = copy.deepcopy(optimizer)",
                    "self._output_optimizer = self._hidden_optimizer"),), contract_passes=True),
    Bug("b-shared-optimizer-batchnorm", "TestBatchNorm", ("BatchNormalization",), "Layers/BatchNormalization.py",
        r"one optimizer object updated 2 different weight tensors", "reference", "batchnorm.py",
        (("self._bias_optimizer = copy.deepcopy(optimizer)", "self._bias_optimizer = self._weights_optimizer"),),
        contract_passes=True),
    Bug("c-batchnorm-never-moves", "TestBatchNorm", ("BatchNormalization",), "Layers/BatchNormalization.py",
        r"BatchNormalization parameters never move under Adam", "reference", "batchnorm.py",
        (("self.weights = self._weights_optimizer.calculate_update", "self._weights_optimizer.calculate_update"),
         ("self.bias = self._bias_optimizer.calculate_update", "self._bias_optimizer.calculate_update"))),
    Bug("d-state-leaks", "TestRNN", ("RNN",), "Layers/RNN.py",
        r"hidden state leaks between sequences: with memorize False the second forward continued from the first "
        r"call's last hidden state", "reference", "rnn.py",
        (("        if not self.memorize:\n            self.hidden_state = np.zeros(self.hidden_size)\n", ""),)),
    Bug("e-history-grows", "TestRNN", ("RNN",), "Layers/RNN.py",
        r"memory grows with every call: layer\.\w+ grew from", "reference", "rnn.py",
        (("        self._optimizer = None\n",
          "        self._optimizer = None\n        self.stacked_inputs = []\n        self.hidden_states = []\n"),
         ("        self.stacked_inputs = []  # [x_t, h_{t-1}, 1] of every time step of this sequence\n"
          "        self.hidden_states = []  # h_t of every time step\n", ""),
         ("self.hidden_states[t]", "self.hidden_states[t - len(error_tensor)]"),
         ("self.stacked_inputs[t]", "self.stacked_inputs[t - len(error_tensor)]")), contract_passes=True),
    Bug("f-gate-order-swap", "TestLSTM", ("LSTM",), "Layers/LSTM.py",
        r"gate blocks of weights are in the order \(forget, input, cell, output\).*gate order swapped", "reference",
        "lstm.py", (("i, f, g, o = np.split(", "f, i, g, o = np.split("),
                    ("np.concatenate([d_i, d_f, d_g, d_o])", "np.concatenate([d_f, d_i, d_g, d_o])")),
        contract_passes=True),
    Bug("g-dropout-times-p", "TestDropout", ("Dropout",), "Layers/Dropout.py",
        r"wrong Dropout scaling: kept units are multiplied by probability \(0\.25\) instead of divided by it",
        "reference", "dropout.py", (("self.mask = keep / self.probability", "self.mask = keep * self.probability"),)),
    Bug("g-dropout-unscaled", "TestDropout", ("Dropout",), "Layers/Dropout.py",
        r"wrong Dropout scaling: kept units are not scaled at all", "reference", "dropout.py",
        (("self.mask = keep / self.probability", "self.mask = keep.astype(float)"),)),
    # beyond the list
    Bug("update-every-time-step", "TestRNN", ("RNN",), "Layers/RNN.py",
        r"the optimizer updated the same weights 7 times in one backward pass \(once per time step\?\)", "reference",
        "rnn.py", (("            carried = self.weights[self.input_size : -1] @ delta\n",
                    "            carried = self.weights[self.input_size : -1] @ delta\n"
                    "            if self._optimizer is not None:\n"
                    "                step = np.outer(self.stacked_inputs[t], delta)\n"
                    "                self.weights = self._hidden_optimizer.calculate_update(self.weights, step)\n"),
                   ("            self.weights = self._hidden_optimizer.calculate_update(self.weights, "
                    "self.gradient_weights)\n", ""))),
    Bug("moving-average-swapped", "TestBatchNorm", ("BatchNormalization",), "Layers/BatchNormalization.py",
        r"wrong moving average: the moving averages weight the new batch by 0\.8", "reference", "batchnorm.py",
        (("0.8 * self.moving_mean + 0.2 * mean", "0.2 * self.moving_mean + 0.8 * mean"),
         ("0.8 * self.moving_variance + 0.2 * variance", "0.2 * self.moving_variance + 0.8 * variance")),
        contract_passes=True),
    Bug("l2-norm-with-square-root", "TestConstraints", ("L1_Regularizer", "L2_Regularizer", "Sgd"),
        "Optimization/Constraints.py", r"L2_Regularizer\.norm\(w\) computes alpha·sqrt\(Σw²\) \(with a square root\)",
        "contract", source=L2_AS_EUCLIDEAN_NORM),
    Bug("load-forgets-the-data-layer", "TestLeNet", ("LeNet", "NeuralNetwork", "save", "load"), "NeuralNetwork.py",
        r"load\(filename, data_layer\) must set the given data layer", "contract",
        edits=(("    net.data_layer = data_layer\n", ""),)),
]


def corenet_check(*args: str) -> dict:
    """Run ``corenet check ARGS --json FILE [-- PYTEST ARGS]`` in a subprocess; its JSON report."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        ours, extra = (args[: args.index("--")], args[args.index("--"):]) if "--" in args else (args, ())
        done = subprocess.run([sys.executable, "-m", "corenet", "check", *ours, "--json", str(report), *extra],
                              capture_output=True, text=True, timeout=600)
        assert report.is_file(), f"corenet check wrote no report (exit {done.returncode}):\n{done.stderr[-2000:]}"
        return json.loads(report.read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """Every check this module asserts on, run two at a time: bug id / "correct" / "api:NAME" -> report."""
    root = tmp_path_factory.mktemp("submissions")
    runs: dict[str, list[str]] = {}
    for bug in BUGS:
        folder = write_course_folder(root / bug.id, names=bug.names, overrides=bug.files())
        # PyTorch agreement names none of these bugs (the correct and API-only runs include it): not importing
        # torch in 13 processes keeps this module fast
        runs[bug.id] = [str(folder), "--layout", "course", "--group", bug.group, "--", "-k", "not torch"]
    correct = write_course_folder(root / "correct")
    runs["correct"] = [str(correct), "--layout", "course", *(f"--group={group}" for group in MY_GROUPS)]
    for file, name in API_ONLY_CLASSES:
        runs[f"api:{name}"] = [f"{API_ONLY / file}:{name}", "--as", name]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(runs, pool.map(lambda args: corenet_check(*args), runs.values())))
    return done


def failures(group: dict) -> dict[str, dict]:
    return {tid: test for tid, test in group["tests"].items() if test["outcome"] in ("failed", "error")}


@pytest.mark.parametrize("bug", BUGS, ids=[bug.id for bug in BUGS])
def test_broken_submission_fails_naming_the_bug(reports, bug):
    report = reports[bug.id]
    assert report["passed"] is False
    group = report["groups"][bug.group]
    failed = failures(group)
    assert failed, f"{bug.group} passed although {bug.file} is broken ({bug.id})"
    named = [tid for tid, test in failed.items()
             if test["tier"] == bug.tier and re.search(bug.message, test["message"])]
    messages = "\n".join(f"  [{t['tier']}] {t['message']}" for t in failed.values())
    assert named, f"no {bug.tier} failure of {bug.group} names the bug {bug.message!r}; got:\n{messages}"
    assert all("\n" not in test["message"] for test in failed.values())
    if bug.contract_passes:  # what the course's kind of tests cannot see: only the reference tier catches it
        assert group["tiers"]["contract"]["failed"] == 0 and group["tiers"]["contract"]["passed"] > 0, messages
    other = {name: g["status"] for name, g in report["groups"].items() if name != bug.group and failures(g)}
    assert not other, f"other groups failed too: {other}"


def test_correct_course_folder_passes_every_contract_and_reference_test(reports):
    report = reports["correct"]
    assert set(MY_GROUPS) <= set(report["groups"])
    for name in MY_GROUPS:
        group = report["groups"][name]
        assert not failures(group), f"{name}: {failures(group)}"
        for tier in ("contract", "reference"):
            counts = group["tiers"][tier]
            assert counts["passed"] > 0 and counts["failed"] == counts["error"] == counts["timeout"] == 0, (name, tier)
    assert report["passed"] is True


#: classes written from API.md alone (no corenet import), checked one by one as the name they implement
API_ONLY_CLASSES = [("rnn.py", "RNN"), ("lstm.py", "LSTM"), ("dropout.py", "Dropout"),
                    ("batchnorm.py", "BatchNormalization")]


@pytest.mark.parametrize("name", [name for _, name in API_ONLY_CLASSES])
def test_class_written_from_api_md_alone_passes_contract_and_reference(reports, name):
    report = reports[f"api:{name}"]
    assert report["passed"] is True, json.dumps(report["groups"], indent=1)[:3000]
    (group,) = [g for g in report["groups"].values() if g["tests"]]
    assert name in group["names"]
    for tier in ("contract", "reference"):
        counts = group["tiers"][tier]
        assert counts["passed"] > 0 and counts["failed"] == counts["error"] == 0, (tier, counts)
    # none of corenet's extras is asked of it: that tier is skipped, not failed
    assert group["tiers"]["corenet"]["passed"] == group["tiers"]["corenet"]["failed"] == 0
    assert group["tiers"]["corenet"]["skipped"] > 0


def test_api_only_classes_import_nothing_from_corenet():
    for file, _ in API_ONLY_CLASSES:
        source = (API_ONLY / file).read_text()
        assert "corenet" not in re.sub(r'""".*?"""', "", source, flags=re.S), file
