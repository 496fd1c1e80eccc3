"""The errors corenet-export raises."""

from __future__ import annotations

from corenet.errors import CorenetError

#: what to install for each optional part
EXTRAS = {
    "torch": ("PyTorch", "pip install 'corenet-export[torch]'"),
    "onnx": ("onnx", "pip install 'corenet-export[onnx]'"),
    "onnxruntime": ("onnxruntime", "pip install 'corenet-export[onnx]'"),
}


class ExportError(CorenetError, ValueError):
    """A network (or one of its layers) cannot be exported, or weights cannot be imported."""


class MissingExtra(CorenetError, ImportError):
    """An optional package (torch, onnx, onnxruntime) is not installed; the message says what to install."""

    def __init__(self, module: str, purpose: str) -> None:
        label, command = EXTRAS[module]
        self.install = command
        super().__init__(f"{purpose} needs {label}, which is not installed: {command}")


def require(module: str, purpose: str):
    """Import ``module`` (``torch``, ``onnx`` or ``onnxruntime``) or raise :class:`MissingExtra`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(module, purpose) from exc
