"""Exported networks compute what corenet computes: LeNet (MNIST), digits (Conv + BatchNormalization +
Dropout), iris, and recall's RNN and LSTM, in PyTorch (float64, 1e-6 relative) and in onnxruntime
(float32, 1e-5 relative), with the same predicted class for every test sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from corenet_export import export_onnx, export_torch
from corenet_export.verify import agreement, run_onnx, run_torch


def test_pytorch_agrees_with_corenet(case, tmp_path: Path):
    pytest.importorskip("torch")
    expected = case.corenet_outputs()
    result = export_torch(case.network, tmp_path / f"{case.name}.pt")
    assert result.module == tmp_path / f"{case.name}.py"
    outputs = run_torch(result.weights, result.module, result.class_name, case.inputs)
    assert all(output.dtype == expected[0].dtype for output in outputs)
    found = agreement(outputs, expected)
    assert found.same_classes
    assert found.max_relative <= 1e-6
    assert found.samples == sum(len(x) for x in case.inputs)


def test_onnxruntime_agrees_with_corenet(case, tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    expected = case.corenet_outputs()
    result = export_onnx(case.network, tmp_path / f"{case.name}.onnx")
    assert result.opset == 17
    found = agreement(run_onnx(result.path, case.inputs), expected)
    assert found.same_classes
    assert found.max_relative <= 1e-5
