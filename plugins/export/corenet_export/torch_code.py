"""A network as PyTorch: a state dict (NumPy arrays until saved) and the source of an ``nn.Module``.

Each layer's exporter declares modules with :meth:`TorchLayerWriter.module` (an
attribute ``layer{index}`` or ``layer{index}{suffix}`` of the generated class, and its
state-dict entries ``layer{index}{suffix}.{parameter}``) and forward lines on the running
tensor ``x``. Nothing here imports torch: :mod:`corenet_export.torch_export` saves the result.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from corenet_export.plan import LayerPlan, network_dtype, plan

#: what an exporter's lines may use: the generated file imports these (``F`` only when a line uses it)
IMPORTS = ("import torch", "import torch.nn.functional as F", "from torch import nn")


@dataclass
class TorchModule:
    """One attribute of the generated class: ``self.{attribute} = {constructor}``."""

    attribute: str
    constructor: str
    parameters: dict[str, np.ndarray]
    layer_index: int


@dataclass
class TorchProgram:
    """The modules, forward lines and state dict of one network."""

    plans: list[LayerPlan]
    dtype: np.dtype
    modules: list[TorchModule] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"layer0.weight": array, ...}`` in declaration order (floating arrays in :attr:`dtype`)."""
        return {f"{module.attribute}.{name}": array for module in self.modules
                for name, array in module.parameters.items()}

    def groups(self, index: int) -> dict[str, dict[str, np.ndarray]]:
        """Layer ``index``'s parameters by module suffix (``""``, ``"_output"``), as its exporter declared them."""
        prefix = f"layer{index}"
        return {module.attribute[len(prefix):]: module.parameters for module in self.modules
                if module.layer_index == index}

    def source(self, class_name: str, weights_file: str, origin: str) -> str:
        """The Python source of the module file (see :func:`module_source`)."""
        return module_source(self, class_name, weights_file, origin)


class TorchLayerWriter:
    """What an exporter's ``torch(layer, out)`` writes to for one layer.

    ``index``, ``rank`` (the input's rank, batch included; None if not known),
    ``dtype`` (the NumPy dtype of the network's weights), ``label`` (for messages).
    """

    def __init__(self, program: TorchProgram, item: LayerPlan) -> None:
        self._program = program
        self.index = item.index
        self.rank = item.input_rank
        self.dtype = program.dtype
        self.label = item.label

    def module(self, constructor: str, parameters: dict[str, np.ndarray] | None = None, suffix: str = "") -> str:
        """Add ``self.layer{index}{suffix} = {constructor}`` (source text; ``DTYPE`` is the weights' torch dtype)
        with its state-dict entries; returns the attribute as forward lines use it (``self.layer3``)."""
        attribute = f"layer{self.index}{suffix}"
        arrays = {name: _contiguous(value, self.dtype) for name, value in (parameters or {}).items()}
        self._program.modules.append(TorchModule(attribute, constructor, arrays, self.index))
        return f"self.{attribute}"

    def line(self, code: str) -> None:
        """A forward line; it reads and assigns the running tensor ``x``."""
        self._program.forward.append(code)


def _contiguous(value, dtype: np.dtype) -> np.ndarray:
    array = np.array(value, copy=True, order="C")
    if array.dtype.kind == "f":
        array = array.astype(dtype, copy=False)
    return array


def build(network, input_rank: int | None = None) -> TorchProgram:
    """Run every layer's exporter: the whole PyTorch version of ``network`` (NumPy arrays, source lines)."""
    plans = plan(network, input_rank)
    program = TorchProgram(plans, network_dtype(plans))
    for item in plans:
        program.forward.append(f"# {item.index}: {item.layer!r}")
        item.exporter.torch(item.layer, TorchLayerWriter(program, item))
    return program


#: names the generated module itself uses, which a class name must not hide
MODULE_NAMES = {"torch", "F", "nn", "Path", "DTYPE", "load"}
#: modules a generated file must not be named after: importing it from its folder would hide the real one
SHADOWED = {"torch", "numpy", "onnx", "onnxruntime", "corenet", "typer", "yaml", "scipy", "sklearn", "pytest"}


def usable_class_name(name: str) -> bool:
    """Whether ``name`` can name the generated class."""
    return name.isidentifier() and not keyword.iskeyword(name) and name not in MODULE_NAMES


def class_name_for(stem: str) -> str:
    """A class name from a file name: ``lenet-mnist`` -> ``LenetMnist``."""
    words = [word for word in re.split(r"[^0-9A-Za-z]+", stem) if word]
    name = "".join(word[:1].upper() + word[1:] for word in words) or "Network"
    if name[0].isdigit():
        name = f"Net{name}"
    return name if usable_class_name(name) else f"{name}Net"


def module_name_for(stem: str) -> str:
    """An importable module name from a file name: ``lenet-mnist`` -> ``lenet_mnist`` (never one that would
    hide a standard or a well-known module, e.g. ``torch`` -> ``torch_model``)."""
    name = re.sub(r"\W", "_", stem) or "network"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"net_{name}"
    if name in SHADOWED or name in sys.stdlib_module_names or name.startswith("corenet"):
        name = f"{name}_model"
    return name


def _input_layout(program: TorchProgram) -> str:
    first = program.plans[0]
    rank = first.input_rank
    if first.name in ("RNN", "LSTM"):
        return "(time, features): one sequence, the time steps along the first axis as in corenet"
    return {2: "(batch, features)", 3: "(batch, channels, x)", 4: "(batch, channels, y, x)"}.get(
        rank, "(batch, ...)")


def module_source(program: TorchProgram, class_name: str, weights_file: str, origin: str) -> str:
    """A readable module file: the class with one attribute per weighted part and corenet's forward."""
    torch_dtype = f"torch.{np.dtype(program.dtype).name}"
    listing = "\n".join(f"    {item.index:>2}  {item.layer!r}" for item in program.plans)
    init = "\n".join(f"        self.{m.attribute} = {m.constructor}" for m in program.modules)
    forward = "\n".join(f"        {line}" for line in program.forward)
    uses_functional = any("F." in line for line in program.forward)
    imports = "\n".join(line for line in IMPORTS if uses_functional or not line.endswith(" as F"))
    return f'''"""PyTorch version of the corenet network in {origin}, written by `corenet export`.

The class below computes what corenet computes in its testing phase (Dropout off,
BatchNormalization on its moving statistics) once the model is in eval mode:

    model = {class_name}()
    model.load_state_dict(torch.load("{weights_file}", weights_only=True))
    model.eval()

or ``model = load()``.
Input: {_input_layout(program)}; dtype {torch_dtype}.

corenet layers:
{listing}
"""

from pathlib import Path

{imports}

DTYPE = {torch_dtype}  # the dtype of the corenet network's weights


class {class_name}(nn.Module):
    """The corenet network above; the comments in forward name each corenet layer."""

    def __init__(self) -> None:
        super().__init__(){init and chr(10) + init}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
{forward}
        return x


def load(weights: str | Path = Path(__file__).with_name("{weights_file}")) -> {class_name}:
    """The {class_name} network with the exported weights, in eval mode (corenet's testing phase)."""
    model = {class_name}()
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()
'''
