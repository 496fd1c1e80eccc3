"""The commands end to end (train -> export -> load in a fresh PyTorch process / onnxruntime -> import-weights ->
evaluate), what they say without the optional packages, unexportable layers, and exporters from plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from corenet_export import ExportError, LayerExporter, export_onnx, export_torch
from corenet_export.verify import agreement, corenet_outputs, run_onnx, run_torch
from typer.testing import CliRunner

import corenet
from corenet import hookimpl
from corenet.base import BaseLayer
from corenet.cli import app
from corenet.network import NeuralNetwork

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def iris_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("iris")
    result = invoke("train", "iris", "-n", "100", "-q", "-o", folder / "iris.ckpt")
    assert result.exit_code == 0, result.output
    return folder / "iris.ckpt"


def iris_inputs() -> np.ndarray:
    from corenet.data.iris import IrisData

    return IrisData(16).get_test_set()[0]


def test_export_torch_then_load_in_a_fresh_python(iris_checkpoint: Path, tmp_path: Path):
    pytest.importorskip("torch")
    result = invoke("export", iris_checkpoint, "--to", "torch", tmp_path / "iris-flowers.pt")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'iris-flowers.pt'} (state dict, 4 tensors) and {tmp_path / 'iris_flowers.py'} " \
           f"(class IrisFlowers)" in result.stdout
    x = iris_inputs()
    np.save(tmp_path / "x.npy", x)
    script = ("import json, numpy, torch\n"
              "from iris_flowers import IrisFlowers\n"
              "model = IrisFlowers()\n"
              "model.load_state_dict(torch.load('iris-flowers.pt', weights_only=True))\n"
              "model.eval()\n"
              "y = model(torch.from_numpy(numpy.load('x.npy'))).detach().numpy()\n"
              "print(json.dumps(y.tolist()))\n")
    ran = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    found = agreement([np.array(json.loads(ran.stdout))], corenet_outputs(corenet.load(iris_checkpoint, None), [x]))
    assert found.same_classes and found.max_relative <= 1e-6


def test_export_onnx_is_checked_and_runs(iris_checkpoint: Path, tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    target = tmp_path / "iris.onnx"
    result = invoke("export", iris_checkpoint, "--to", "onnx", target)
    assert result.exit_code == 0, result.output
    assert "ONNX opset 17, float32" in result.stdout
    model = onnx.load(str(target))
    onnx.checker.check_model(model, full_check=True)
    assert [op.version for op in model.opset_import] == [17]
    assert [d.dim_value or d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim] == ["batch", 3]
    x = iris_inputs()
    found = agreement(run_onnx(target, [x]), corenet_outputs(corenet.load(iris_checkpoint, None), [x]))
    assert found.same_classes and found.max_relative <= 1e-5


def test_import_weights_then_evaluate(iris_checkpoint: Path, tmp_path: Path):
    pytest.importorskip("torch")
    assert invoke("export", iris_checkpoint, "--to", "torch", tmp_path / "iris.pt").exit_code == 0
    back = tmp_path / "back.ckpt"
    result = invoke("import-weights", tmp_path / "iris.pt", "--into", "iris", "-o", back)
    assert result.exit_code == 0, result.output
    assert "layer0.{weight, bias} -> layer 0 (FullyConnected(4, 16))" in result.stdout
    assert f"wrote {back} (2 weighted parts" in result.stdout
    for before, after in zip(corenet.load(iris_checkpoint, None).layers, corenet.load(back, None).layers):
        for name in ("weights", "bias"):
            if getattr(before, name, None) is not None:
                assert np.asarray(getattr(after, name)).tobytes() == np.asarray(getattr(before, name)).tobytes()
    original = json.loads(invoke("evaluate", iris_checkpoint, "--json").stdout)
    imported = json.loads(invoke("evaluate", back, "--json").stdout)  # the data set comes from the config
    assert imported["accuracy"] == original["accuracy"]
    assert imported["confusion"] == original["confusion"]


def test_import_weights_refusal_is_one_line(tmp_path: Path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(4, 3).state_dict(), tmp_path / "one-layer.pt")
    result = invoke("import-weights", tmp_path / "one-layer.pt", "--into", "iris", "-o", tmp_path / "x.ckpt")
    assert result.exit_code == 1
    assert "has 1 parameter groups ((top level)), but the network has 2 weighted parts" in result.stderr
    assert not (tmp_path / "x.ckpt").exists()


@pytest.mark.parametrize(("target", "module", "extra"), [("torch", "torch", "torch"), ("onnx", "onnx", "onnx")])
def test_missing_extra_says_what_to_install(iris_checkpoint, tmp_path: Path, without, target, module, extra):
    without(module)
    result = invoke("export", iris_checkpoint, "--to", target, tmp_path / f"out.{target}")
    assert result.exit_code == 1
    assert f"is not installed: pip install 'corenet-export[{extra}]'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_import_weights_without_torch_says_what_to_install(tmp_path: Path, without):
    without("torch")
    (tmp_path / "model.pt").write_bytes(b"")
    result = invoke("import-weights", tmp_path / "model.pt", "--into", "iris")
    assert result.exit_code == 1
    assert "Reading a PyTorch state dict needs PyTorch, which is not installed: " \
           "pip install 'corenet-export[torch]'" in result.stderr


class Square(BaseLayer):
    """x * x; no exporter unless a plugin brings one."""

    def forward(self, input_tensor):
        return input_tensor * input_tensor

    def backward(self, error_tensor):
        raise NotImplementedError


def square_network() -> NeuralNetwork:
    net = NeuralNetwork(None, None, None)
    net.layers.extend([corenet.get_registry().layers["FullyConnected"](3, 2), Square()])
    return net


def test_a_layer_without_exporter_names_itself(tmp_path: Path):
    with pytest.raises(ExportError, match=r"^layer 1 \(Square\(\)\) cannot be exported: no exporter for the layer "
                                          r"name 'Square'. Exporters exist for: BatchNormalization, Conv, .*"
                                          r"corenet_register_exporters"):
        export_torch(square_network(), tmp_path / "square.pt")
    assert not list(tmp_path.iterdir())


def test_cli_names_the_layer_without_exporter(tmp_path: Path, monkeypatch, digits_case):
    from corenet_export import layers

    monkeypatch.delitem(layers.BUILTIN, "Dropout")
    corenet.save(tmp_path / "digits.ckpt", digits_case.network)
    result = invoke("export", tmp_path / "digits.ckpt", "--to", "onnx", tmp_path / "digits.onnx")
    assert result.exit_code == 1
    assert "error: layer 5 (Dropout(0.8)) cannot be exported: no exporter for the layer name 'Dropout'" \
           in result.stderr


class SquareExporter(LayerExporter):
    def torch(self, layer, out):
        out.line("x = x * x")

    def onnx(self, layer, out):
        return out.node("Mul", [out.input, out.input])


def plugin(name: str, register_calls):
    module = types.ModuleType(name)

    @hookimpl
    def corenet_register_exporters(register):
        register_calls(register)

    module.corenet_register_exporters = corenet_register_exporters
    return module


@pytest.fixture
def plugins():
    from corenet.plugins import get_plugin_manager

    pm = get_plugin_manager()
    added = []

    def add(name: str, register_calls):
        module = plugin(name, register_calls)
        pm.register(module, name=name)
        added.append(module)

    yield add
    for module in added:
        pm.unregister(module)


def test_a_plugin_exporter_exports_its_layer(plugins, tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    plugins("square-plugin", lambda register: register("Square", SquareExporter()))
    net = square_network()
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3))
    expected = net.test(x)
    result = export_torch(net, tmp_path / "square.pt")
    assert "x = x * x" in result.module.read_text()
    torch_found = agreement(run_torch(result.weights, result.module, result.class_name, [x]), [expected])
    onnx_found = agreement(run_onnx(export_onnx(net, tmp_path / "square.onnx").path, [x]), [expected])
    assert torch_found.max_relative <= 1e-12
    assert onnx_found.max_relative <= 1e-5


def test_two_plugins_exporting_one_name_is_reported(plugins, tmp_path: Path, capsys):
    plugins("square-a", lambda register: register("Square", SquareExporter()))
    plugins("square-b", lambda register: register("Square", SquareExporter()))
    plugins("broken", lambda register: 1 / 0)
    with pytest.raises(ExportError, match=r"layer 1 \(Square\(\)\): the plugins 'square-\w', 'square-\w' all register "
                                          r"an exporter for 'Square'"):
        export_onnx(square_network(), tmp_path / "square.onnx")
    assert "plugin 'broken' failed to register exporters: division by zero" in capsys.readouterr().err
