"""corenet check / run-tests: targets by name, tiers, course folders, timeouts and the JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from course_layout import course_sources, write_course_folder

from corenet.builtin import TEST_GROUPS
from corenet.checking.course import COURSE_LAYOUT, course_targets
from corenet.checking.pytest_plugin import FOREIGN_SKIP, TIERS
from corenet.checking.results import OUTCOMES
from corenet.checking.targets import NOT_IMPLEMENTED, OK, TargetError, Targets, parse_targets

CORE_GROUPS = sorted(TEST_GROUPS)
STATUSES = {"passed", "failed", "skipped", "not implemented", "timeout", "error"}
HAS_TORCH = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0

CONTRACT_RELU = (Path(__file__).resolve().parent / "fixtures" / "api_only" / "relu.py").read_text()
HANGING_RELU = '''
class ReLU:
    def __init__(self):
        self.trainable = False
        self.testing_phase = False

    def forward(self, input_tensor):
        while True:
            pass
'''
# the error for the previous layer computed with the weights after the update
LATE_ERROR_FULLY_CONNECTED = '''
from corenet.layers.fully_connected import FullyConnected as _Corenet


class FullyConnected(_Corenet):
    def backward(self, error_tensor):
        super().backward(error_tensor)
        return error_tensor @ self.weights[:-1].T
'''


def corenet(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CORENET_TARGETS", "CORENET_IMPL")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "corenet", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=timeout)


def check_json(*args: str, cwd: Path, **kwargs) -> tuple[subprocess.CompletedProcess, dict]:
    result = corenet("check", *args, "--json", "-", cwd=cwd, **kwargs)
    assert result.stdout.strip(), result.stderr
    return result, json.loads(result.stdout)


def tier_counts(report: dict, group: str, tier: str) -> dict:
    return report["groups"][group]["tiers"][tier]


@pytest.fixture(scope="module")
def full_course(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    """Every group, checked on a course folder whose classes are thin subclasses of corenet's."""
    folder = write_course_folder(tmp_path_factory.mktemp("course") / "src")
    result = corenet("check", str(folder), "--layout", "course", "--timeout", "600", "--json",
                     str(folder.parent / "report.json"),
                     cwd=folder.parent)
    return result, json.loads((folder.parent / "report.json").read_text())


# -- a course folder of corenet's own classes: no false failures --------------------------------------
def test_course_folder_of_corenet_classes_passes_contract_and_reference(full_course):
    result, report = full_course
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["passed"] is True and report["not_implemented"] == []
    for name in CORE_GROUPS:
        group = report["groups"][name]
        assert group["status"] == "passed", (name, group["message"])
        for tier in ("contract", "reference"):
            counts = tier_counts(report, name, tier)
            assert counts["failed"] == counts["error"] == counts["timeout"] == 0, (name, tier, counts)
            assert counts["passed"] > 0, (name, tier)
    for name, group in report["groups"].items():  # the plugin groups too: nothing fails
        assert group["status"] == "passed", (name, group["message"])


def test_corenet_extras_are_skipped_for_foreign_classes(full_course):
    _, report = full_course
    foreign = {name for name, info in report["implementations"].items() if info["foreign"]}
    assert foreign == set(COURSE_LAYOUT) - {"LeNet"}  # Models/LeNet.py re-exports corenet-lenet's build
    for name in CORE_GROUPS:
        corenet_tests = {tid: t for tid, t in report["groups"][name]["tests"].items() if t["tier"] == "corenet"}
        assert corenet_tests, name
        assert {t["outcome"] for t in corenet_tests.values()} == {"skipped"}
        assert {t["message"] for t in corenet_tests.values()} == {FOREIGN_SKIP}


def test_json_schema(full_course):
    _, report = full_course
    assert {"format", "target", "layout", "passed", "seconds", "implementations", "not_implemented",
            "groups"} <= set(report)
    assert report["layout"] == "course" and isinstance(report["target"], str)
    assert set(report["implementations"]) == set(COURSE_LAYOUT)
    for info in report["implementations"].values():
        assert info["status"] == OK and info["source"]
    for name, group in report["groups"].items():
        assert {"names", "status", "message", "weight", "tiers", "tests"} <= set(group), name
        assert group["status"] in STATUSES
        assert set(group["tiers"]) == set(TIERS)
        for counts in group["tiers"].values():
            assert set(counts) == set(OUTCOMES) and all(isinstance(n, int) for n in counts.values())
        for test_id, test in group["tests"].items():
            assert test_id.startswith("test_") and ".py::" in test_id and "/" not in test_id.split("::")[0]
            assert set(test) == {"tier", "outcome", "message"}
            assert test["tier"] in TIERS and test["outcome"] in OUTCOMES
            assert "\n" not in test["message"]
        totals = {o: sum(c[o] for c in group["tiers"].values()) for o in OUTCOMES}
        assert sum(totals.values()) == len(group["tests"])
    assert report["groups"]["TestNeuralNetwork"]["names"] == ["NeuralNetwork", "save", "load"]
    assert report["groups"]["TestOptimizers"]["names"] == ["Sgd", "SgdWithMomentum", "Adam"]


def test_text_report_has_a_line_per_group_and_tier(full_course):
    result, _ = full_course
    lines = result.stdout.splitlines()
    for name in CORE_GROUPS:
        for tier in TIERS:
            assert any(line.split()[:2] == [name, tier] for line in lines), (name, tier)
    assert lines[-1].startswith("passed: ")


# -- what a folder lacks is "not implemented" ------------------------------------------------------------
def test_missing_files_and_classes_are_not_implemented(tmp_path):
    names = [n for n in COURSE_LAYOUT if n not in ("Conv", "RNN", "LSTM", "UniformRandom", "Xavier", "He")]
    folder = write_course_folder(tmp_path / "src", names)
    assert not (folder / "Layers" / "Conv.py").exists()
    assert "Xavier" not in (folder / "Layers" / "Initializers.py").read_text()
    result, report = check_json(str(folder), "--layout", "course", "-g", "TestConv", "-g", "TestInitializers",
                                "-g", "TestReLU", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"Conv", "RNN", "LSTM", "UniformRandom", "Xavier", "He"} <= set(report["not_implemented"])
    assert report["groups"]["TestConv"]["status"] == NOT_IMPLEMENTED and report["groups"]["TestConv"]["tests"] == {}
    initializers = report["groups"]["TestInitializers"]["tests"]
    xavier = [t for tid, t in initializers.items() if "xavier" in tid and t["tier"] == "contract"]
    assert xavier and all(t["outcome"] == "skipped" and t["message"] == "Xavier: not implemented" for t in xavier)
    constant = [t for tid, t in initializers.items() if "constant" in tid and t["tier"] == "contract"]
    assert constant and all(t["outcome"] == "passed" for t in constant)
    assert report["groups"]["TestReLU"]["status"] == "passed"
    text = corenet("check", str(folder), "-g", "TestConv", cwd=tmp_path).stdout
    assert "TestConv  not implemented (Conv)" in text and "not implemented: Conv, LSTM, RNN" in text


def test_a_folder_not_in_the_course_layout_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = corenet("check", str(tmp_path / "empty"), "--layout", "course", cwd=tmp_path)
    assert result.returncode == 2
    assert "not in the course's layout" in result.stderr


# -- time limits ---------------------------------------------------------------------------------------
def test_a_hanging_submission_is_reported_timeout_and_the_rest_still_runs(tmp_path):
    folder = write_course_folder(tmp_path / "src", ["ReLU", "Flatten"],
                                 overrides={"Layers/ReLU.py": HANGING_RELU})
    started = time.monotonic()
    result, report = check_json(str(folder), "--layout", "course", "-g", "TestReLU", "-g", "TestFlatten",
                                "--timeout", "15", cwd=tmp_path, timeout=300)
    assert time.monotonic() - started < 120  # generous: the machine may be busy; the hang itself is endless
    assert result.returncode == 1
    relu = report["groups"]["TestReLU"]
    assert relu["status"] == "timeout" and "stopped after 15 s" in relu["message"]
    hung = [tid for tid, t in relu["tests"].items() if t["outcome"] == "timeout"]
    assert len(hung) == 1 and hung[0] in relu["message"]
    assert report["groups"]["TestFlatten"]["status"] == "passed"  # run in a fresh process after the kill
    text = corenet("check", str(folder), "-g", "TestReLU", "--timeout", "10", cwd=tmp_path, timeout=300).stdout
    assert "TestReLU  timeout: stopped after 10 s in test_relu.py::TestReLU::" in text


# -- one class, checked as a name --------------------------------------------------------------------------
def test_a_relu_written_from_the_contract_passes_contract_and_reference(tmp_path):
    (tmp_path / "my_relu.py").write_text(CONTRACT_RELU)
    result, report = check_json("my_relu.py:ReLU", "--as", "ReLU", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(report["groups"]) == ["TestReLU"] and report["layout"] == "class"
    assert report["implementations"]["ReLU"]["foreign"] is True
    contract, reference, extras = (tier_counts(report, "TestReLU", tier) for tier in TIERS)
    assert contract["passed"] >= 10 and contract["failed"] == contract["skipped"] == 0
    assert reference["failed"] == 0 and reference["passed"] >= (2 if HAS_TORCH else 1)
    assert extras["skipped"] > 0 and extras["passed"] == extras["failed"] == 0


def test_module_targets_and_the_default_name(tmp_path):
    package = tmp_path / "mylayers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "relu.py").write_text(CONTRACT_RELU)
    result = corenet("check", "mylayers.relu:ReLU", cwd=tmp_path)  # --as defaults to the class name
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TestReLU  contract" in result.stdout and "corenet check: mylayers.relu:ReLU as ReLU" in result.stdout


def test_a_broken_layer_fails_with_an_actionable_message(tmp_path):
    folder = write_course_folder(tmp_path / "src", ["FullyConnected"],
                                 overrides={"Layers/FullyConnected.py": LATE_ERROR_FULLY_CONNECTED})
    result, report = check_json(str(folder), "-g", "TestFullyConnected", cwd=tmp_path)
    assert result.returncode == 1
    failed = {tid.split("::")[-1]: t for tid, t in report["groups"]["TestFullyConnected"]["tests"].items()
              if t["outcome"] == "failed"}
    message = failed["test_update_with_optimizer_uses_old_weights_for_the_error"]["message"]
    assert message.startswith("backward output with an optimizer set differs from the expected values")
    assert message.endswith("compute the error for the previous layer with the weights before the update")
    assert any(name.startswith("test_trains_like_the_reference") for name in failed)
    text = corenet("check", str(folder), "-g", "TestFullyConnected", cwd=tmp_path).stdout
    assert "failures:" in text and "weights before the update" in text


def test_an_import_error_names_the_file_and_line(tmp_path):
    (tmp_path / "bad_relu.py").write_text("import numpy as np\n\nclass ReLU(\n")
    result, report = check_json("bad_relu.py:ReLU", cwd=tmp_path)
    assert result.returncode == 1
    assert report["implementations"]["ReLU"]["status"] == "error"
    message = report["implementations"]["ReLU"]["message"]
    assert "bad_relu.py line 3" in message and "SyntaxError" in message
    contract = [t for t in report["groups"]["TestReLU"]["tests"].values() if t["tier"] == "contract"]
    assert contract and all(t["outcome"] == "error" and t["message"] == message for t in contract)


def test_an_attribute_error_while_importing_is_a_bug_not_a_missing_layer(tmp_path):
    """A typo that raises AttributeError at import is reported as the error it is, with its line;
    only a module that imports but lacks the class is "not implemented"."""
    source = "import numpy as np\n\nSMALL = np.finfo(float).tinny\n\nclass ReLU:\n    pass\n"
    (tmp_path / "typo_relu.py").write_text(source)
    result, report = check_json("typo_relu.py:ReLU", cwd=tmp_path)
    assert result.returncode == 1
    resolved = report["implementations"]["ReLU"]
    assert resolved["status"] == "error"
    assert "typo_relu.py line 3" in resolved["message"] and "AttributeError" in resolved["message"]
    (tmp_path / "no_relu.py").write_text("import numpy as np\n")
    result, report = check_json("no_relu.py:ReLU", cwd=tmp_path)
    assert report["implementations"]["ReLU"]["status"] == "not implemented"
    assert "no_relu.py has no ReLU" in report["implementations"]["ReLU"]["message"]


@pytest.mark.parametrize(("args", "fragment"), [
    (["nowhere.py:ReLU"], "nowhere.py: no such file"),
    (["x.py:Nope"], "no conformance group tests 'Nope'"),
    (["x.py:ReLU", "-g", "TestNope"], "unknown test group(s): TestNope"),
    (["x.py:ReLU", "--layout", "flat"], "the only layout is 'course'"),
])
def test_usage_errors_exit_2_before_running(tmp_path, args, fragment):
    (tmp_path / "x.py").write_text(CONTRACT_RELU)
    result = corenet("check", *args, cwd=tmp_path)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


# -- run-tests: the installed implementations ------------------------------------------------------------
def test_run_tests_from_outside_the_checkout(tmp_path):
    result = corenet("run-tests", "--group", "TestConv", "--json", "report.json", "--", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "TestConv  contract" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["layout"] == "installed" and report["implementations"]["Conv"]["foreign"] is False
    assert tier_counts(report, "TestConv", "corenet")["passed"] > 0  # corenet's own Conv: extras run too


def test_run_tests_tests_the_installed_plugin(fake_site, tmp_path):
    module = "from corenet import hookimpl\n" + CONTRACT_RELU + (
        "\n\n@hookimpl\ndef corenet_register_layers(register):\n    register(ReLU)\n")
    fake_site.add_distribution("corenet-myrelu", {"myrelu": "corenet_myrelu"}, {"corenet_myrelu": module})
    result = fake_site.run("run-tests", "-g", "TestReLU", "--json", str(tmp_path / "r.json"), "--", "-q")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["implementations"]["ReLU"]["source"] == "corenet-myrelu (corenet-myrelu)"
    assert report["implementations"]["ReLU"]["foreign"] is True
    assert tier_counts(report, "TestReLU", "corenet")["passed"] == 0
    reference = fake_site.run("--impl", "reference", "run-tests", "-g", "TestReLU", "--json", str(tmp_path / "c.json"))
    assert reference.returncode == 0
    assert json.loads((tmp_path / "c.json").read_text())["implementations"]["ReLU"]["foreign"] is False


# -- the pieces ---------------------------------------------------------------------------------------------
def test_targets_resolve_overrides_registry_and_absence(tmp_path, monkeypatch):
    from corenet.layers.activations import ReLU
    from corenet.network import NeuralNetwork, save

    (tmp_path / "mine.py").write_text(CONTRACT_RELU + "\n\nclass Sub(__import__('corenet').network.NeuralNetwork):"
                                      "\n    pass\n")
    targets = Targets({"ReLU": f"{tmp_path / 'mine.py'}:ReLU", "LSTM": None, "Conv": f"{tmp_path / 'mine.py'}:Conv",
                       "NeuralNetwork": f"{tmp_path / 'mine.py'}:Sub", "Flatten": "corenet.layers.flatten:Flatten"})
    relu = targets.resolve("ReLU")
    assert relu.status == OK and relu.foreign and relu.obj is not ReLU
    assert targets.resolve("LSTM").status == NOT_IMPLEMENTED
    assert targets.resolve("Conv").status == NOT_IMPLEMENTED and "has no Conv" in targets.resolve("Conv").message
    assert targets.is_foreign("NeuralNetwork") and targets.reference("NeuralNetwork") is NeuralNetwork
    assert not targets.is_foreign("Flatten")  # corenet's own class, named by module
    assert targets.resolve("save").obj is save and not targets.is_foreign("save")
    assert targets.resolve("SoftMax").source.startswith("reference (corenet)")
    assert targets.reference("ReLU") is ReLU
    assert targets.resolve("Nothing").status == NOT_IMPLEMENTED


@pytest.mark.parametrize(("text", "fragment"), [
    ("{", "not valid JSON"), ("[1]", "must be a JSON object"), ('{"ReLU": 3}', "'module:Class'"),
    ('{"ReLU": "no_colon"}', "'module:Class'"),
])
def test_bad_targets_variable(text, fragment):
    with pytest.raises(TargetError, match="CORENET_TARGETS"):
        parse_targets(text)
    with pytest.raises(TargetError) as info:
        parse_targets(text)
    assert fragment in str(info.value)


def test_course_targets_map_files_onto_names(tmp_path):
    folder = write_course_folder(tmp_path, ["Sgd", "LeNet", "save"])
    targets = course_targets(folder)
    assert targets["Sgd"] == "Optimization.Optimizers:Sgd"
    assert targets["LeNet"] == "Models.LeNet:build"
    assert targets["save"] == "NeuralNetwork:save" and targets["load"] == "NeuralNetwork:load"
    assert targets["Adam"] == "Optimization.Optimizers:Adam"  # the file exists; the class is looked up later
    assert targets["LSTM"] is None
    assert set(course_sources()) == {file for file, _ in COURSE_LAYOUT.values()}


def test_a_group_whose_file_does_not_import_is_an_error(fake_site, tmp_path):
    package = tmp_path / "corenet_brokengroup"
    (package / "conformance").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from corenet import hookimpl\nfrom corenet.plugins import package_path\n\n\n@hookimpl\n"
        "def corenet_register_test_groups(register):\n"
        "    path = package_path(__file__, 'conformance', 'test_broken.py')\n"
        "    register('TestBrokenGroup', [path], 1, names=['ReLU'])\n")
    (package / "conformance" / "test_broken.py").write_text("import no_such_module_anywhere\n")
    fake_site.add_distribution("corenet-brokengroup", {"brokengroup": "corenet_brokengroup"},
                               packages={"corenet_brokengroup": package})
    result = fake_site.run("run-tests", "-g", "TestBrokenGroup", "-g", "TestFlatten", "--json",
                           str(tmp_path / "r.json"))
    assert result.returncode != 0
    report = json.loads((tmp_path / "r.json").read_text())
    broken = report["groups"]["TestBrokenGroup"]
    assert broken["status"] == "error" and "no_such_module_anywhere" in broken["message"]
    assert broken["names"] == ["ReLU"]
    assert report["groups"]["TestFlatten"]["status"] == "passed"
    assert "TestBrokenGroup  error: " in result.stdout
