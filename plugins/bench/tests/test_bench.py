"""The benchmark harness (corenet_bench, `corenet bench`, benchmarks/*.py): structure only, never speed."""

from __future__ import annotations

import copy
import json
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from corenet_bench import measure
from corenet_bench import workloads as wl
from corenet_bench.report import markdown_report
from corenet_bench.runner import SCHEMA
from corenet_bench.suite import parse_dtypes, parse_workloads, run_and_report

from corenet.plugins import Registry, get_registry

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    """These tests check structure, not speed: no settle time of untimed steps opening each block."""
    monkeypatch.setattr(measure, "SETTLE", 0.0)


@pytest.fixture
def tiny_conv(monkeypatch):
    """Shrink W6 so one step takes well under a millisecond."""
    monkeypatch.setattr(wl, "CONV_INPUT", (2, 3, 6, 6))
    monkeypatch.setattr(wl, "CONV_KERNELS", (4, 3, 3))


@pytest.fixture
def no_torch(monkeypatch):
    """Make `import torch` fail as if PyTorch were not installed."""
    monkeypatch.setitem(sys.modules, "torch", None)


def _check_timing(summary: dict, repeats: int) -> None:
    assert len(summary["times_ms"]) == repeats
    assert summary["min_ms"] <= summary["median_ms"] <= summary["max_ms"]
    assert all(t > 0 for t in summary["times_ms"])


def test_one_tiny_workload_writes_well_formed_json(tmp_path, tiny_conv, capsys):
    path = tmp_path / "bench.json"
    returned = run_and_report(["W6"], "both", repeats=1, warmup=0, json_path=path, use_torch=False)
    results = json.loads(path.read_text())
    assert results == json.loads(json.dumps(returned))
    assert results["schema"] == SCHEMA
    assert results["settings"] == {"repeats": 1, "warmup": 0, "dtypes": ["float64", "float32"],
                                   "workloads": ["W6"], "threads_limit": None, "block": 5, "lead": 1,
                                   "impl": ["selected"],
                                   "settle_seconds": 0.0}  # the fixture's; measure.SETTLE otherwise
    assert results["machine"]["numpy_blas_threads"] >= 1 and results["machine"]["date"]
    rows = results["results"]
    assert [(r["workload"], r["dtype"], r["impl"], r["status"]) for r in rows] == [
        ("W6", "float64", "selected", "ok"), ("W6", "float32", "selected", "ok")]
    for row, dtype in zip(rows, ("float64", "float32")):
        _check_timing(row["corenet"], 1)
        assert row["corenet"]["peak_bytes"] > 0 and row["corenet"]["held_bytes"] > 0
        assert set(row["corenet"]["kernel"]) == {"page_faults_per_step", "system_ms_per_step"}
        assert row["corenet"]["dtypes"] == [dtype]  # float32 stays float32 end to end
        assert row["torch"] is None and row["ratio"] is None
    assert "W6" in capsys.readouterr().out


def test_torch_side_gives_a_ratio(tiny_conv):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    results = run_and_report(["W6"], "float64", repeats=2, warmup=1, out=_Sink())
    assert torch.get_num_threads() == threads  # restored after the run
    row = results["results"][0]
    assert results["torch"]["available"]
    assert results["torch"]["threads"] == results["machine"]["numpy_blas_threads"]
    _check_timing(row["torch"], 2)
    assert row["torch"]["dtypes"] == ["float64"]
    assert row["ratio"] == pytest.approx(row["corenet"]["median_ms"] / row["torch"]["median_ms"], rel=1e-3)
    assert row["target"] == 0.6 and isinstance(row["meets_target"], bool)


def test_both_tiers_are_timed_in_one_run_with_their_ratio(tiny_conv):
    registry = get_registry()
    if not any(impl.label == "fast" for impl in registry.implementations_of("layers", "Conv")):
        pytest.skip("corenet-fast is not installed")
    results = run_and_report(["W6"], "float64", repeats=2, warmup=0, use_torch=False, impl="both", out=_Sink())
    assert results["settings"]["impl"] == ["reference", "fast"]
    reference, fast = results["results"]
    assert (reference["impl"], fast["impl"]) == ("reference", "fast")
    assert reference["status"] == fast["status"] == "ok"
    _check_timing(reference["corenet"], 2)
    _check_timing(fast["corenet"], 2)
    assert reference["ratio_to_fast"] == pytest.approx(
        reference["corenet"]["median_ms"] / fast["corenet"]["median_ms"], rel=1e-3)
    assert reference["reference_target"] == wl.REFERENCE_TARGET
    assert reference["meets_reference_target"] == (reference["ratio_to_fast"] <= wl.REFERENCE_TARGET)
    assert reference["target"] is None and fast["target"] == 0.6  # PyTorch targets judge the fast tier
    assert fast["ratio_to_fast"] is None


def test_each_tier_builds_its_own_classes(tiny_conv):
    from corenet_bench import corenet_cases
    from corenet_bench.tiers import TierRegistry

    registry = get_registry()
    reference = registry.implementation("layers", "Conv", "reference")
    case = corenet_cases.build("W6", "float64", TierRegistry(registry, "reference"))
    assert type(case.subject) is reference
    fast = TierRegistry(registry, "fast")
    if fast.covered:
        assert type(corenet_cases.build("W6", "float64", fast).subject) is registry.implementation(
            "layers", "Conv", "fast")
        assert "Conv" in fast.tier_names or registry.layers["Conv"] is not reference


def test_a_tier_nobody_provides_is_skipped(tiny_conv):
    full = get_registry()
    reference_only = copy.copy(full)  # as if corenet-fast were not installed
    reference_only.implementations = {key: [impl for impl in impls if impl.label != "fast"]
                                      for key, impls in full.implementations.items()}
    reference_only.layers = {**full.layers, "Conv": full.implementation("layers", "Conv", "reference")}
    results = run_and_report(["W6"], "float64", repeats=1, warmup=0, use_torch=False, impl="both",
                             registry=reference_only, out=_Sink())
    reference, fast = results["results"]
    assert reference["status"] == "ok" and reference["ratio_to_fast"] is None
    assert fast["status"] == "skipped" and "corenet-fast" in fast["note"]


def test_parse_impl():
    from corenet_bench.tiers import parse_impl

    assert parse_impl(None) == ("selected",)
    assert parse_impl("Both") == ("reference", "fast")
    with pytest.raises(ValueError, match="--impl"):
        parse_impl("quick")


def test_reference_rows_are_judged_against_the_fast_tier():
    from corenet_bench.report import verdict

    row = {"status": "ok", "workload": "W4", "impl": "reference", "reference_target": 2.5, "ratio_to_fast": 3.0,
           "meets_reference_target": False}
    assert verdict(row) == "missed: 1.2x the target"
    assert verdict({**row, "ratio_to_fast": 2.0, "meets_reference_target": True}) == "met"
    assert verdict({**row, "reference_target": None}) == "no target"


def test_core_cli_has_no_bench_without_the_plugin(monkeypatch):
    """`corenet bench` comes from the corenet-bench plugin through the commands hook, not from corenet.cli."""
    import corenet.cli

    source = Path(corenet.cli.__file__).read_text(encoding="utf-8")
    assert '"bench"' not in source and "corenet_bench" not in source


def test_threads_limit_applies_to_numpy_and_torch(tiny_conv):
    pytest.importorskip("threadpoolctl")
    results = run_and_report(["W6"], "float64", repeats=1, warmup=0, threads=1, out=_Sink())
    assert results["settings"]["threads_limit"] == 1
    assert results["machine"]["numpy_blas_threads"] == 1
    if results["torch"]["available"]:
        assert results["torch"]["threads"] == 1


def test_reports_missing_torch(tmp_path, tiny_conv, no_torch, capsys):
    results = run_and_report(["W6"], "float64", repeats=1, warmup=0, json_path=tmp_path / "b.json")
    assert results["torch"]["available"] is False
    assert "PyTorch is not installed" in results["torch"]["reason"]
    assert results["results"][0]["status"] == "ok" and results["results"][0]["torch"] is None
    assert "PyTorch is not installed" in capsys.readouterr().out


def test_cli_bench_without_torch(tmp_path, tiny_conv, no_torch):
    from typer.testing import CliRunner

    from corenet.cli import app

    path = tmp_path / "cli.json"
    outcome = CliRunner().invoke(app, ["bench", "-w", "w6", "--repeats", "1", "--warmup", "0",
                                       "--dtype", "float32", "--json", str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert "PyTorch is not installed" in outcome.output
    assert json.loads(path.read_text())["results"][0]["dtype"] == "float32"


def test_cli_bench_rejects_unknown_workload():
    from typer.testing import CliRunner

    from corenet.cli import app

    outcome = CliRunner().invoke(app, ["bench", "-w", "W9", "--no-torch"])
    assert outcome.exit_code == 2
    assert "unknown workload 'W9'" in outcome.output


def test_cli_bench_rejects_unknown_tier():
    from typer.testing import CliRunner

    from corenet.cli import app

    outcome = CliRunner().invoke(app, ["bench", "-w", "W6", "--impl", "quick", "--no-torch"])
    assert outcome.exit_code == 2
    assert "--impl must be one of reference, fast, both" in outcome.output


def test_missing_plugin_is_skipped_with_a_note():
    full = get_registry()
    core_only = Registry(layers={k: v for k, v in full.layers.items() if k not in ("Dropout", "RNN")},
                         optimizers=full.optimizers, initializers=full.initializers)
    results = run_and_report(["W5", "W2"], "float64", repeats=1, warmup=0, use_torch=False,
                             registry=core_only, out=_Sink())
    for row, plugin in zip(results["results"], ("corenet-dropout", "corenet-recurrent")):
        assert row["status"] == "skipped" and plugin in row["note"] and row["corenet"] is None


def test_startup_workload_times_new_processes():
    results = run_and_report(["W7"], "float64", repeats=1, warmup=0, use_torch=False, out=_Sink())
    rows = results["results"]
    assert [r["command"] for r in rows] == ["corenet --help", "corenet list-layers"]
    for row in rows:
        assert row["status"] == "ok", row["note"]
        _check_timing(row["corenet"], 1)
        assert row["target_ms"] == 500 and isinstance(row["meets_target"], bool)


def test_make_table_script_renders_markdown(tmp_path, tiny_conv, no_torch, monkeypatch):
    path = tmp_path / "b.json"
    results = run_and_report(["W6"], "float64", repeats=1, warmup=0, json_path=path, out=_Sink())
    table = tmp_path / "table.md"
    monkeypatch.setattr(sys, "argv", ["make_table.py", str(path), "-o", str(table)])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "benchmarks" / "make_table.py"), run_name="__main__")
    assert stopped.value.code == 0
    text = table.read_text()
    assert text == markdown_report(results)
    assert results["machine"]["cpu"] in text and results["machine"]["date"][:10] in text
    assert "| W6 |" in text and "PyTorch is not installed" in text


def test_make_table_refuses_other_json(tmp_path, monkeypatch, capsys):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    monkeypatch.setattr(sys, "argv", ["make_table.py", str(path)])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "benchmarks" / "make_table.py"), run_name="__main__")
    assert stopped.value.code == 2
    assert "not a corenet benchmark result" in capsys.readouterr().err


def test_parsers():
    assert parse_workloads(None) == list(wl.WORKLOADS)
    assert parse_workloads(["w1,3", "W1", "6"]) == ["W1", "W3", "W6"]
    assert parse_dtypes("Both") == ("float64", "float32")
    with pytest.raises(ValueError, match="W0"):
        parse_workloads(["W0"])
    with pytest.raises(ValueError, match="--dtype"):
        parse_dtypes("float16")


def test_interleaved_runs_alternating_blocks_after_warmup():
    calls: list[str] = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = measure.interleaved(steps, repeats=3, warmup=1, block=2, lead=1, settle=0.0)
    assert [len(times["a"]), len(times["b"])] == [3, 3]
    # warm-up a, b; round 1: a (lead) a a, b (lead) b b; round 2 reversed: b (lead) b, a (lead) a
    assert "".join(calls) == "ab" + "aaa" + "bbb" + "bb" + "aa"


def test_each_block_opens_with_settle_seconds_of_untimed_steps(monkeypatch):
    calls: list[str] = []

    def slow(name: str):
        def step():
            calls.append(name)
            time.sleep(0.01)
        return step

    monkeypatch.setattr(measure, "SETTLE", 0.05)  # the default
    times = measure.interleaved({"a": slow("a"), "b": slow("b")}, repeats=2, warmup=0, block=2, lead=1)
    assert [len(times["a"]), len(times["b"])] == [2, 2]
    runs = "".join(calls)
    a_runs = len(runs) - len(runs.lstrip("a"))
    b_runs = len(runs) - a_runs
    assert runs == "a" * a_runs + "b" * b_runs  # one round: a's block, then b's
    # each block: at least 0.05 s of 0.01-s steps untimed (5 or more), then the 2 timed ones
    assert 5 + 2 <= a_runs <= 12 and 5 + 2 <= b_runs <= 12


def test_numpy_peak_bytes_sees_a_temporary_array():
    peak = measure.numpy_peak_bytes(lambda: np.ones(1_000_000).sum())
    assert 8_000_000 <= peak < 9_000_000


class _Sink:
    def write(self, text: str) -> int:
        return len(text)


def _compiled_batchnorm() -> bool:
    """Whether corenet-fast's compiled BatchNormalization kernels are available here."""
    try:
        from corenet_fast.numba import kernels
    except ImportError:
        return False
    return kernels("batchnorm") is not None


def _floors_module():
    return runpy.run_path(str(REPO / "benchmarks" / "floors.py"), run_name="floors")


def test_floors_script_times_floors_beside_both_frameworks(tmp_path, tiny_conv, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.setattr(wl, "BATCHNORM_SHAPE", (4, 3, 5, 5))
    floors = _floors_module()
    path = tmp_path / "floors.json"
    assert floors["main"](["-w", "W6", "-w", "W4", "--dtype", "float64", "-r", "3", "--warmup", "0",
                           "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert [(row["workload"], row["dtype"]) for row in rows] == [("W6", "float64"), ("W4", "float64")]
    assert set(rows[0]["median_ms"]) == {"corenet", "torch", "GEMMs", "floor"}
    # with corenet-fast's numba kernels, W4 also times them alone ("kernels")
    kernels = {"kernels"} if _compiled_batchnorm() else set()
    assert set(rows[1]["median_ms"]) == {"corenet", "torch", "floor"} | kernels
    for row in rows:
        medians = row["median_ms"]
        assert row["ratio_to_torch"]["floor"] == round(medians["floor"] / medians["torch"], 3)
        assert row["budget_ms"] == round(row["target"] * medians["torch"], 3)
        assert row["floor_fits_target"] == (medians["floor"] <= row["target"] * medians["torch"])
    table = capsys.readouterr().out
    assert "| W6 | float64 |" in table and "| W4 | float64 |" in table


def test_floors_script_needs_torch(no_torch, capsys):
    with pytest.raises(SystemExit) as stopped:
        _floors_module()["main"](["-w", "W4", "-r", "1"])
    assert stopped.value.code == 2
    assert "PyTorch is not installed" in capsys.readouterr().err


def test_floor_kernels_compute_what_the_layers_compute():
    """The elementwise floors of W1 do the real work: the same maxima and routed errors as Pooling, the same
    output and masked error as ReLU."""
    from corenet.layers.activations import ReLU
    from corenet.layers.pooling import Pooling

    floors = _floors_module()
    rng = np.random.default_rng(0)
    pool = floors["_Pool"]((2, 3, 6, 6), np.dtype(np.float64), rng)
    pool()
    layer = Pooling(2, 2)
    np.testing.assert_array_equal(pool.out, layer.forward(pool.x))
    np.testing.assert_array_equal(pool.gradient, layer.backward(pool.error))
    relu = floors["_Relu"]((2, 3, 4, 4), np.dtype(np.float64), rng)
    relu()
    layer = ReLU()
    layer.forward(relu.x)
    np.testing.assert_array_equal(relu.out, layer.backward(relu.error))


def test_report_states_the_settle_time():
    from corenet_bench.report import describe_settings

    settings = {"repeats": 40, "warmup": 5, "block": 5, "lead": 1}
    assert "one untimed step after each switch" in describe_settings({"settings": settings})
    text = describe_settings({"settings": {**settings, "settle_seconds": 0.25}})
    assert "untimed steps for at least 0.25 s (one step at least) after each switch" in text


def test_worst_of_several_runs(tmp_path, tiny_conv, monkeypatch, capsys):
    registry = get_registry()
    if not any(impl.label == "fast" for impl in registry.implementations_of("layers", "Conv")):
        pytest.skip("corenet-fast is not installed")
    paths = []
    for index in range(2):
        path = tmp_path / f"run{index}.json"
        run_and_report(["W6"], "float64", repeats=1, warmup=0, use_torch=False, impl="both", json_path=path,
                       out=_Sink())
        paths.append(path)
    runs = [json.loads(path.read_text()) for path in paths]
    for run in runs:  # as if PyTorch had run: fixed ratios, so the worst is known
        for row, ratio in zip(run["results"], (None, 0.5 + len(paths))):
            row["ratio"], row["ratio_of_minimums"] = ratio, ratio
        paths[runs.index(run)].write_text(json.dumps(run))
    runs[1]["results"][1]["ratio"] = 0.9
    paths[1].write_text(json.dumps(runs[1]))
    monkeypatch.setattr(sys, "argv", ["make_table.py", *map(str, paths)])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / "benchmarks" / "make_table.py"), run_name="__main__")
    assert stopped.value.code == 0
    table = capsys.readouterr().out
    assert "Worst of 2 runs" in table
    line = next(line for line in table.splitlines() if line.startswith("| W6 | float64 |"))
    worst_ratio = max(run["results"][0]["ratio_to_fast"] for run in runs)
    assert line.startswith(f"| W6 | float64 | 2.50 (≤ 0.6) | 2.50 | {worst_ratio:.2f} (≤ 2.5) |")
