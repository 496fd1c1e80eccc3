"""``corenet import-weights``: a PyTorch state dict's weights into a corenet network built from a config.

Two layouts are understood:

- the one ``corenet export --to torch`` writes (``layer0.weight``, ``layer3_output.bias`` ...):
  matched by name;
- any other state dict whose parameter groups (keys sharing a prefix, e.g. ``features.0.``)
  correspond one to one, in order, to the network's weighted parts, such as an
  ``nn.Sequential`` of ``Conv2d``/``BatchNorm2d``/``Linear`` in corenet's layer order: matched by
  position, and every group's parameter names and shapes must be the ones expected there.

``num_batches_tracked`` entries are ignored. PyTorch's two RNN/LSTM biases are added into corenet's one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corenet_export.errors import ExportError, require
from corenet_export.torch_code import TorchModule, TorchProgram, build

IGNORED = ("num_batches_tracked",)


@dataclass
class Assignment:
    """One module of the network and the state-dict prefix its parameters came from."""

    layer_index: int
    attribute: str
    source_prefix: str
    names: tuple[str, ...]


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a state dict saved with ``torch.save`` (loaded with ``weights_only=True``) as arrays.

    A dict holding the state dict under ``state_dict`` or ``model_state_dict`` (training checkpoints) works too.
    """
    torch = require("torch", "Reading a PyTorch state dict")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError ...)
        raise ExportError(f"{path} is not a PyTorch state dict that loads with weights_only=True "
                          f"({_reason(exc)}); save one with torch.save(model.state_dict(), PATH)") from exc
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise ExportError(f"{path} holds a {type(loaded).__name__}, not a state dict (a dict of tensors)")
    state = {}
    for key, value in loaded.items():
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        tensor = value.detach().cpu()
        if tensor.dtype.is_floating_point and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.to(torch.float32)  # float16/bfloat16 have no exact NumPy twin in every version
        state[str(key)] = tensor.numpy()
    return state


def _reason(exc: Exception) -> str:
    """torch.load's refusal in one line (its message spans a page and suggests unsafe loading)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"it pickles a {found.group(1)} object, not only tensors"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 160 else first[:157] + "..."


def _split(key: str) -> tuple[str, str]:
    prefix, _, name = key.rpartition(".")
    return prefix, name


def _groups(state: Mapping[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """State-dict entries grouped by prefix, in order of first appearance (ignored names left out)."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        prefix, name = _split(key)
        if name not in IGNORED:
            groups.setdefault(prefix, {})[name] = value
    return list(groups.items())


def _weighted(program: TorchProgram) -> list[TorchModule]:
    return [m for m in program.modules if any(name not in IGNORED for name in m.parameters)]


def _describe(module: TorchModule, program: TorchProgram) -> str:
    layer = next(item.layer for item in program.plans if item.index == module.layer_index)
    return f"layer {module.layer_index} ({layer!r}, PyTorch {module.constructor.split('(')[0]})"


def match(program: TorchProgram, state: Mapping[str, np.ndarray], source: str) -> dict[str, tuple[str, dict]]:
    """For each weighted module attribute of ``program``: (the source prefix, its parameters from ``state``)."""
    expected = _weighted(program)
    groups = dict(_groups(state))
    if set(groups) == {m.attribute for m in expected}:  # corenet export's own names
        pairs = [(m, m.attribute, groups[m.attribute]) for m in expected]
    else:
        found = _groups(state)
        if len(found) != len(expected):
            wanted = ", ".join(f"{m.attribute} ({_describe(m, program)})" for m in expected)
            raise ExportError(
                f"{source} has {len(found)} parameter groups ({', '.join(p or '(top level)' for p, _ in found)}), "
                f"but the network has {len(expected)} weighted parts: {wanted}. The groups must correspond one "
                f"to one, in this order")
        pairs = [(m, prefix, params) for m, (prefix, params) in zip(expected, found)]
    matched = {}
    for module, prefix, params in pairs:
        _check_group(module, prefix, params, source, program)
        matched[module.attribute] = (prefix, params)
    return matched


def _check_group(module: TorchModule, prefix: str, params: dict, source: str, program: TorchProgram) -> None:
    wanted = {name: array for name, array in module.parameters.items() if name not in IGNORED}
    where = f"{source}: {prefix + '.' if prefix else ''}*"
    if set(params) != set(wanted):
        raise ExportError(f"{where} holds {sorted(params)}, but {_describe(module, program)} needs "
                          f"{sorted(wanted)}")
    for name, array in wanted.items():
        given = np.asarray(params[name])
        if given.shape != array.shape:
            raise ExportError(f"{source}: {prefix}.{name} has shape {tuple(given.shape)}, but "
                              f"{_describe(module, program)} needs {tuple(array.shape)}")
        if given.dtype.kind == "f" and not np.all(np.isfinite(given)):
            raise ExportError(f"{source}: {prefix}.{name} holds NaN or inf values")


def assign_state(network, state: Mapping[str, np.ndarray], source: str = "state dict") -> list[Assignment]:
    """Set ``network``'s weights from ``state`` (see the module docstring); returns what went where.

    Nothing is assigned unless every group matches.
    """
    program = build(network)
    matched = match(program, state, source)
    assignments = []
    for item in program.plans:
        groups = program.groups(item.index)
        weighted = {suffix: params for suffix, params in groups.items() if f"layer{item.index}{suffix}" in matched}
        if not weighted:
            continue
        parameters = {suffix: matched[f"layer{item.index}{suffix}"][1] for suffix in weighted}
        item.exporter.assign(item.layer, parameters)
        for suffix in weighted:
            prefix, params = matched[f"layer{item.index}{suffix}"]
            assignments.append(Assignment(item.index, f"layer{item.index}{suffix}", prefix, tuple(params)))
    return assignments


def network_from_config(config: str | os.PathLike, data: str | os.PathLike | None = None):
    """The untrained network a config (name or YAML file) describes, built as ``corenet train`` builds it
    (the config's seed and dtype), with the same metadata, so ``corenet evaluate`` finds its data set.

    ``data``: the folder of a file data set (``corenet train --data``), for configs such as lenet-mnist.
    """
    from corenet.config import build_network, load_config
    from corenet.dtype import default_dtype

    settings = load_config(config, {"data.args.path": str(data)} if data is not None else None)
    with default_dtype(settings.dtype or None):  # seeded and typed as corenet.training.prepare builds it
        np.random.seed(settings.seed)
        network = build_network(settings)
    network.metadata = {
        "config": settings.name,
        "data": {"name": settings.data.name,
                 "args": {k: v for k, v in settings.data.args.items() if k != "batch_size"}},
        "seed": settings.seed,
    }
    return network
