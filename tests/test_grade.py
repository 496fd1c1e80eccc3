"""corenet grade: a folder of submissions, partial credit from the contract tier, timeouts, shards, usage errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from course_layout import write_course_folder

from corenet.checking.results import GroupReport, TestRecord
from corenet.grading.score import score_group
from corenet.grading.submissions import Submission, parse_shard, shard
from corenet.grading.weights import COURSE_WEIGHTS, WeightsError, check_groups, read_weights

HERE = Path(__file__).resolve().parent
DROPOUT = (HERE / "fixtures" / "api_only" / "dropout.py").read_text()
#: inverted dropout's classic slip: kept units multiplied by the keep probability instead of divided by it
DROPOUT_TIMES_P = DROPOUT.replace("self.mask = keep / self.probability", "self.mask = keep * self.probability")
HANGING_RELU = '''
from corenet.layers.activations import ReLU as _ReLU


class ReLU(_ReLU):
    def forward(self, input_tensor):
        while True:
            pass
'''
CONTRACT_RELU = (Path(__file__).resolve().parent / "fixtures" / "api_only" / "relu.py").read_text()
WEIGHTS = "TestDropout: 5\nTestReLU: 1\n"


def corenet(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CORENET_TARGETS", "CORENET_IMPL")}
    return subprocess.run([sys.executable, "-m", "corenet", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def plugin_project(folder: Path, hooks: str, modules: dict[str, str]) -> Path:
    """A student's plugin project (pyproject with the corenet entry point, package ``student_plugin``)."""
    package = folder / "src" / "student_plugin"
    package.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "student-plugin"\nversion = "0.1"\n\n'
        '[project.entry-points.corenet]\nstudent = "student_plugin"\n')
    (package / "__init__.py").write_text(hooks)
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)
    return folder


# -- three submissions: correct, broken, hanging ------------------------------------------------------
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submissions"
    names = ("Dropout", "ReLU")
    write_course_folder(subs / "alice", names=names)
    write_course_folder(subs / "bob", names=names, overrides={"Layers/Dropout.py": DROPOUT_TIMES_P})
    write_course_folder(subs / "carol", names=names, overrides={"Layers/ReLU.py": HANGING_RELU})
    (root / "weights.yaml").write_text(WEIGHTS)
    started = time.monotonic()
    result = corenet("grade", str(subs), "--weights", "weights.yaml", "--timeout", "30", "--group-timeout", "6",
                     "--jobs", "2", "--json", "grades.json", "--csv", "grades.csv", cwd=root)
    seconds = time.monotonic() - started
    report = json.loads((root / "grades.json").read_text()) if (root / "grades.json").is_file() else None
    return result, seconds, report, root


def by_name(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["submissions"]}


def test_grade_prints_the_table_in_well_under_a_minute(graded):
    result, seconds, report, _ = graded
    assert result.returncode == 0, result.stdout + result.stderr
    assert seconds < 45, f"grading 3 submissions took {seconds:.0f} s"
    table = result.stdout
    assert "corenet grade: 3 submission(s), out of 6" in table
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 3}
    assert set(lines) >= {"alice", "bob", "carol"}
    assert "timeout" in lines["carol"] and "timeout" not in lines["alice"] + lines["bob"]
    assert "TestDropout (5)" in table and "TestReLU (1)" in table


def test_scores_are_contract_tier_partial_credit(graded):
    _, _, report, _ = graded
    subs = by_name(report)
    alice, bob, carol = subs["alice"], subs["bob"], subs["carol"]
    assert alice["status"] == "ok" and alice["total"] == 6 and alice["failures"] == []
    assert alice["groups"]["TestDropout"] == {**alice["groups"]["TestDropout"], "score": 5, "status": "scored",
                                              "failed": 0, "errors": 0}
    # bob: some contract tests of Dropout fail, naming the bug; credit = 5 * passed / counted
    dropout = bob["groups"]["TestDropout"]
    assert bob["status"] == "ok" and dropout["status"] == "scored"
    assert dropout["passed"] > 0 and dropout["failed"] > 0
    assert dropout["score"] == pytest.approx(5 * dropout["passed"] / (dropout["passed"] + dropout["failed"]), abs=1e-3)
    assert "wrong Dropout scaling: kept units are multiplied by probability" in dropout["message"]
    assert bob["groups"]["TestReLU"]["score"] == 1
    assert bob["total"] == pytest.approx(dropout["score"] + 1, abs=1e-3)
    assert any(f["group"] == "TestDropout" and f["tier"] == "reference" for f in bob["failures"])
    # carol: ReLU's forward never returns; its group is stopped, Dropout still ran and earned full credit
    relu = carol["groups"]["TestReLU"]
    assert carol["status"] == "timeout" and relu["status"] == "timeout"
    assert "test_relu.py::" in relu["message"] and "endless loop" in relu["message"]
    assert relu["errors"] >= 1 and relu["score"] < 1
    assert relu["score"] == pytest.approx(relu["passed"] / (relu["passed"] + relu["errors"] + relu["not_run"]),
                                          abs=1e-3)
    assert carol["groups"]["TestDropout"]["score"] == 5
    assert carol["message"].startswith("TestReLU: ")


def test_json_and_csv_columns(graded):
    _, _, report, root = graded
    assert report["format"] == 1 and report["weights"] == {"TestDropout": 5.0, "TestReLU": 1.0}
    assert report["max_total"] == 6 and report["shard"] is None and report["timeout"] == 30
    assert [s["name"] for s in report["submissions"]] == ["alice", "bob", "carol"]
    for submission in report["submissions"]:
        assert {"name", "kind", "path", "status", "message", "note", "total", "seconds", "groups", "not_implemented",
                "failures"} <= set(submission)
        assert submission["kind"] == "course"
        assert set(submission["groups"]) == {"TestDropout", "TestReLU"}
        assert submission["total"] == pytest.approx(sum(g["score"] for g in submission["groups"].values()), abs=1e-3)
    rows = list(csv.DictReader(io.StringIO((root / "grades.csv").read_text())))
    assert list(rows[0]) == ["submission", "kind", "status", "total", "TestDropout", "TestReLU", "note"]
    assert [row["submission"] for row in rows] == ["alice", "bob", "carol"]
    for row in rows:
        submission = by_name(report)[row["submission"]]
        assert float(row["total"]) == pytest.approx(submission["total"], abs=1e-3)
        assert float(row["TestDropout"]) == pytest.approx(submission["groups"]["TestDropout"]["score"], abs=1e-3)
        assert row["status"] == submission["status"]
    notes = {row["submission"]: row["note"] for row in rows}
    assert notes["alice"] == "" and notes["carol"] == by_name(report)["carol"]["message"]
    assert notes["bob"].startswith("TestDropout: wrong Dropout scaling")


# -- other kinds of submissions ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """A plugin project, a course folder crashing at import, a folder in no known layout, a broken plugin."""
    root = tmp_path_factory.mktemp("kinds")
    subs = root / "submissions"
    hooks = ("from corenet import hookimpl\n\n\n@hookimpl\ndef corenet_register_layers(register):\n"
             "    from student_plugin.relu import ReLU\n\n    register(ReLU)\n")
    plugin_project(subs / "dana", hooks, {"relu": CONTRACT_RELU})
    crash = "import numpy as np\n\nnp.zeros(undefined)\n"
    write_course_folder(subs / "eve", names=("ReLU",), overrides={"Layers/ReLU.py": crash})
    (subs / "frank").mkdir(parents=True)
    (subs / "frank" / "notes.txt").write_text("nothing here")
    plugin_project(subs / "gina", "raise RuntimeError('half-finished hooks')\n", {})
    (root / "weights.json").write_text(json.dumps({"TestDropout": 5, "TestReLU": 1}))
    result = corenet("grade", str(subs), "--weights", "weights.json", "--timeout", "60", "--jobs", "2",
                     "--json", "grades.json", cwd=root)
    return result, json.loads((root / "grades.json").read_text())


def test_plugin_project_is_graded_on_the_classes_it_registers(kinds):
    result, report = kinds
    assert result.returncode == 0, result.stderr
    dana = by_name(report)["dana"]
    assert dana["kind"] == "plugin" and dana["status"] == "ok", dana
    assert dana["groups"]["TestReLU"]["score"] == 1
    # Dropout is installed on this machine, but dana did not provide it: never the installed one's credit
    assert dana["groups"]["TestDropout"] == {**dana["groups"]["TestDropout"], "score": 0, "status": "not implemented"}
    assert dana["total"] == 1
    assert dana["not_implemented"] == ["Dropout"]  # only the names the table's groups test


def test_crash_at_import_is_one_line(kinds):
    _, report = kinds
    eve = by_name(report)["eve"]
    assert eve["status"] == "error"
    assert eve["message"] == ("ReLU: importing Layers.ReLU:ReLU failed (ReLU.py line 3): NameError: name 'undefined' "
                              "is not defined")
    relu = eve["groups"]["TestReLU"]
    assert relu["score"] == 0 and relu["passed"] == 0 and relu["failed"] + relu["errors"] > 0
    assert relu["message"] == eve["message"]


def test_unusable_submissions_are_error_rows(kinds):
    result, report = kinds
    frank, gina = by_name(report)["frank"], by_name(report)["gina"]
    assert frank["status"] == "error" and frank["total"] == 0
    assert frank["message"].startswith("frank is not in the course's layout: none of its files exist")
    assert gina["status"] == "error" and gina["kind"] == "plugin"
    assert gina["message"] == "loading the plugin failed: RuntimeError: half-finished hooks"
    assert "half-finished hooks" in result.stdout


# -- shards -----------------------------------------------------------------------------------------
def test_shards_partition_the_sorted_submissions(tmp_path):
    subs = tmp_path / "submissions"
    names = [f"student{i:02d}" for i in range(7)]
    for name in names:
        (subs / name).mkdir(parents=True)  # no course file: graded instantly as error rows
    (subs / "__pycache__").mkdir()
    (tmp_path / "w.yaml").write_text("TestReLU: 1\n")
    seen = []
    for index in (1, 2):
        result = corenet("grade", str(subs), "--weights", "w.yaml", "--shard", f"{index}/2", "--json",
                         f"part{index}.json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        part = json.loads((tmp_path / f"part{index}.json").read_text())
        assert part["shard"] == f"{index}/2"
        seen.append([s["name"] for s in part["submissions"]])
    assert seen[0] == names[0::2] and seen[1] == names[1::2]
    assert sorted(seen[0] + seen[1]) == names


def test_shard_selection_is_deterministic():
    subs = [Submission(name, Path(name)) for name in ("c", "a", "e", "b", "d")]
    parts = [[s.name for s in shard(subs, i, 3)] for i in (1, 2, 3)]
    assert parts == [["a", "d"], ["b", "e"], ["c"]]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "1/0", "a/b", "1"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


# -- usage errors: exit 2 before anything runs --------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--weights", "w.yaml"], "names a group that no installed plugin provides: TestRNNN"),
    (["--weigths", "w.yaml"], "No such option: --weigths"),
    (["--shard", "3/2"], "--shard 3/2: I must be between 1 and N"),
    (["--jobs", "0"], "--jobs"),
    (["--json", "missing/grades.json"], "--json missing/grades.json: the folder"),
], ids=["unknown-group", "misspelled-option", "bad-shard", "no-jobs", "json-folder-missing"])
def test_usage_errors_exit_2_before_running(tmp_path, args, message):
    write_course_folder(tmp_path / "submissions" / "alice", names=("ReLU", "Dropout"),
                        overrides={"Layers/ReLU.py": HANGING_RELU})
    (tmp_path / "w.yaml").write_text("TestRNNN: 40\nTestDropout: 5\n")
    started = time.monotonic()
    result = corenet("grade", "submissions", *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join((result.stdout + result.stderr).split()), result.stderr
    assert "alice" not in result.stdout and "alice" not in result.stderr  # nothing was graded
    assert time.monotonic() - started < 20
    assert not list(tmp_path.glob("*.json"))


def test_submissions_folder_must_hold_submissions(tmp_path):
    (tmp_path / "empty").mkdir()
    result = corenet("grade", "empty", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "holds no submissions" in result.stderr


# -- weights ----------------------------------------------------------------------------------------
def test_default_weights_are_the_course_table_not_the_plugins_registrations():
    assert COURSE_WEIGHTS["TestRNN"] == 40 and COURSE_WEIGHTS["TestBatchNorm"] == 25
    assert sum(COURSE_WEIGHTS.values()) == 85
    from corenet.plugins import get_registry

    installed = get_registry().test_groups
    check_groups(COURSE_WEIGHTS, installed, "the course's table")  # every course group is installed here
    # the default table is fixed: a group an installed plugin adds never carries weight in a grade
    assert all(name in COURSE_WEIGHTS for name in installed if installed[name].distribution.startswith("corenet"))


def test_weights_file_errors(tmp_path):
    cases = {"list.yaml": ("- TestRNN\n", "expected a mapping"), "negative.yaml": ("TestRNN: -1\n", "number >= 0"),
             "text.json": ('{"TestRNN": "forty"}', "number >= 0"), "broken.json": ("{", "not valid JSON"),
             "empty.yaml": ("", "an empty file")}
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(WeightsError, match=message):
            read_weights(tmp_path / name)
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(tmp_path / "absent.yaml")
    (tmp_path / "ok.yaml").write_text("TestRNN: 40\nTestDropout: 2.5\n")
    assert read_weights(tmp_path / "ok.yaml") == {"TestRNN": 40.0, "TestDropout": 2.5}
    with pytest.raises(WeightsError, match="TestNope"):
        check_groups({"TestNope": 1.0}, ["TestRNN"], "--weights w.yaml")


# -- skipped tests never count as passed -------------------------------------------------------------
def _group(*records: tuple[str, str, str]) -> GroupReport:
    report = GroupReport("TestOptimizers", ("Sgd", "Adam"))
    for index, (tier, outcome, message) in enumerate(records):
        report.tests[f"t{index}"] = TestRecord(tier, outcome, message)
    return report


def test_skipped_tests_never_count_as_passed():
    # Sgd implemented (2 contract tests pass), Adam not (2 contract tests skip): half the credit, not all of it
    half = score_group("TestOptimizers", 10, _group(("contract", "passed", ""), ("contract", "passed", ""),
                                                    ("contract", "skipped", "Adam: not implemented"),
                                                    ("contract", "skipped", "Adam: not implemented"),
                                                    ("reference", "passed", ""), ("corenet", "skipped", "extra")))
    assert (half.score, half.status, half.passed, half.not_implemented) == (5, "scored", 2, 2)
    nothing = score_group("TestOptimizers", 10, _group(("contract", "skipped", "Sgd: not implemented"),
                                                       ("reference", "passed", "")))
    assert (nothing.score, nothing.status) == (0, "not implemented")
    # reference-tier results never move the grade; contract failures and errors count against it
    mixed = score_group("TestOptimizers", 10, _group(("contract", "passed", ""), ("contract", "failed", "x"),
                                                     ("contract", "error", "y"), ("reference", "failed", "z")))
    assert mixed.score == pytest.approx(10 / 3) and mixed.message == "x"
    # contract tests collected but never run (the time ran out) count as not passed
    late = score_group("TestOptimizers", 10, _group(("contract", "passed", "")), collected={"t0", "t1", "t2", "t3"})
    assert late.score == 2.5 and late.not_run == 3
    assert score_group("TestOptimizers", 10, None).score == 0


# -- an installed plugin cannot weigh in; the runner's time limits -----------------------------------
SLOW_GROUPS = '''
import os

from corenet import hookimpl

HERE = os.path.dirname(__file__)


@hookimpl
def corenet_register_test_groups(register):
    register("TestBonus", [os.path.join(HERE, "test_bonus_group.py")], 100, names=("Bonus",))
    register("TestSlowExit", [os.path.join(HERE, "test_slow_exit_group.py")], 0, names=("SlowExit",))
    register("TestHang", [os.path.join(HERE, "test_hang_group.py")], 0, names=("Hang",))
'''
BONUS_TESTS = "def test_free_points():\n    pass\n"
# every test is quick, but the process takes 4 s to exit after the last one
SLOW_EXIT_TESTS = "import atexit\nimport time\n\natexit.register(time.sleep, 4)\n\n\ndef test_quick():\n    pass\n"
HANG_TESTS = "def test_first():\n    pass\n\n\ndef test_hangs():\n    while True:\n        pass\n"


@pytest.fixture
def slow_site(fake_site):
    fake_site.add_distribution("corenet-slow", {"slow": "corenet_slow"},
                               {"corenet_slow": SLOW_GROUPS, "test_bonus_group": BONUS_TESTS,
                                "test_slow_exit_group": SLOW_EXIT_TESTS, "test_hang_group": HANG_TESTS})
    return fake_site


def test_an_installed_plugin_adds_no_weighted_group(slow_site, tmp_path):
    (tmp_path / "submissions" / "ann").mkdir(parents=True)  # not a submission: an instant error row
    listed = slow_site.run("run-tests", "--list")
    assert "TestBonus" in listed.stdout and "100" in listed.stdout  # installed, with a bonus weight of its own
    result = slow_site.run("grade", str(tmp_path / "submissions"), "--json", str(tmp_path / "g.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["weights"] == COURSE_WEIGHTS and report["max_total"] == 85
    assert "TestBonus" not in report["submissions"][0]["groups"]
    # the teacher may choose to weigh it
    (tmp_path / "w.json").write_text('{"TestBonus": 3}')
    chosen = slow_site.run("grade", str(tmp_path / "submissions"), "--json", str(tmp_path / "g.json"), "--weights",
                           str(tmp_path / "w.json"))
    assert chosen.returncode == 0 and json.loads((tmp_path / "g.json").read_text())["max_total"] == 3


RUN = '''
import json, sys, time
from corenet.checking.runner import run_groups
from corenet.plugins import get_registry

groups = [get_registry().test_groups[name] for name in sys.argv[1].split(",")]
timeout = float(sys.argv[2]) if sys.argv[2] != "-" else None
total = float(sys.argv[3]) if sys.argv[3] != "-" else None
started = time.monotonic()
result = run_groups(groups, timeout=timeout, total_timeout=total)
print(json.dumps({"seconds": time.monotonic() - started,
                  "events": [e for e in result.events if e["event"] in ("result", "timeout")]}))
'''


def _run_groups(site, groups: str, timeout: str, total: str) -> dict:
    script = site.root.parent / "run.py"
    script.write_text(RUN)
    done = subprocess.run([str(site.python), str(script), groups, timeout, total], capture_output=True, text=True,
                          env=site.env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pytests_slow_exit_is_no_groups_timeout(slow_site):
    run = _run_groups(slow_site, "TestSlowExit,TestBonus", "2", "-")
    assert [e["event"] for e in run["events"]] == ["result", "result"], run["events"]
    assert {e["outcome"] for e in run["events"]} == {"passed"}
    assert run["seconds"] >= 4  # the process was left to exit on its own


def test_the_whole_runs_time_limit_stops_every_group_left(slow_site):
    run = _run_groups(slow_site, "TestHang,TestBonus", "-", "3")
    assert run["seconds"] < 30
    timeouts = {e["group"]: e for e in run["events"] if e["event"] == "timeout"}
    assert set(timeouts) == {"TestHang", "TestBonus"}
    assert timeouts["TestHang"]["id"] == "test_hang_group.py::test_hangs"
    assert "the time limit of 3 s for the whole run ran out in test_hang_group.py::test_hangs" in \
        timeouts["TestHang"]["message"]
    assert timeouts["TestBonus"]["message"] == "not run: the time limit of 3 s for the whole run ran out"
    assert [e["id"] for e in run["events"] if e["event"] == "result"] == ["test_hang_group.py::test_first"]
