"""`corenet install` by short name: bundled plugins' checkout folders, pip -q unless -v, did-you-mean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import corenet.cli as cli
from corenet.catalog import BUNDLED

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pip_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: calls.append(command) or 0)
    return calls


def install(*args):
    return runner.invoke(cli.app, ["install", *map(str, args)])


def test_short_names_install_the_checkout_folders_quietly(pip_calls, monkeypatch):
    monkeypatch.chdir(REPO)
    result = install("dropout", "reg-l1l2", "corenet-batchnorm", "reg_l1l2")
    assert result.exit_code == 0, result.output
    (command,) = pip_calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"] and command[4] == "-q"
    assert command[5:] == [str(REPO / "plugins" / folder) for folder in ("dropout", "reg_l1l2", "batchnorm",
                                                                          "reg_l1l2")]


def test_verbose_drops_quiet_and_editable_applies_to_folders(pip_calls):
    assert install("-v", "-e", "lenet").exit_code == 0
    (command,) = pip_calls
    assert "-q" not in command and command[-2:] == ["-e", str(REPO / "plugins" / "lenet")]


def test_paths_and_requirements_pass_through(pip_calls, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert install("./plugins/recurrent", "corenet-foo>=1.0", "--pypi").exit_code == 0
    assert pip_calls[0][-2:] == ["./plugins/recurrent", "corenet-foo>=1.0"]
    assert install("--pypi", "somepackage").exit_code == 0 and pip_calls[1][-1] == "somepackage"


def test_outside_a_checkout_the_distribution_is_installed(pip_calls, monkeypatch):
    import corenet.catalog as catalog

    monkeypatch.setattr(catalog, "checkout_folder", lambda entry: None)
    assert install("recurrent").exit_code == 0 and pip_calls[0][-1] == "corenet-recurrent"


def test_unknown_name_gets_did_you_mean_and_the_list(pip_calls):
    result = install("dropuot")
    assert result.exit_code == 2 and not pip_calls
    assert "unknown plugin 'dropuot' (did you mean 'dropout'?)" in result.stderr
    for entry in BUNDLED:
        assert f"{entry.short_name} ({entry.distribution})" in result.stderr
    assert "corenet install --pypi dropuot" in result.stderr
    assert "did you mean" not in install("zzzz").stderr
