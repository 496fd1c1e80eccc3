"""Saving and loading networks: atomic writes and a restricted unpickler.

A checkpoint is a plain pickle of a :class:`~corenet.network.NeuralNetwork`
(its data layer dropped). Loading admits only:

- classes (never functions) defined in corenet or an installed corenet plugin,
- NumPy's array reconstruction globals and ``numpy.dtype``/``ndarray``,
- builtin containers.

Anything else (``os.system``, ``builtins.eval``, ...) is refused before it can run.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path

from corenet.errors import CheckpointError

#: Bumped when a saved network's layout changes incompatibly.
FORMAT_VERSION = 1

_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric"}
_NUMPY_NAMES = {"_reconstruct", "scalar", "_frombuffer", "dtype", "ndarray"}
_BUILTIN_CONTAINERS = {"list", "dict", "tuple", "set", "frozenset", "bytearray", "slice", "complex"}


def _corenet_module_prefixes() -> tuple[str, ...]:
    """Top-level packages of corenet and every successfully loaded plugin."""
    from corenet.plugins import get_registry

    prefixes = {"corenet"}
    for plugin in get_registry().plugins:
        if plugin.status == "ok":
            prefixes.add(plugin.module.split(":")[0].split(".")[0])
    return tuple(sorted(prefixes))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only corenet classes, NumPy arrays and containers."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self._source = source
        self._prefixes = _corenet_module_prefixes()

    def find_class(self, module: str, name: str):
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return super().find_class(module, name)
        if module == "builtins" and name in _BUILTIN_CONTAINERS:
            return super().find_class(module, name)
        if module.split(".")[0] in self._prefixes:
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
            raise CheckpointError(
                f"{self._source}: refused to load {module}.{name}: only classes may be loaded, not functions"
            )
        raise CheckpointError(
            f"{self._source}: refused to load {module}.{name}: checkpoints may contain only corenet "
            f"classes and NumPy arrays (use trusted=True / --trust only for files you made yourself)"
        )


def save_network(filename, net) -> None:
    """Pickle ``net`` to ``filename``: temp file in the same folder, fsync, rename over the target."""
    target = Path(filename)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(f"{target}: cannot save, folder {folder} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            pickle.dump(net, stream, protocol=pickle.HIGHEST_PROTOCOL)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def load_network(filename, *, trusted: bool = False):
    """Unpickle a network from ``filename``; see the module docstring for what is admitted."""
    from corenet.network import NeuralNetwork

    source = str(filename)
    try:
        payload = Path(filename).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{source}: no such checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{source}: cannot read checkpoint: {exc.strerror or exc}") from exc
    if not payload:
        raise CheckpointError(f"{source}: the file is empty, not a saved network")
    if payload[:1] != b"\x80":
        raise CheckpointError(f"{source}: not a corenet checkpoint (not a pickle file)")
    try:
        if trusted:
            net = pickle.loads(payload)
        else:
            net = RestrictedUnpickler(io.BytesIO(payload), source).load()
    except CheckpointError:
        raise
    except EOFError:
        raise CheckpointError(f"{source}: the file is truncated (ends in the middle of the network)") from None
    except (pickle.UnpicklingError, AttributeError, ImportError, IndexError, KeyError, TypeError,
            ValueError) as exc:
        raise CheckpointError(
            f"{source}: cannot read the saved network ({type(exc).__name__}: {exc}); the file is damaged, "
            f"not a corenet checkpoint, or needs a plugin that is not installed"
        ) from exc
    if not isinstance(net, NeuralNetwork):
        raise CheckpointError(f"{source}: holds a {type(net).__name__}, not a NeuralNetwork")
    if net.format_version != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: saved in checkpoint format {net.format_version}, this corenet reads format "
            f"{FORMAT_VERSION}; re-save it with a matching corenet version"
        )
    return net
