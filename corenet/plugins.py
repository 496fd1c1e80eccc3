"""Plugin discovery and the Registry of everything corenet and its plugins offer.

The built-in plugin (:mod:`corenet.builtin`) is loaded first, then every entry
point in the group ``corenet``. Each plugin is imported and registered in
isolation: one that raises, registers a non-class or repeats a name is recorded
in :attr:`Registry.failures` with its exception and the rest still load.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from corenet import hookspecs
from corenet.errors import PluginError, RegistryError

ENTRY_POINT_GROUP = "corenet"
LOAD_ENV = "CORENET_LOAD_PLUGINS"

#: registry attribute -> the hook that registers that kind
KINDS: dict[str, str] = {
    "layers": "corenet_register_layers",
    "optimizers": "corenet_register_optimizers",
    "initializers": "corenet_register_initializers",
    "regularizers": "corenet_register_regularizers",
    "losses": "corenet_register_losses",
    "models": "corenet_register_models",
    "datasets": "corenet_register_datasets",
}
CLASS_KINDS = {"layers", "optimizers", "initializers", "regularizers", "losses", "datasets"}
#: methods a registered class of each kind must define
REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "layers": ("forward", "backward"),
    "optimizers": ("calculate_update",),
    "initializers": ("initialize",),
    "regularizers": ("calculate_gradient", "norm"),
    "losses": ("forward", "backward"),
    "datasets": ("next",),
}


@dataclass(frozen=True)
class TestGroup:
    """A named set of conformance tests shipped by a plugin, with its bonus weight."""

    name: str
    paths: tuple[str, ...]
    weight: float
    distribution: str

    __test__ = False  # not a pytest class


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin: its entry-point name, distribution and status."""

    name: str
    distribution: str
    version: str
    module: str
    status: str = "ok"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Registry:
    """Name -> component maps for every kind, plus who provided what."""

    layers: dict[str, type] = field(default_factory=dict)
    optimizers: dict[str, type] = field(default_factory=dict)
    initializers: dict[str, type] = field(default_factory=dict)
    regularizers: dict[str, type] = field(default_factory=dict)
    losses: dict[str, type] = field(default_factory=dict)
    models: dict[str, Callable[..., Any]] = field(default_factory=dict)
    datasets: dict[str, type] = field(default_factory=dict)
    test_groups: dict[str, TestGroup] = field(default_factory=dict)
    providers: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status != "ok"]

    def get(self, kind: str, name: str) -> Any:
        """Look ``name`` up among ``kind`` (e.g. ``"layers"``); unknown names list the choices."""
        if kind not in KINDS and kind != "test_groups":
            raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        table = getattr(self, kind)
        if name not in table:
            choices = ", ".join(sorted(table)) or "(none installed)"
            singular = kind[:-1] if kind.endswith("s") else kind
            raise RegistryError(f"unknown {singular} {name!r}; available: {choices}")
        return table[name]

    def provider(self, kind: str, name: str) -> PluginInfo:
        """The plugin that registered ``name`` in ``kind``."""
        return self.providers[(kind, name)]

    def all_classes(self) -> dict[str, type]:
        """Every registered class by qualified name (what a checkpoint may contain)."""
        found: dict[str, type] = {}
        for kind in CLASS_KINDS:
            for cls in getattr(self, kind).values():
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        return found


class _Staging:
    """Collects one plugin's registrations; committed only if all its hooks succeed."""

    def __init__(self, registry: Registry, info: PluginInfo) -> None:
        self.registry = registry
        self.info = info
        self.items: list[tuple[str, str, Any]] = []

    def register_for(self, kind: str) -> Callable[..., None]:
        def register(obj: Any, name: str | None = None) -> None:
            if kind in CLASS_KINDS and not isinstance(obj, type):
                raise PluginError(f"{kind} must be registered as classes, got {obj!r}")
            missing = [m for m in REQUIRED_METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
            if missing:
                raise PluginError(
                    f"{kind} need {' and '.join(f'{m}()' for m in REQUIRED_METHODS[kind])}; "
                    f"{obj.__name__} has no {', '.join(missing)}"
                )
            if kind == "models" and not callable(obj):
                raise PluginError(f"a model must be a callable builder, got {obj!r}")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise PluginError(f"a registered name must be a non-empty string, got {name!r}")
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise PluginError(f"cannot infer a name for {obj!r}; pass name=")
            self.items.append((kind, key, obj))

        return register

    def register_test_group(self, name: str, paths: Any, weight: float = 0.0) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        group = TestGroup(str(name), tuple(str(p) for p in paths), float(weight), self.info.distribution)
        self.items.append(("test_groups", group.name, group))

    def commit(self) -> None:
        seen: set[tuple[str, str]] = set()
        for kind, key, _ in self.items:
            if (kind, key) in self.registry.providers or (kind, key) in seen:
                other = self.registry.providers.get((kind, key), self.info)
                raise PluginError(
                    f"{kind[:-1]} {key!r} is registered by both {other.distribution} "
                    f"and {self.info.distribution}"
                )
            seen.add((kind, key))
        for kind, key, obj in self.items:
            getattr(self.registry, kind)[key] = obj
            self.registry.providers[(kind, key)] = self.info
            self.info.registered.setdefault(kind, []).append(key)


def _wanted_plugins() -> set[str] | None:
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _call_hooks(pm: pluggy.PluginManager, plugin: object, staging: _Staging) -> None:
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=staging.register_for(kind))
    for impl in pm.hook.corenet_register_test_groups.get_hookimpls():
        if impl.plugin is plugin:
            impl.function(register=staging.register_test_group)


def _fail(info: PluginInfo, exc: BaseException, registry: Registry) -> None:
    info.status = "failed"
    info.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    registry.plugins.append(info)
    print(f"corenet: warning: plugin {info.name!r} ({info.distribution}) failed: {info.error}",
          file=sys.stderr)


def load_plugins() -> tuple[pluggy.PluginManager, Registry]:
    """Build a plugin manager and a Registry from the built-in plugin and entry points."""
    from corenet import __version__, builtin

    pm = pluggy.PluginManager("corenet")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    candidates: list[tuple[PluginInfo, Callable[[], object]]] = [
        (PluginInfo("corenet", "corenet", __version__, builtin.__name__), lambda: builtin)
    ]
    wanted = _wanted_plugins()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            ep.name,
            dist.name if dist else "?",
            dist.version if dist else "?",
            ep.value,
        )
        candidates.append((info, ep.load))
    for info, load in candidates:
        try:
            module = load()
            pm.register(module, name=info.name)
        except Exception as exc:  # a broken plugin must not lock users out
            _fail(info, exc, registry)
            continue
        staging = _Staging(registry, info)
        try:
            _call_hooks(pm, module, staging)
            staging.commit()
        except Exception as exc:
            pm.unregister(module)
            _fail(info, exc, registry)
            continue
        registry.plugins.append(info)
    return pm, registry


_loaded: tuple[pluggy.PluginManager, Registry] | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (plugins load on first use)."""
    return _ensure_loaded()[0]


def get_registry() -> Registry:
    """The process-wide Registry (plugins load once, on first call)."""
    return _ensure_loaded()[1]


def reset() -> None:
    """Forget loaded plugins so the next call reloads them (for tests)."""
    global _loaded
    _loaded = None


def _ensure_loaded() -> tuple[pluggy.PluginManager, Registry]:
    global _loaded
    if _loaded is None:
        _loaded = load_plugins()
    return _loaded


def package_path(module_file: str, *parts: str) -> str:
    """Absolute path of a file shipped beside ``module_file`` (for test group registration)."""
    return str(Path(module_file).resolve().parent.joinpath(*parts))
