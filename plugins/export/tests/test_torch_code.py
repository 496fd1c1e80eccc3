"""Names of the generated module file and class: importable, and never hiding what the module uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from corenet_export import ExportError, export_torch
from corenet_export.torch_code import class_name_for, module_name_for

from corenet.layers.activations import ReLU
from corenet.layers.fully_connected import FullyConnected
from corenet.network import NeuralNetwork


@pytest.mark.parametrize(("stem", "expected"), [("lenet-mnist", "LenetMnist"), ("digits", "Digits"),
                                                ("2nd try", "Net2ndTry"), ("f", "FNet"), ("none", "NoneNet"),
                                                ("---", "Network")])
def test_class_names(stem, expected):
    assert class_name_for(stem) == expected


@pytest.mark.parametrize(("stem", "expected"), [("lenet-mnist", "lenet_mnist"), ("torch", "torch_model"),
                                                ("json", "json_model"), ("class", "net_class"),
                                                ("corenet_export", "corenet_export_model"), ("3x", "net_3x")])
def test_module_names(stem, expected):
    assert module_name_for(stem) == expected


def test_the_module_file_never_replaces_the_state_dict(tmp_path: Path):
    pytest.importorskip("torch")
    net = NeuralNetwork(None, None, None)
    net.layers += [FullyConnected(2, 2), ReLU()]
    with pytest.raises(ExportError, match=r"model.py: the state dict needs its own file \(e.g. model.pt\)"):
        export_torch(net, tmp_path / "model.py")
    with pytest.raises(ExportError, match=r"class name 'nn' is not a Python identifier, or is a name the generated"):
        export_torch(net, tmp_path / "model.pt", class_name="nn")
    result = export_torch(net, tmp_path / "torch.pt")
    assert result.module.name == "torch_model.py" and result.class_name == "Torch"
    assert "import torch.nn.functional as F" not in result.module.read_text()  # only what the lines use
