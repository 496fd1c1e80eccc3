"""Which implementation a conformance test checks for a name: an explicit target, else the registry's.

``CORENET_TARGETS`` (a JSON object) maps names to targets: ``"package.module:Class"``
(importable from ``sys.path``), ``"path/to/file.py:Class"`` (its folder is put on
``sys.path`` so the file's own imports work) or ``null`` (explicitly not implemented,
e.g. a course folder without ``Layers/LSTM.py``). Every other name is the registry's
selected implementation (``corenet --impl`` / ``CORENET_IMPL`` choose among several),
looked up among layers, optimizers, initializers, regularizers, losses and models, plus
the special names ``NeuralNetwork``, ``save`` and ``load`` (default: ``corenet.network``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS_ENV = "CORENET_TARGETS"
#: registry kinds searched for a name, in this order
KINDS = ("layers", "optimizers", "initializers", "regularizers", "losses", "models")
#: names outside the registry: the network class and the module-level save/load functions
SPECIAL = {"NeuralNetwork": "corenet.network:NeuralNetwork", "save": "corenet.network:save",
           "load": "corenet.network:load"}
#: implementation labels of corenet's own code (the textbook layers and the fast tier)
OWN_LABELS = ("reference", "fast")

OK, NOT_IMPLEMENTED, ERROR = "ok", "not implemented", "error"


class TargetError(ValueError):
    """CORENET_TARGETS or a target spec is malformed (not: the target's own code failed)."""


@dataclass(frozen=True)
class Resolution:
    """What a name resolved to: ``status`` ok / not implemented / error, with a one-line message."""

    name: str
    status: str
    obj: Any = None
    source: str = ""
    message: str = ""
    foreign: bool = False

    def to_json(self) -> dict:
        return {"status": self.status, "source": self.source, "message": self.message, "foreign": self.foreign}


def parse_targets(text: str | None) -> dict[str, str | None]:
    """The name -> spec mapping held in the text of ``CORENET_TARGETS`` (empty when unset)."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"{TARGETS_ENV} is not valid JSON ({exc.msg} at character {exc.pos}); expected "
                          f'an object such as {{"LSTM": "my_lstm.py:LSTM"}}') from None
    if not isinstance(value, dict):
        raise TargetError(f"{TARGETS_ENV} must be a JSON object mapping names to targets, got {type(value).__name__}")
    for name, spec in value.items():
        if spec is not None and (not isinstance(spec, str) or ":" not in spec):
            raise TargetError(f"{TARGETS_ENV}: the target of {name!r} must be 'module:Class', 'file.py:Class' "
                              f"or null, got {spec!r}")
    return value


def split_spec(spec: str) -> tuple[str, str]:
    """``"pkg.mod:Class"`` -> ``("pkg.mod", "Class")``; the attribute follows the last colon."""
    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise TargetError(f"target {spec!r} must look like 'module:Class' or 'path/to/file.py:Class'")
    return where, attribute


def is_file_spec(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def _import_file(path: Path):
    """Import the Python file ``path`` with its folder first on sys.path (for its own imports)."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:
        return loaded
    if loaded is not None:  # the stem is taken (e.g. a file named like a library module): keep both
        name = f"_corenet_target_{name}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _where_it_failed(exc: BaseException) -> str:
    """' (file.py line N)' for the innermost traceback frame outside the import machinery."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({Path(exc.filename).name} line {exc.lineno})"
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in frame.filename and not frame.filename.endswith("targets.py")]
    if not frames:
        return ""
    return f" ({Path(frames[-1].filename).name} line {frames[-1].lineno})"


class NotDefined(AttributeError):
    """The target's module imported but does not define the name a spec asks for."""


def load_spec(spec: str) -> Any:
    """Import the object a spec names; raises TargetError for a missing file and :class:`NotDefined` for a
    missing attribute; anything the target's own code raises propagates (an AttributeError of its own
    included: that is a bug in the target, not a missing implementation)."""
    where, attribute = split_spec(spec)
    if is_file_spec(where):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise TargetError(f"{where}: no such file")
        module = _import_file(path)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, attribute):
        raise NotDefined(f"{where} has no {attribute}")
    return getattr(module, attribute)


class Targets:
    """Resolves names to the implementations under test (cached per name)."""

    def __init__(self, overrides: dict[str, str | None] | None = None, registry=None) -> None:
        self.overrides = dict(overrides or {})
        self._registry = registry
        self._cache: dict[str, Resolution] = {}

    @classmethod
    def from_env(cls) -> Targets:
        return cls(parse_targets(os.environ.get(TARGETS_ENV)))

    @property
    def registry(self):
        if self._registry is None:
            from corenet.plugins import get_registry

            self._registry = get_registry()
        return self._registry

    def kind_of(self, name: str) -> str | None:
        """The registry kind that knows ``name`` (None: unknown, or one of the special names)."""
        for kind in KINDS:
            if (kind, name) in self.registry.implementations:
                return kind
        return None

    def resolve(self, name: str) -> Resolution:
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> Resolution:
        if name in self.overrides:
            spec = self.overrides[name]
            if spec is None:
                return Resolution(name, NOT_IMPLEMENTED, source="", message=f"{name}: not implemented", foreign=True)
            try:
                obj = load_spec(spec)
            except NotDefined as exc:
                return Resolution(name, NOT_IMPLEMENTED, source=spec, message=f"{name}: not implemented ({exc})",
                                  foreign=True)
            except TargetError as exc:
                return Resolution(name, ERROR, source=spec, message=str(exc), foreign=True)
            except BaseException as exc:  # the target's own import failed (even by SystemExit): report it
                if isinstance(exc, KeyboardInterrupt):
                    raise
                text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
                detail = text.strip().splitlines()[0] if text and text.strip() else ""
                message = (f"{name}: importing {spec} failed{_where_it_failed(exc)}: "
                           f"{type(exc).__name__}{': ' + detail if detail else ''}")
                return Resolution(name, ERROR, source=spec, message=message, foreign=True)
            return Resolution(name, OK, obj, spec, foreign=not self._is_own(name, obj))
        if name in SPECIAL:
            return Resolution(name, OK, load_spec(SPECIAL[name]), "corenet", foreign=False)
        kind = self.kind_of(name)
        if kind is None:
            return Resolution(name, NOT_IMPLEMENTED, message=f"{name}: not implemented (nothing installed "
                              f"provides it)", foreign=True)
        chosen = self.registry.selected[(kind, name)]
        source = f"{chosen.label} ({chosen.distribution})"
        return Resolution(name, OK, chosen.obj, source, foreign=chosen.label not in OWN_LABELS)

    def _is_own(self, name: str, obj: Any) -> bool:
        if name in SPECIAL:
            return obj is load_spec(SPECIAL[name])
        kind = self.kind_of(name)
        return kind is not None and any(
            impl.obj is obj for impl in self.registry.implementations_of(kind, name) if impl.label in OWN_LABELS)

    def reference(self, name: str) -> Any | None:
        """corenet's own reference implementation of ``name`` (None when not installed)."""
        if name in SPECIAL:
            return load_spec(SPECIAL[name])
        kind = self.kind_of(name)
        if kind is None:
            return None
        for impl in self.registry.implementations_of(kind, name):
            if impl.label == "reference":
                return impl.obj
        return None

    def is_foreign(self, name: str) -> bool:
        """Whether the implementation under test for ``name`` is not corenet's own."""
        return self.resolve(name).foreign
