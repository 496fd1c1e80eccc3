"""corenet new-plugin: the generated project installs, passes its own tests, shows up and trains; the
generic layer contract it runs catches broken layers; bad names are refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corenet.plugin_template import TemplateError, plan_plugin, render, snake_case
from corenet.plugins import get_registry


def corenet(*args: str, cwd: Path, python: str = sys.executable, env: dict | None = None):
    environment = {k: v for k, v in os.environ.items() if k not in ("CORENET_TARGETS", "CORENET_IMPL",
                                                                    "CORENET_LOAD_PLUGINS", "PYTHONPATH")}
    environment.update(env or {})
    return subprocess.run([python, "-m", "corenet", *args], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=300)


def pytest_in(folder: Path, python: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CORENET_TARGETS", "PYTHONPATH")}
    return subprocess.run([python, "-m", "pytest", "-q", "-rA"], capture_output=True, text=True, cwd=folder,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """swish (a layer) and scale (a trainable layer), generated and `pip install -e`d into a throw-away venv
    that sees this environment's packages (corenet, its plugins, setuptools)."""
    from conftest import FakeSite

    pytest.importorskip("setuptools", reason="the editable install builds with this environment's setuptools")
    root = tmp_path_factory.mktemp("new-plugin")
    outputs = [corenet("new-plugin", "swish", cwd=root), corenet("new-plugin", "scale", "--trainable", cwd=root)]
    for result in outputs:
        assert result.returncode == 0, result.stderr
    site = FakeSite(root / "venv")
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(site.python), "install", "-q",
                          "--no-build-isolation", "--no-deps", "-e", str(root / "corenet-swish"),
                          "-e", str(root / "corenet-scale")], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return root, str(site.python), outputs


def test_generated_projects_pass_their_own_tests(installed):
    root, python, _ = installed
    for project, passed in (("corenet-swish", 4), ("corenet-scale", 8)):
        result = pytest_in(root / project, python)
        assert result.returncode == 0, result.stdout[-3000:]
        assert f"{passed} passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


def test_list_layers_shows_the_new_layers(installed):
    root, python, _ = installed
    result = corenet("list-layers", "--json", cwd=root, python=python)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    layers = json.loads(text)
    flat = json.dumps(layers)
    assert '"Swish"' in flat and '"Scale"' in flat and "corenet-swish" in flat and "corenet-scale" in flat


def test_corenet_check_and_a_yaml_config_use_them(installed):
    root, python, outputs = installed
    result = corenet("check", "-g", "TestSwish", "-g", "TestScale", "--json", "report.json", cwd=root, python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((root / "report.json").read_text())
    assert report["groups"]["TestSwish"]["tiers"]["contract"]["passed"] == 4
    assert report["groups"]["TestScale"]["tiers"]["contract"]["passed"] == 8
    assert "corenet train corenet-scale/iris-scale.yaml" in outputs[1].stdout
    trained = corenet("train", "corenet-scale/iris-scale.yaml", "--iterations", "10", "--no-checkpoint", cwd=root,
                      python=python)
    assert trained.returncode == 0, trained.stderr
    # the summary row: class, implementation (the plugin's label), output shape, parameters, their shapes
    assert re.search(r"Scale +corenet-scale +\(b, 16\) +32  weights 16, bias 16", trained.stdout), trained.stdout
    assert "test accuracy:" in trained.stdout


def test_editable_install_sees_edits_and_the_check_names_a_wrong_gradient(installed):
    root, python, _ = installed
    layer = root / "corenet-swish" / "corenet_swish" / "swish.py"
    original = layer.read_text()
    try:
        # forward becomes 2x; backward still passes the error through unchanged: a wrong derivative
        layer.write_text(original.replace("return input_tensor.copy()", "return 2.0 * input_tensor"))
        result = corenet("check", "-g", "TestSwish", cwd=root, python=python)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "backward's error w.r.t. the input differs from central differences" in result.stdout
    finally:
        layer.write_text(original)


# -- the generic contract catches broken layers (and passes corenet's own) ------------------------------
BROKEN = '''
import numpy as np

from corenet.base import TrainableLayer
from corenet_scale_fixture import Scale


class NoUpdate(Scale):
    def apply_update(self, name, gradient):
        pass


class LastRowGradient(Scale):
    def backward(self, error_tensor):
        error = super().backward(error_tensor)
        self.gradient_weights = np.sum(error_tensor[-1:] * self._input[-1:], axis=0)
        return error


class InPlace(Scale):
    def forward(self, input_tensor):
        output = super().forward(input_tensor)
        input_tensor += 1.0  # scribbles on the caller's array
        return output


class IgnoresInitializers(Scale):
    def initialize(self, weights_initializer, bias_initializer):
        self.weights = np.full(self.features, 0.5)
'''
CONTRACTS = '''
from corenet.checking.generic import TrainableLayerContract


class TestFullyConnected(TrainableLayerContract):
    name = "FullyConnected"
    input_shape = (3, 4)

    def make(self, layer_class):
        return layer_class(4, 2)
''' + "".join(f'''

class Test{name}(TrainableLayerContract):
    name = "{name}"
    input_shape = (3, 4)

    def make(self, layer_class):
        return layer_class(4)
''' for name in ("Scale", "NoUpdate", "LastRowGradient", "InPlace", "IgnoresInitializers"))


def test_generic_contract_names_the_broken_layer(tmp_path):
    plan = plan_plugin("scale-fixture", "Scale", trainable=True, folder=tmp_path / "project")
    (tmp_path / "corenet_scale_fixture.py").write_text(render(plan, "0.1")["corenet_scale_fixture/scale.py"])
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "test_contracts.py").write_text(CONTRACTS)
    targets = {name: f"broken:{name}" for name in ("NoUpdate", "LastRowGradient", "InPlace", "IgnoresInitializers")}
    targets["Scale"] = "corenet_scale_fixture:Scale"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CORENET_TARGETS=json.dumps(targets), PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "corenet.checking.pytest_plugin", "-c", os.devnull,
                    "--rootdir", str(tmp_path), "--checking-report", "events.jsonl", "test_contracts.py"],
                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    results = {}
    for line in (tmp_path / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "result":
            results[event["id"].split("::", 1)[1]] = (event["outcome"], event["message"])
    assert len(results) == 6 * 8
    for name in ("FullyConnected", "Scale"):  # corenet's own and the template: no false failures
        assert all(outcome == "passed" for test, (outcome, _) in results.items() if test.startswith(f"Test{name}::"))
    expected = {
        "NoUpdate::test_optimizer_updates_every_parameter": "weights after one Sgd(0.1) step differs",
        "LastRowGradient::test_gradient_with_respect_to_every_parameter":
            "gradient_weights w.r.t. weights differs from central differences",
        "InPlace::test_forward_keeps_the_batch_and_the_input": "forward must not change its input",
        "IgnoresInitializers::test_initialize_takes_the_weights_from_the_initializers":
            "never called weights_initializer.initialize",
    }
    for test, message in expected.items():
        outcome, text = results[f"Test{test}"]
        assert outcome == "failed" and message in text, (test, text)
    failed = {test for test, (outcome, _) in results.items() if outcome != "passed"}
    assert failed >= {f"Test{test}" for test in expected}


# -- names and folders ----------------------------------------------------------------------------------
def test_names_derive_from_the_plugin_name(tmp_path):
    plan = plan_plugin("my-scale", trainable=True, folder=tmp_path / "x")
    assert (plan.distribution, plan.package, plan.entry_point, plan.layer, plan.module, plan.group) == (
        "corenet-my-scale", "corenet_my_scale", "my_scale", "MyScale", "my_scale", "TestMyScale")
    assert plan_plugin("corenet-swish", folder=tmp_path / "y").distribution == "corenet-swish"
    assert [snake_case(n) for n in ("LeakyRelu", "LSTMCell", "LSTM2", "Swish")] == [
        "leaky_relu", "lstm_cell", "lstm2", "swish"]
    files = render(plan, "0.1.0")
    assert set(files) == {"pyproject.toml", "README.md", "iris-my-scale.yaml", "corenet_my_scale/__init__.py",
                          "corenet_my_scale/my_scale.py", "corenet_my_scale/conformance/__init__.py",
                          "corenet_my_scale/conformance/test_my_scale.py"}
    assert '[project.entry-points.corenet]\nmy_scale = "corenet_my_scale"' in files["pyproject.toml"]
    hooks = files["corenet_my_scale/__init__.py"]
    assert "class " not in hooks and hooks.count("@hookimpl") == 2  # hook implementations only
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")


@pytest.mark.parametrize("name, layer, message", [
    ("2fast", None, "plugin name '2fast': use letters"),
    ("my.layer", None, "plugin name 'my.layer'"),
    ("corenet-", None, "add what the plugin is about"),
    ("swish", "my-layer", "--layer my-layer: a layer name must be a Python class name"),
    ("swish", "class", "--layer class"),
    ("recurrent", "Foo", "a package named corenet_recurrent is already importable"),
    ("my-relu", "ReLU", "ReLU is already a registered layer (reference (corenet))"),
])
def test_bad_names_are_refused(tmp_path, name, layer, message):
    with pytest.raises(TemplateError, match=None) as error:
        plan_plugin(name, layer, folder=tmp_path / "x", registry=get_registry())
    assert message in str(error.value)


def test_force_replaces_a_registered_layer_under_its_own_group(tmp_path):
    plan = plan_plugin("my-relu", "ReLU", folder=tmp_path / "x", registry=get_registry(), force=True)
    assert plan.layer == "ReLU" and plan.group == "TestReLUPlugin"  # TestReLU is corenet's group


def test_cli_refuses_a_non_empty_folder_and_bad_names(tmp_path):
    (tmp_path / "corenet-swish").mkdir()
    (tmp_path / "corenet-swish" / "notes.txt").write_text("mine")
    result = corenet("new-plugin", "swish", cwd=tmp_path)
    assert result.returncode == 2 and "corenet-swish already exists and is not an empty folder" in result.stderr
    assert (tmp_path / "corenet-swish" / "notes.txt").read_text() == "mine"
    result = corenet("new-plugin", "swish", "--layer", "Dropout", "--to", "elsewhere", cwd=tmp_path)
    assert result.returncode == 2 and "Dropout is already a registered layer" in result.stderr
    assert "--force" in result.stderr and not (tmp_path / "elsewhere").exists()
    (tmp_path / "empty").mkdir()
    result = corenet("new-plugin", "swish", "--to", "empty", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "corenet_swish" / "swish.py").is_file()
