"""YAML training configs: find them, validate them against the registry, build the objects.

A config names its components by their registry names::

    seed: 0
    data: {name: digits}                       # a registered data set and its arguments
    network:
      optimizer: {name: Adam, args: {learning_rate: 2.0e-3}, regularizer: {name: L2_Regularizer,
                  args: {alpha: 1.0e-4}}}
      weights_initializer: He                  # a name, or {name: ..., args: {...}}
      bias_initializer: {name: Constant, args: {value: 0.0}}
      loss: CrossEntropyLoss
      layers:
        - {name: Conv, args: {stride_shape: [1, 1], convolution_shape: [1, 3, 3], num_kernels: 8}}
        - ReLU
    training: {iterations: 600, batch_size: 64, checkpoint: digits.ckpt}

or uses a registered model: ``network: {model: LeNet}``. ``implementation: reference`` (or ``fast``,
or ``"reference, Conv=fast"``: the syntax of ``corenet --impl``) selects the implementation tier the
config's classes come from, while it is read and built only (:func:`selection`); ``--impl`` or
``CORENET_IMPL`` overrides it, as the command line overrides the file. Every mistake (unknown key,
unknown name, missing or unexpected argument, wrong type) raises :class:`ConfigError`
naming the file and the key path (``network.layers[3].args.num_kernels``) with the
valid choices. Names and argument names are checked when the config is read (arguments
are bound to the class's signature); argument values are checked by the constructors
themselves when the objects are built, and their errors are reported at the key path
of the argument they name. Configs ship in ``corenet/configs`` and in a ``configs``
folder inside any plugin package, and are found by name (``digits``) or by path.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import re
import reprlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from corenet.catalog import install_hint
from corenet.errors import CorenetError, RegistryError
from corenet.files import read_regular_file
from corenet.safe_yaml import YAMLLimitError, load_yaml

DEFAULT_CONFIG = "digits"
TOP_KEYS = ("description", "seed", "dtype", "implementation", "data", "network", "training")
NETWORK_KEYS = ("model", "args", "optimizer", "weights_initializer", "bias_initializer", "loss", "layers")
TRAINING_KEYS = ("iterations", "epochs", "batch_size", "checkpoint", "checkpoint_every")
COMPONENT_KEYS = ("name", "args")
DEFAULTS = {"weights_initializer": "He", "bias_initializer": {"name": "Constant", "args": {"value": 0.0}},
            "loss": "CrossEntropyLoss"}
DEFAULT_BATCH_SIZE = 64
#: a config file larger than this is refused unread
MAX_CONFIG_BYTES = 1 << 20
#: np.random.seed takes 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1
#: bounds on training length: far beyond any run, small enough for every counter
MAX_ITERATIONS = 10**12
MAX_EPOCHS = 10**9
_COMPONENT_SECTIONS = ("data", "optimizer", "regularizer", "weights_initializer", "bias_initializer", "loss")
#: how to get a name a bundled plugin provides (the catalog knows which); kept under its old name
plugin_hint = install_hint


class ConfigError(CorenetError, ValueError):
    """A config file is missing, unreadable or describes something corenet cannot build."""


# -- YAML --------------------------------------------------------------------------------------
def parse_yaml(text: str, source: str) -> dict:
    """The top-level mapping of a YAML document; syntax errors and broken limits (depth, aliases,
    integers, duplicate keys: see :mod:`corenet.safe_yaml`) name the file, line and key."""
    try:
        data = load_yaml(text)
    except YAMLLimitError as exc:
        raise ConfigError(f"{source}: line {exc.line}: {exc.path}: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}:{where}: not valid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{source}: the config is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys ({', '.join(TOP_KEYS)}), "
                          f"got {_yaml_type(data)}")
    return data


# -- finding configs ----------------------------------------------------------------------------
def available_configs() -> dict[str, Any]:
    """Config name -> file, from ``corenet/configs`` and each loaded plugin's ``configs`` folder."""
    from corenet.plugins import get_registry

    packages = ["corenet"]
    for plugin in get_registry().plugins:
        package = plugin.module.split(":")[0].split(".")[0]
        if plugin.status == "ok" and package not in packages:
            packages.append(package)
    found: dict[str, Any] = {}
    for package in packages:
        try:
            folder = resources.files(package) / "configs"
            entries = sorted(folder.iterdir(), key=lambda entry: entry.name) if folder.is_dir() else []
        except (ModuleNotFoundError, OSError, TypeError):
            continue
        for entry in entries:
            if entry.name.endswith((".yaml", ".yml")):
                found.setdefault(entry.name.rsplit(".", 1)[0], entry)
    return found


def read_config_text(name_or_path: str | os.PathLike | None) -> tuple[str, str, str]:
    """``(name, source, text)`` of a config given by path or by name (None: the default)."""
    value = DEFAULT_CONFIG if name_or_path is None else os.fspath(name_or_path)
    path = Path(value)
    if path.exists() and not path.is_dir():  # FIFOs and devices are refused, not read
        raw = read_regular_file(path, limit=MAX_CONFIG_BYTES, what="config", error=ConfigError)
        try:
            return path.stem, str(path), raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: cannot read the config: not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})") from None
    configs = available_configs()
    name = value[:-5] if value.endswith(".yaml") else value
    if name in configs and path.parent == Path("."):
        entry = configs[name]
        return name, f"{name} ({entry})", entry.read_text(encoding="utf-8")
    if path.is_dir():
        raise ConfigError(f"{value}: is a folder; give a YAML config file or a config name")
    hint = install_hint(name)
    raise ConfigError(
        f"no config file or named config {value!r}{_did_you_mean(name, configs)}; "
        f"named configs: {', '.join(sorted(configs)) or '(none)'}" + (f" ({hint})" if hint else "")
    )


# -- the validated config -----------------------------------------------------------------------
@dataclass
class Component:
    """A registry object and its arguments bound to its signature; ``path`` is its YAML key path."""

    kind: str
    name: str
    factory: Callable[..., Any]
    args: dict[str, Any]
    path: str
    source: str
    #: the class name (or registered name of a builder) that messages use
    label: str = ""
    #: the key path of its arguments (``network.layers[3].args``)
    args_path: str = ""
    #: the argument names the config gave (not the ones corenet supplies)
    given: tuple[str, ...] = ()

    def build(self, **extra: Any) -> Any:
        """Call the class/builder (the implementation of its name selected now: the registry may select
        another tier than when the config was read); its own checks' errors are reported at the key path
        of the argument they name (``network.layers[3].args.num_kernels``), else at this component's path."""
        label = self.label or self.name
        try:
            return self.selected_factory()(**self.args, **extra)
        except (TypeError, ValueError, FileNotFoundError, CorenetError) as exc:
            argument = _argument_in(str(exc), self.given)
            if argument is None:
                message = f"{self.source}: {self.path}: {label} refused its arguments: {exc}"
            else:
                owner = "" if str(exc).startswith(f"{label}: ") else f"{label}: "
                message = f"{self.source}: {self.args_path or self.path + '.args'}.{argument}: {owner}{exc}"
            raise ConfigError(message) from exc
        except Exception as exc:  # a third-party class failing in its own way: say where and what
            raise ConfigError(f"{self.source}: {self.path} ({label}): {_exception_text(exc)}") from exc

    def selected_factory(self) -> Callable[..., Any]:
        """The registry's selected implementation of this name, if :attr:`factory` is one of its
        implementations; else :attr:`factory` itself (a class given directly)."""
        from corenet.plugins import get_registry

        registry = get_registry()
        if any(impl.obj is self.factory for impl in registry.implementations.get((self.kind, self.name), ())):
            return registry.get(self.kind, self.name)
        return self.factory


@dataclass
class Config:
    """A validated config; :func:`build_data` and :func:`build_network` make the objects."""

    name: str
    source: str
    seed: int
    dtype: str | None
    data: Component
    model: Component | None = None
    optimizer: Component | None = None
    regularizer: Component | None = None
    weights_initializer: Component | None = None
    bias_initializer: Component | None = None
    loss: Component | None = None
    layers: list[Component] = field(default_factory=list)
    iterations: int | None = None
    epochs: float | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    description: str = ""
    #: the config's ``implementation`` key (a preference such as ``reference``), None when absent
    implementation: str | None = None


def load_config(
    name_or_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Read, override (``{"training.iterations": 10}``; None deletes a key) and validate a config."""
    name, source, text = read_config_text(name_or_path)
    raw = parse_yaml(text, source)
    apply_overrides(raw, overrides or {}, source)
    return parse_config(raw, name, source)


def apply_overrides(raw: dict, overrides: dict[str, Any], source: str) -> None:
    """Set dotted key paths in ``raw`` in place (``None`` removes the key)."""
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = raw
        for index, key in enumerate(parents):
            child = node.get(key)
            if isinstance(child, str) and key in _COMPONENT_SECTIONS:  # `data: mnist` -> {name: mnist}
                child = {"name": child}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                where = ".".join(parents[: index + 1])
                raise ConfigError(
                    f"{source}: {where}: must be a mapping to set {dotted}, got {_yaml_type(child)}"
                )
            node[key] = child
            node = child
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value


def parse_config(raw: dict, name: str = "config", source: str = "config") -> Config:
    """Validate a config mapping against the registry (nothing is built yet)."""
    from corenet.plugins import get_registry

    checker = _Checker(get_registry(), source)
    checker.keys(raw, TOP_KEYS, "", required=("data", "network"))
    config = Config(name=name, source=source, seed=0, dtype=None, data=None)  # type: ignore[arg-type]
    config.description = checker.string(raw.get("description", ""), "description")
    config.seed = checker.integer(raw.get("seed", 0), "seed", minimum=0, maximum=MAX_SEED,
                                  why=" (NumPy seeds are 32-bit)")
    if raw.get("dtype") is not None:
        config.dtype = checker.choice(raw["dtype"], ("float32", "float64"), "dtype")
    if raw.get("implementation") is not None:
        config.implementation = checker.preference(raw["implementation"], "implementation")
    training = raw.get("training") or {}
    checker.mapping(training, "training")
    checker.keys(training, TRAINING_KEYS, "training")
    _parse_training(checker, training, config)
    with selection(config):  # names resolve to the classes of the chosen implementation
        config.data = checker.component(raw["data"], "datasets", "data", fixed={"batch_size": config.batch_size})
        _parse_network(checker, raw["network"], config)
    return config


def preference_for(config: Config) -> str | None:
    """The implementation preference ``config`` is read and built under: ``corenet --impl`` or
    ``CORENET_IMPL`` when given (the command line wins over the file), else its ``implementation``
    key; None (no key) leaves the registry's selection as it is."""
    from corenet.plugins import command_line_preference

    if config.implementation is None:
        return None
    return command_line_preference() or config.implementation


def selection(config: Config) -> AbstractContextManager:
    """A context in which the registry selects what :func:`preference_for` says; on leaving it, the
    process-wide selection is what it was before."""
    from corenet.plugins import get_registry

    preference = preference_for(config)
    return nullcontext() if preference is None else get_registry().preferring(preference)


def _parse_training(checker: _Checker, training: dict, config: Config) -> None:
    if "iterations" in training and "epochs" in training:
        raise ConfigError(f"{config.source}: training: give either iterations or epochs, not both")
    if "iterations" in training:
        config.iterations = checker.integer(training["iterations"], "training.iterations", minimum=1,
                                            maximum=MAX_ITERATIONS)
    elif "epochs" in training:
        config.epochs = checker.number(training["epochs"], "training.epochs", positive=True, maximum=MAX_EPOCHS)
    else:
        raise ConfigError(f"{config.source}: training: needs iterations or epochs (how long to train)")
    config.batch_size = checker.integer(training.get("batch_size", DEFAULT_BATCH_SIZE),
                                        "training.batch_size", minimum=1, maximum=MAX_ITERATIONS)
    if training.get("checkpoint") is not None:
        config.checkpoint = checker.string(training["checkpoint"], "training.checkpoint")
    if training.get("checkpoint_every") is not None:
        config.checkpoint_every = checker.integer(training["checkpoint_every"], "training.checkpoint_every",
                                                  minimum=1, maximum=MAX_ITERATIONS)


def _parse_network(checker: _Checker, network: Any, config: Config) -> None:
    checker.mapping(network, "network")
    checker.keys(network, NETWORK_KEYS, "network")
    if "model" in network:
        others = [key for key in network if key not in ("model", "args")]
        if others:
            raise ConfigError(
                f"{config.source}: network.{others[0]}: not allowed together with network.model "
                f"(a model builds its own {', '.join(others)})"
            )
        spec = {"name": network["model"], "args": network.get("args") or {}}
        config.model = checker.component(spec, "models", "network.model", prefix="network")
        return
    if "args" in network:
        raise ConfigError(f"{config.source}: network.args: only allowed together with network.model")
    if "optimizer" not in network:
        raise ConfigError(f"{config.source}: network.optimizer: missing (e.g. {{name: Adam, args: "
                          f"{{learning_rate: 1.0e-3}}}}); optimizers: {checker.choices('optimizers')}")
    optimizer = network["optimizer"]
    config.optimizer = checker.component(optimizer, "optimizers", "network.optimizer",
                                         extra_keys=("regularizer",))
    regularizer = optimizer.get("regularizer") if isinstance(optimizer, dict) else None
    if regularizer is not None:
        config.regularizer = checker.component(regularizer, "regularizers", "network.optimizer.regularizer")
    for key, kind in (("weights_initializer", "initializers"), ("bias_initializer", "initializers"),
                      ("loss", "losses")):
        setattr(config, key, checker.component(network.get(key, DEFAULTS[key]), kind, f"network.{key}"))
    layers = network.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"{config.source}: network.layers: must be a non-empty list of layers, got "
                          f"{_yaml_type(layers)}; layers: {checker.choices('layers')}")
    config.layers = [checker.component(spec, "layers", f"network.layers[{index}]")
                     for index, spec in enumerate(layers)]


# -- checking names and arguments against the registry ----------------------------------------------
class _Checker:
    """Validation helpers that know the registry and the file name for messages."""

    def __init__(self, registry, source: str) -> None:
        self.registry = registry
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    def choices(self, kind: str) -> str:
        return ", ".join(sorted(getattr(self.registry, kind))) or "(none installed)"

    def mapping(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {_yaml_type(value)}")

    def keys(self, mapping: dict, valid: tuple[str, ...], path: str, required: tuple[str, ...] = ()) -> None:
        for key in mapping:
            if key not in valid:
                where = f"{path}.{key}" if path else str(key)
                raise self.fail(where, f"unknown key {key!r}{_did_you_mean(str(key), valid)}; "
                                       f"valid keys{' in ' + path if path else ''}: {', '.join(valid)}")
        for key in required:
            if key not in mapping:
                raise self.fail(f"{path}.{key}" if path else key, "missing (required)")

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_shown(value)} ({_yaml_type(value)})")
        return value

    def integer(self, value: Any, path: str, minimum: int, maximum: int | None = None, why: str = "") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_shown(value)} ({_yaml_type(value)})")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise self.fail(path, f"must be an integer {bounds}{why}, got {_shown(value)}")
        return value

    def number(self, value: Any, path: str, positive: bool, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_shown(value)} ({_yaml_type(value)})")
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
        if not math.isfinite(number) or (positive and not number > 0) or (maximum is not None and number > maximum):
            bounds = "a finite number" + (" > 0" if positive else "") + (f" and <= {maximum:g}" if maximum else "")
            raise self.fail(path, f"must be {bounds}, got {_shown(value)}")
        return number

    def preference(self, value: Any, path: str) -> str:
        """An implementation preference in ``corenet --impl``'s syntax whose every item matches an installed
        implementation (the registry's selection is left alone)."""
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string such as 'reference', 'fast' or 'reference, Conv=fast' "
                                  f"(the syntax of corenet --impl), got {_shown(value)} ({_yaml_type(value)})")
        if not value.replace(",", "").strip():
            raise self.fail(path, "is empty; give a label such as 'reference' or 'fast', or leave the key out")
        unmatched = self.registry.unmatched(value)
        if unmatched:
            raise self.fail(path, self.registry.describe_unmatched(unmatched))
        return value.strip()

    def choice(self, value: Any, valid: tuple[str, ...], path: str) -> str:
        if not isinstance(value, str) or value not in valid:
            raise self.fail(path, f"must be one of {', '.join(valid)}, got {_shown(value)}")
        return value

    def component(self, spec: Any, kind: str, path: str, *, fixed: dict[str, Any] | None = None,
                  extra_keys: tuple[str, ...] = (), prefix: str | None = None) -> Component:
        """Validate ``name`` (a string or ``{name, args}``) and bind its arguments to the signature.

        ``fixed`` arguments are supplied by corenet (e.g. a data set's batch_size) and may
        not appear in ``args``; ``prefix`` replaces ``path`` for the ``args`` key (models).
        Argument values are the constructor's to check, when the component is built.
        """
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict):
            raise self.fail(path, f"must be a name or a mapping with name and args, got {_yaml_type(spec)}")
        self.keys(spec, COMPONENT_KEYS + extra_keys, path)
        name_path = path if prefix else f"{path}.name"
        if "name" not in spec:
            raise self.fail(name_path, f"missing; {kind}: {self.choices(kind)}")
        name = spec["name"]
        if not isinstance(name, str):
            raise self.fail(name_path, f"expected a name, got {_shown(name)} ({_yaml_type(name)}); "
                                       f"{kind}: {self.choices(kind)}")
        try:
            factory = self.registry.get(kind, name)
        except RegistryError as exc:
            hint = install_hint(name)
            hint = f" ({hint})" if hint else _did_you_mean(name, getattr(self.registry, kind))
            raise self.fail(name_path, f"{exc}{hint}") from None
        args = spec.get("args") or {}
        args_path = f"{prefix or path}.args"
        self.mapping(args, args_path)
        label = factory.__name__ if isinstance(factory, type) else name  # IrisData, not iris
        bound = self.bind(factory, label, dict(args), args_path, fixed or {})
        return Component(kind, name, factory, bound, path, self.source, label, args_path, tuple(args))

    def bind(self, factory: Callable, label: str, args: dict, path: str, fixed: dict) -> dict:
        """``args`` (YAML lists as tuples) plus the ``fixed`` ones the factory takes, bound to its signature;
        an unknown or missing argument is reported at its key path with the valid names."""
        for key in args:
            if key in fixed:
                raise self.fail(f"{path}.{key}", f"set by corenet (from training.{key}), do not give it here")
        values = {key: _tuples(value) for key, value in args.items()}
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # builtins without a signature: pass the arguments through
            return {**values, **fixed}
        parameters = signature.parameters.values()
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters)
        names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        values.update({key: value for key, value in fixed.items() if key in names or takes_kwargs})
        try:
            signature.bind(**values)
        except TypeError as exc:
            raise self._binding_error(exc, signature, label, names, args, fixed, path) from None
        return values

    def _binding_error(self, exc: TypeError, signature: inspect.Signature, label: str, names: list[str],
                       args: dict, fixed: dict, path: str) -> ConfigError:
        valid = [name for name in names if name not in fixed]
        described = f"{label}({', '.join(valid)})"
        for key in args:
            if key not in names:
                choices = f"arguments: {described}" if valid else f"{label} takes no arguments"
                return self.fail(f"{path}.{key}", f"{label} has no argument {key!r}{_did_you_mean(key, valid)}; "
                                                  f"{choices}")
        for parameter in signature.parameters.values():
            if parameter.name in names and parameter.name not in args and parameter.name not in fixed \
                    and parameter.default is inspect.Parameter.empty:
                hint = " (pass --data PATH)" if parameter.name == "path" else ""
                return self.fail(f"{path}.{parameter.name}", f"missing required argument of {described}{hint}")
        return self.fail(path, f"{label} cannot be called with these arguments: {exc}")


def _tuples(value: Any) -> Any:
    """YAML lists become tuples (shapes); mappings are walked."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _argument_in(message: str, names: tuple[str, ...]) -> str | None:
    """The argument among ``names`` that ``message`` mentions first (as a whole word), else None."""
    found = [(match.start(), name) for name in names
             if (match := re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message))]
    return min(found)[1] if found else None


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlong = 60, 60, 40


def _shown(value: Any) -> str:
    """``value`` for a message: its repr, cut short (a YAML value or a command-line number can be large)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return _short.repr(value)


def _exception_text(exc: BaseException) -> str:
    """``RuntimeError: message`` (the type alone when the message is empty; NumPy's allocation failure
    as MemoryError: its message says how much memory was asked for)."""
    name = "MemoryError" if isinstance(exc, MemoryError) else type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def data_component(name: str, args: dict, batch_size: int, path: str = "data") -> Component:
    """A validated data set component from a name and arguments (``path`` labels errors)."""
    from corenet.plugins import get_registry

    return _Checker(get_registry(), "corenet").component({"name": name, "args": args}, "datasets", path,
                                                         fixed={"batch_size": batch_size})


# -- building ------------------------------------------------------------------------------------
def build_data(config: Config):
    """The data layer the config describes; a batch larger than its training set is refused."""
    with selection(config):
        data_layer = config.data.build()
    size = getattr(data_layer, "train_size", None)
    if isinstance(size, int) and not isinstance(size, bool) and config.batch_size > size:
        raise ConfigError(f"{config.source}: training.batch_size: {config.batch_size} is larger than the "
                          f"training set of {config.data.name} ({size} samples), so every batch would repeat "
                          f"samples; use at most {size}")
    return data_layer


def build_network(config: Config):
    """The NeuralNetwork the config describes (no data layer attached), its classes from the implementation
    :func:`preference_for` chooses (the registry's selection is restored afterwards)."""
    with selection(config):
        return _build_network(config)


def _build_network(config: Config):
    from corenet.network import NeuralNetwork

    if config.model is not None:
        net = config.model.build()
        if not isinstance(net, NeuralNetwork):
            raise ConfigError(f"{config.source}: network.model: {config.model.name} returned a "
                              f"{type(net).__name__}, not a NeuralNetwork")
        return net
    optimizer = config.optimizer.build()
    if config.regularizer is not None:
        optimizer.add_regularizer(config.regularizer.build())
    net = NeuralNetwork(optimizer, config.weights_initializer.build(), config.bias_initializer.build())
    net.loss_layer = config.loss.build()
    for component in config.layers:
        layer = component.build()
        try:
            net.append_layer(layer)
        except (TypeError, ValueError) as exc:
            message = f"{config.source}: {component.path}: cannot add {component.name}: {exc}"
            raise ConfigError(message) from exc
        except Exception as exc:  # e.g. a third-party layer's initialize() failing
            raise ConfigError(f"{config.source}: {component.path} ({type(layer).__name__}): "
                              f"{_exception_text(exc)}") from exc
    return net


def iterations_for(config: Config, data_layer) -> int:
    """Training iterations: ``iterations``, or ``epochs`` x batches per epoch of the data layer.

    An epoch is ceil(train_size / batch_size) batches, as :func:`corenet.epochs.iterations_per_epoch`
    counts them, so ``epochs: 20`` trains and reports exactly 20 epochs.
    """
    from corenet.epochs import iterations_per_epoch

    if config.iterations is not None:
        return config.iterations
    size = getattr(data_layer, "train_size", None)
    if size is None:
        raise ConfigError(f"{config.source}: training.epochs: the data set {config.data.name!r} has no fixed "
                          f"training set size; give training.iterations instead")
    return max(1, round(config.epochs * iterations_per_epoch(data_layer, config.batch_size)))
