"""``corenet export --to torch``: a state dict file (``OUT.pt``) and the module file beside it (``OUT.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from corenet_export.errors import ExportError, require
from corenet_export.files import write_atomically
from corenet_export.torch_code import (
    MODULE_NAMES,
    TorchProgram,
    build,
    class_name_for,
    module_name_for,
    usable_class_name,
)


@dataclass
class TorchExport:
    """What :func:`export_torch` wrote."""

    weights: Path
    module: Path
    class_name: str
    program: TorchProgram


def export_torch(network, target: str | os.PathLike, *, class_name: str | None = None, origin: str | None = None,
                 input_rank: int | None = None) -> TorchExport:
    """Write ``network``'s state dict to ``target`` (``.pt``) and the class that loads it to a ``.py`` beside it.

    The module file is named after ``target`` (``lenet-mnist.pt`` -> ``lenet_mnist.py``) and the
    class after it too (``LenetMnist``) unless ``class_name`` is given. Before anything is
    written, the generated class is built and loads the state dict strictly.
    """
    target = Path(target)
    if target.suffix == ".py":
        raise ExportError(f"{target}: the state dict needs its own file (e.g. {target.with_suffix('.pt').name}); "
                          f"the module file {target.name} is written beside it")
    class_name = class_name or class_name_for(target.stem)
    if not usable_class_name(class_name):
        raise ExportError(f"class name {class_name!r} is not a Python identifier, or is a name the generated "
                          f"module uses itself ({', '.join(sorted(MODULE_NAMES))})")
    program = build(network, input_rank)  # unexportable layers are reported first, with or without torch
    torch = require("torch", "Export to PyTorch")
    module_path = target.with_name(module_name_for(target.stem) + ".py")
    source = program.source(class_name, target.name, origin or "memory")
    state = {name: torch.from_numpy(array) for name, array in program.state_dict().items()}
    instance = instantiate(source, class_name, module_path)
    try:
        instance.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # an exporter declared parameters its module does not have
        raise ExportError(f"the generated {class_name} does not load its own state dict: {exc}") from exc
    write_atomically(target, lambda path: torch.save(state, path))
    write_atomically(module_path, lambda path: path.write_text(source, encoding="utf-8"))
    return TorchExport(target, module_path, class_name, program)


def instantiate(source: str, class_name: str, path: Path):
    """An instance of ``class_name`` from the module ``source`` (run as if it were the file ``path``)."""
    namespace: dict = {"__name__": module_name_for(path.stem), "__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)  # our own generated code
    return namespace[class_name]()
