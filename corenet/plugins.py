"""Plugin discovery and the Registry of everything corenet and its plugins offer.

The built-in plugin (``corenet.builtin``) is loaded first, then every entry
point in the group ``corenet``. Each plugin is imported and registered in
isolation: one that raises (anything, ``SystemExit`` included), registers a
non-class or repeats a name within itself is recorded in
:attr:`Registry.failures` with its exception and the rest still load.

One name, several implementations: a name such as ``Conv`` may be registered by
several plugins. Each registration is an :class:`Implementation` with a label
(``reference``, ``fast``, or by default the distribution's name) and a priority.
The Registry's tables (``registry.layers["Conv"]``) hold the *selected*
implementation of each name:

1. a preference (``CORENET_IMPL``, ``corenet --impl``, :meth:`Registry.prefer`) such as
   ``reference`` (every name that has a ``reference`` implementation uses it) or ``LSTM=my-lstm`` (one name) wins;
   a training config's ``implementation`` key is one too, for as long as the config builds
   (:meth:`Registry.preferring`), unless ``--impl``/``CORENET_IMPL`` gives one (:func:`command_line_preference`);
2. otherwise the highest priority: corenet's textbook layers register as
   ``reference`` with priority 0, the fast tier as ``fast`` with 10, and any other
   plugin by default with :data:`DEFAULT_PRIORITY` (50): installing a plugin that
   provides a name is a choice to use it;
3. equal priorities from two distributions: the distribution first in alphabetical
   order, and the tie is listed in :attr:`Registry.ties` (``corenet list-layers``
   shows it) until a preference settles it.
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module, metadata
from typing import Any

import pluggy

from corenet import hookspecs
from corenet.errors import PluginError, RegistryError
from corenet.hookspecs import REFERENCE, REFERENCE_TIER, package_path  # noqa: F401 (plugins import them here)

ENTRY_POINT_GROUP = "corenet"
LOAD_ENV = "CORENET_LOAD_PLUGINS"
IMPL_ENV = "CORENET_IMPL"
#: priority of a registration that does not give one (a plugin's own implementation)
DEFAULT_PRIORITY = 50
#: the core's own plugin, loaded first by its dotted name (it imports hookspecs, never this module)
BUILTIN_PLUGIN = "corenet.builtin"

#: registry attribute -> the hook that registers that kind
KINDS: dict[str, str] = {
    "layers": "corenet_register_layers",
    "optimizers": "corenet_register_optimizers",
    "initializers": "corenet_register_initializers",
    "regularizers": "corenet_register_regularizers",
    "losses": "corenet_register_losses",
    "models": "corenet_register_models",
    "inspections": "corenet_register_inspections",
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
    """A named set of conformance tests shipped by a plugin, with its bonus weight and the registry
    names it tests (empty: see :func:`corenet.checking.groups.names_of`)."""

    name: str
    paths: tuple[str, ...]
    weight: float
    distribution: str
    names: tuple[str, ...] = ()

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class Implementation:
    """One registration of a name: the object, its label, its priority and who provided it."""

    kind: str
    name: str
    obj: Any
    label: str
    priority: int
    plugin: PluginInfo = field(compare=False, repr=False)

    @property
    def distribution(self) -> str:
        return self.plugin.distribution


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
    #: what was refused while the plugin itself loaded (e.g. a command shadowing a built-in one)
    problems: list[str] = field(default_factory=list)
    #: the loaded plugin module (None until it loads)
    plugin: object | None = field(default=None, repr=False, compare=False)


@dataclass
class Registry:
    """Name -> selected component for every kind, every implementation of each name, and who provided what."""

    layers: dict[str, type] = field(default_factory=dict)
    optimizers: dict[str, type] = field(default_factory=dict)
    initializers: dict[str, type] = field(default_factory=dict)
    regularizers: dict[str, type] = field(default_factory=dict)
    losses: dict[str, type] = field(default_factory=dict)
    models: dict[str, Callable[..., Any]] = field(default_factory=dict)
    inspections: dict[str, Callable[..., Any]] = field(default_factory=dict)
    datasets: dict[str, type] = field(default_factory=dict)
    test_groups: dict[str, TestGroup] = field(default_factory=dict)
    #: (kind, name) -> every implementation, in registration order
    implementations: dict[tuple[str, str], list[Implementation]] = field(default_factory=dict)
    #: (kind, name) -> the selected implementation
    selected: dict[tuple[str, str], Implementation] = field(default_factory=dict)
    #: (kind, name) -> implementations that tied for the selection (no preference settled it)
    ties: dict[tuple[str, str], list[Implementation]] = field(default_factory=dict)
    providers: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    preference: str | None = None
    #: preference items that matched no implementation (reported by the CLI)
    unmatched_preferences: list[str] = field(default_factory=list)

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
        """The plugin whose implementation of ``name`` in ``kind`` is selected."""
        return self.providers[(kind, name)]

    def implementations_of(self, kind: str, name: str) -> list[Implementation]:
        """Every implementation of ``name`` (the selected one first)."""
        found = list(self.implementations.get((kind, name), ()))
        chosen = self.selected.get((kind, name))
        return sorted(found, key=lambda impl: (impl is not chosen, -impl.priority, impl.distribution))

    def implementation(self, kind: str, name: str, label: str | None = None) -> Any:
        """The object registered for ``name``: the selected one, or the one labelled ``label``
        (an implementation label such as ``reference`` or a distribution name)."""
        if label is None:
            return self.get(kind, name)
        for impl in self.implementations.get((kind, name), ()):
            if label in (impl.label, impl.distribution):
                return impl.obj
        self.get(kind, name)  # unknown name: the usual message
        labels = ", ".join(impl.label for impl in self.implementations[(kind, name)])
        raise RegistryError(f"{name} has no implementation {label!r}; implementations: {labels}")

    def name_of(self, obj: Any, kind: str | None = None) -> str | None:
        """The registry name under which ``obj`` (a class or an instance of one) is registered."""
        found = self.registration_of(obj, kind)
        return found.name if found is not None else None

    def registration_of(self, obj: Any, kind: str | None = None) -> Implementation | None:
        """The :class:`Implementation` whose object is ``obj`` (a class or an instance of one), or None;
        its ``label`` says which tier a layer comes from (``reference``, ``fast``, ...)."""
        cls = obj if isinstance(obj, type) else type(obj)
        for (impl_kind, _), impls in self.implementations.items():
            if kind is not None and impl_kind != kind:
                continue
            for impl in impls:
                if impl.obj is cls:
                    return impl
        return None

    def prefer(self, preference: str | None) -> None:
        """Re-select every name under ``preference`` (see the module docstring; None: priorities only).

        ``preference`` is a comma-separated list of labels (``reference``, ``fast``, a
        distribution name) and ``Name=label`` items; later items win.
        """
        self.preference = preference or None
        overall: list[str] = []
        per_name: dict[str, str] = {}
        for item in (part.strip() for part in (preference or "").split(",")):
            if not item:
                continue
            if "=" in item:
                name, label = (side.strip() for side in item.split("=", 1))
                per_name[name] = label
            else:
                overall.append(item)
        used: set[str] = set()
        self.ties = {}
        for key, impls in self.implementations.items():
            chosen = _choose(impls, per_name.get(key[1]), overall, used)
            if chosen is None:
                continue
            self.selected[key] = chosen
            getattr(self, key[0])[key[1]] = chosen.obj
            best = [impl for impl in impls if impl.priority == chosen.priority
                    and impl.distribution != chosen.distribution]
            if best and not (key[1] in per_name or any(label in used for label in overall)):
                self.ties[key] = [chosen, *best]
        unmatched = [label for label in overall if label not in used]
        unmatched += [f"{name}={label}" for name, label in per_name.items() if f"{name}={label}" not in used]
        self.unmatched_preferences = unmatched
        self.providers = {key: chosen.plugin for key, chosen in self.selected.items()}

    @contextmanager
    def preferring(self, preference: str | None) -> Iterator[Registry]:
        """Select under ``preference`` (as :meth:`prefer`) inside the block; afterwards the selection,
        the preference and everything :meth:`prefer` sets are exactly as before, even on an exception."""
        saved = (self.preference, dict(self.selected), dict(self.ties), list(self.unmatched_preferences),
                 dict(self.providers))
        tables = {key: getattr(self, key[0]).get(key[1]) for key in self.implementations}
        self.prefer(preference)
        try:
            yield self
        finally:
            self.preference, selected, self.ties, self.unmatched_preferences, self.providers = saved
            self.selected.clear()
            self.selected.update(selected)
            for (kind, name), obj in tables.items():  # in place: callers may hold the tables
                if obj is None:
                    getattr(self, kind).pop(name, None)
                else:
                    getattr(self, kind)[name] = obj

    def unmatched(self, preference: str | None) -> list[str]:
        """The items of ``preference`` that no installed implementation matches (the selection is unchanged)."""
        with self.preferring(preference):
            return list(self.unmatched_preferences)

    def describe_unmatched(self, items: list[str]) -> str:
        """What is wrong with preference items that match nothing (:attr:`unmatched_preferences`), in one
        line: how ``--impl``, ``CORENET_IMPL`` and a config's ``implementation`` key report them."""
        labels = sorted({label for impls in self.implementations.values() for impl in impls
                         for label in (impl.label, impl.distribution)})
        problems = []
        for item in items:
            name, is_per_name, label = (part.strip() for part in item.partition("="))
            if not is_per_name:
                problems.append(f"no installed implementation is labelled {name!r}{_close(name, labels)}")
                continue
            named = sorted({impl.label for (_, other), impls in self.implementations.items() if other == name
                            for impl in impls})
            names = sorted({other for _, other in self.implementations})
            problems.append(f"{name} has no implementation {label!r}{_close(label, named)} (its implementations: "
                            f"{', '.join(named)})" if named else
                            f"nothing installed is named {name!r}{_close(name, names)} (in {item})")
        overall = any("=" not in item for item in items)
        return "; ".join(problems) + (f"; labels: {', '.join(labels)}" if overall else "")


def _close(word: str, choices: list[str]) -> str:
    """`` (did you mean 'fast'?)`` when one of ``choices`` is close to ``word``."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def command_line_preference() -> str | None:
    """The preference given on the command line (``corenet --impl``, which sets ``CORENET_IMPL``) or in the
    environment (``CORENET_IMPL``), None if neither: it overrides a config's ``implementation`` key."""
    return os.environ.get(IMPL_ENV, "").strip() or None


def _choose(impls: list[Implementation], label: str | None, overall: list[str], used: set[str]):
    """The implementation a preference picks among ``impls``, else the highest priority (ties: by distribution)."""
    name = impls[0].name if impls else ""
    if label is not None:
        for impl in impls:
            if label in (impl.label, impl.distribution):
                used.add(f"{name}={label}")
                return impl
    for wanted in reversed(overall):  # later items win
        for impl in impls:
            if wanted in (impl.label, impl.distribution):
                used.add(wanted)
                return impl
    if not impls:
        return None
    return min(impls, key=lambda impl: (-impl.priority, impl.distribution, impl.label))


class _Staging:
    """Collects one plugin's registrations; committed only if all its hooks succeed."""

    def __init__(self, registry: Registry, info: PluginInfo) -> None:
        self.registry = registry
        self.info = info
        self.items: list[tuple[str, str, Any]] = []

    def register_for(self, kind: str) -> Callable[..., None]:
        def register(obj: Any, name: str | None = None, *, implementation: str | None = None,
                     priority: int | None = None) -> None:
            if kind in CLASS_KINDS and not isinstance(obj, type):
                raise PluginError(f"{kind} must be registered as classes, got {obj!r}")
            missing = [m for m in REQUIRED_METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
            if missing:
                raise PluginError(
                    f"{kind} need {' and '.join(f'{m}()' for m in REQUIRED_METHODS[kind])}; "
                    f"{obj.__name__} has no {', '.join(missing)}"
                )
            if kind in ("models", "inspections") and not callable(obj):
                raise PluginError(f"{kind[:-1]} {name!r} must be callable, got {obj!r}")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise PluginError(f"a registered name must be a non-empty string, got {name!r}")
            if implementation is not None and (not isinstance(implementation, str) or not implementation.strip()
                                               or "," in implementation or "=" in implementation):
                raise PluginError(f"an implementation label must be a word, got {implementation!r}")
            if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
                raise PluginError(f"priority must be an int, got {priority!r}")
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise PluginError(f"cannot infer a name for {obj!r}; pass name=")
            label = implementation or self.info.distribution
            self.items.append((kind, key, Implementation(
                kind, key, obj, label, DEFAULT_PRIORITY if priority is None else priority, self.info)))

        return register

    def register_test_group(self, name: str, paths: Any, weight: float = 0.0, names: Any = ()) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if isinstance(names, str):
            names = [names]
        group = TestGroup(str(name), tuple(str(p) for p in paths), float(weight), self.info.distribution,
                          tuple(str(n) for n in names))
        self.items.append(("test_groups", group.name, group))

    def commit(self) -> None:
        seen: set[tuple[str, str]] = set()
        for kind, key, _ in self.items:
            if (kind, key) in seen:
                raise PluginError(f"{kind[:-1]} {key!r} is registered twice by {self.info.distribution}")
            if kind == "test_groups" and key in self.registry.test_groups:
                other = self.registry.test_groups[key].distribution
                raise PluginError(f"test group {key!r} is registered by both {other} and {self.info.distribution}")
            seen.add((kind, key))
        for kind, key, item in self.items:
            if kind == "test_groups":
                self.registry.test_groups[key] = item
            else:
                self.registry.implementations.setdefault((kind, key), []).append(item)
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
    from corenet import __version__

    pm = pluggy.PluginManager("corenet")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    candidates: list[tuple[PluginInfo, Callable[[], object]]] = [
        (PluginInfo("corenet", "corenet", __version__, BUILTIN_PLUGIN), lambda: import_module(BUILTIN_PLUGIN))
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
            # two distributions may share an entry-point name: the second is registered under a longer one
            taken = pm.get_plugin(info.name) is not None
            pm.register(module, name=f"{info.distribution}:{info.name}" if taken else info.name)
        except BaseException as exc:  # a broken plugin (even one raising SystemExit) must not lock users out
            _fail(info, exc, registry)
            continue
        staging = _Staging(registry, info)
        try:
            _call_hooks(pm, module, staging)
            staging.commit()
        except BaseException as exc:
            pm.unregister(module)
            _fail(info, exc, registry)
            continue
        info.plugin = module
        registry.plugins.append(info)
    if wanted is not None:
        installed = sorted(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
        for name in sorted(wanted - set(installed)):
            print(f"corenet: warning: {LOAD_ENV} names {name!r}, but no installed plugin has that entry-point "
                  f"name (installed: {', '.join(installed) or 'none'})", file=sys.stderr)
    registry.prefer(os.environ.get(IMPL_ENV))
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
