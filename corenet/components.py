"""Layers, optimizers, regularizers, initializers and losses as plain data, and back.

A *component* (an instance of a class registered under one of :data:`KINDS`) becomes::

    {"$type": "component", "id": n, "kind": "layers", "name": "FullyConnected",
     "plugin": "corenet", "args": [4, 3], "kwargs": {}, "state": {...}}

and is rebuilt by calling the class the registry *currently selects* for ``name`` with
``args``/``kwargs``, then restoring ``state``: a checkpoint names the layer, not the
implementation. Values inside are plain data (None, bool, int, float, str, bytes,
list, tuple, dict with str/int keys), NumPy arrays and scalars of a numeric dtype
(``{"$type": "ndarray", "dtype": "<f8", "shape": [...], "order": "C", "data": bytes}``),
dtypes, nested components, and ``{"$type": "ref", "id": n}`` for a component or array
met before (so shared objects stay shared).

The protocol a class follows (all optional; the defaults need no code):

- **configuration** - ``get_config() -> dict`` of keyword arguments for the constructor;
  else the arguments a :class:`~corenet.base.BaseLayer` was constructed with
  (recorded by BaseLayer); else the attributes named like ``__init__``'s parameters.
- **state** - ``get_state() -> dict`` and ``set_state(state)``; by default the public
  instance attributes (not in ``transient``, not starting with ``_``) plus public
  properties that have a setter, and for a :class:`~corenet.base.TrainableLayer` its
  ``optimizer`` and ``parameter_optimizers`` (one optimizer copy per parameter). The
  default ``set_state`` accepts exactly the keys a freshly constructed instance has,
  each of the type it has there (arrays of the same shape).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from corenet.base import TrainableLayer, brief
from corenet.errors import CheckpointError, RegistryError

#: registry kinds a checkpoint may name
KINDS = ("layers", "optimizers", "initializers", "regularizers", "losses")
#: dtypes an array may have in a checkpoint (little-endian numeric only)
ARRAY_DTYPES = frozenset({"<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"})
MAX_NDIM = 32
#: the largest array (bytes) a checkpoint may hold
MAX_ARRAY_BYTES = 2**31
#: attributes that, when they hold a component, must hold one of this kind
ATTRIBUTE_KINDS = {"regularizer": "regularizers", "optimizer": "optimizers", "loss_layer": "losses",
                   "weights_initializer": "initializers", "bias_initializer": "initializers"}
#: the state keys a TrainableLayer adds to its attributes
OPTIMIZER_KEYS = ("optimizer", "parameter_optimizers")
PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)
SAVE_NON_FINITE = "a checkpoint keeps finite values only (did training diverge?)"
LOAD_NON_FINITE = "refusing a network with non-finite weights (the file was saved from a diverged network or altered)"


def registered(obj: Any, registry) -> tuple[str, str, str] | None:
    """``(kind, name, distribution)`` under which ``type(obj)`` is registered, or None."""
    cls = type(obj)
    for (kind, name), implementations in registry.implementations.items():
        if kind in KINDS:
            for implementation in implementations:
                if implementation.obj is cls:
                    return kind, name, implementation.distribution
    return None


# -- the protocol's defaults ------------------------------------------------------------------------
def _init_parameters(cls: type) -> list[inspect.Parameter]:
    """``cls.__init__``'s parameters after ``self`` (none for ``object.__init__``)."""
    if cls.__init__ is object.__init__:
        return []
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return parameters


def config_of(obj: Any, where: str) -> tuple[tuple, dict]:
    """``(args, kwargs)`` that rebuild ``obj`` (see the module docstring)."""
    get_config = getattr(obj, "get_config", None)
    if callable(get_config):
        config = get_config()
        if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
            raise CheckpointError(f"{where}: get_config() must return a dict of keyword arguments, "
                                  f"got {brief(config)}")
        return (), dict(config)
    recorded = getattr(obj, "__dict__", {}).get("_init_arguments")
    if recorded is not None:
        return tuple(recorded[0]), dict(recorded[1])
    args, kwargs, missing = [], {}, []
    for parameter in _init_parameters(type(obj)):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(obj, parameter.name):
            missing.append(parameter.name)
        elif parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = getattr(obj, parameter.name)
        else:
            args.append(getattr(obj, parameter.name))
    if missing:
        name = type(obj).__name__
        raise CheckpointError(
            f"{where}: {name} takes the argument(s) {', '.join(missing)} but keeps no attribute of that name, so "
            f"a checkpoint cannot rebuild it; store them (self.{missing[0]} = {missing[0]}) or give {name} "
            f"a get_config() method returning its constructor arguments"
        )
    return tuple(args), kwargs


def _settable_properties(cls: type) -> list[str]:
    """Public properties of ``cls`` that have a setter, sorted by name."""
    names = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if not name.startswith("_") and isinstance(value, property) and value.fset is not None:
                if isinstance(getattr(cls, name, None), property):  # not shadowed by a subclass
                    names.add(name)
    return sorted(names)


def state_layout(obj: Any) -> tuple[list[str], list[str], bool]:
    """(attribute names, settable property names, whether it keeps per-parameter optimizers) of the
    default state (see the module docstring)."""
    transient = set(getattr(obj, "transient", ()) or ())
    trainable = isinstance(obj, TrainableLayer)
    attributes = sorted(name for name in getattr(obj, "__dict__", {})
                        if not name.startswith("_") and name not in transient)
    properties = [name for name in _settable_properties(type(obj))
                  if name not in transient and not (trainable and name in OPTIMIZER_KEYS)]
    return attributes, properties, trainable


def default_state(obj: Any) -> dict[str, Any]:
    """The default state of ``obj``: attribute/property name -> value (see the module docstring)."""
    attributes, properties, trainable = state_layout(obj)
    state = {name: obj.__dict__[name] for name in attributes}
    for name in properties:
        state[name] = getattr(obj, name)
    if trainable:
        state["optimizer"] = obj.optimizer
        state["parameter_optimizers"] = dict(obj._parameter_optimizers)
    return state


def state_of(obj: Any, where: str) -> dict[str, Any]:
    """``obj.get_state()`` if the class defines it (with ``set_state``), else :func:`default_state`."""
    custom = [callable(getattr(obj, name, None)) for name in ("get_state", "set_state")]
    if any(custom) and not all(custom):
        raise CheckpointError(f"{where}: {type(obj).__name__} defines one of get_state() and set_state() "
                              f"but not the other; a checkpoint needs both or neither")
    if all(custom):
        state = obj.get_state()
        if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
            raise CheckpointError(f"{where}: get_state() must return a dict with str keys, got {brief(state)}")
        return state
    try:
        return default_state(obj)
    except Exception as exc:  # a property getter that fails
        raise CheckpointError(f"{where}: cannot read its state: {type(exc).__name__}: {exc}") from exc


def _category(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, np.ndarray):
        return "array"
    for kind in (str, bytes, list, tuple, dict, np.dtype):
        if isinstance(value, kind):
            return kind.__name__
    return "component"


def _check_like(fresh: Any, saved: Any, where: str, registry) -> None:
    """Refuse a saved value of another type than a freshly built instance holds (None: anything)."""
    if fresh is None:
        return
    expected, got = _category(fresh), _category(saved)
    if expected != got:
        raise CheckpointError(f"{where} must be {_a(expected)} (as a new instance has), got {brief(saved)}")
    if expected == "array":
        if saved.shape != fresh.shape:
            raise CheckpointError(f"{where} must have shape {fresh.shape} (as the layer's arguments give), "
                                  f"got {saved.shape}")
        if _array_kind(saved) != _array_kind(fresh):
            raise CheckpointError(f"{where} must be a {_array_kind(fresh)} array, got dtype {saved.dtype}")
    elif expected == "tuple":
        if len(saved) != len(fresh):
            raise CheckpointError(f"{where} must have {len(fresh)} entries, got {len(saved)}")
        for index, (old, new) in enumerate(zip(fresh, saved)):
            _check_like(old, new, f"{where}[{index}]", registry)
    elif expected == "component":
        want, have = registered(fresh, registry), registered(saved, registry)
        if have is None or want is None or have[:2] != want[:2]:
            raise CheckpointError(f"{where} must be {_a(type(fresh).__name__)}, got {brief(saved)}")


def _array_kind(array: np.ndarray) -> str:
    return {"f": "floating", "b": "bool"}.get(array.dtype.kind, "integer")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def restore_state(obj: Any, state: dict, where: str, registry) -> None:
    """Put ``state`` (decoded) into the freshly constructed ``obj``: ``obj.set_state(state)`` if the
    class defines it, else the default (exactly the fresh instance's keys, each of its type)."""
    if callable(getattr(obj, "set_state", None)):
        try:
            obj.set_state(state)
        except Exception as exc:
            raise CheckpointError(f"{where}: set_state() refused the saved state: {type(exc).__name__}: {exc}") \
                from exc
        return
    attributes, properties, trainable = state_layout(obj)
    fresh = default_state(obj)
    missing = sorted(set(fresh) - set(state))
    name = type(obj).__name__
    if missing:
        raise CheckpointError(f"{where}: the saved state has no {missing[0]!r}, which {_a(name)} keeps; the file "
                              f"is damaged or was made by hand")
    extra = sorted(set(state) - set(fresh))
    if extra:
        raise CheckpointError(f"{where}: the saved state has {extra[0]!r}, which {_a(name)} does not keep (it "
                              f"keeps {', '.join(sorted(fresh)) or 'nothing'}); every attribute a layer keeps must "
                              f"exist after __init__")
    for name in (*attributes, *properties):
        value = state[name]
        _check_like(fresh[name], value, f"{where}: {name}", registry)
        _check_component_kind(name, value, f"{where}: {name}", registry)
    for name in (*attributes, *properties):
        try:
            setattr(obj, name, state[name])
        except Exception as exc:
            raise CheckpointError(f"{where}: cannot set {name}: {type(exc).__name__}: {exc}") from exc
    if trainable:
        _restore_optimizers(obj, state["optimizer"], state["parameter_optimizers"], where, registry)


def _check_component_kind(name: str, value: Any, where: str, registry) -> None:
    kind = ATTRIBUTE_KINDS.get(name)
    if kind is not None and _category(value) == "component":
        found = registered(value, registry)
        if found is None or found[0] != kind:
            raise CheckpointError(f"{where} must be {_a(kind[:-1])}, got {brief(value)}")


def _restore_optimizers(layer: TrainableLayer, template: Any, copies: Any, where: str, registry) -> None:
    """``layer.optimizer = template``, then each parameter's own saved optimizer copy."""
    _check_component_kind("optimizer", template, f"{where}: optimizer", registry)
    if template is not None and _category(template) != "component":
        raise CheckpointError(f"{where}: optimizer must be an optimizer or None, got {brief(template)}")
    if not isinstance(copies, dict):
        raise CheckpointError(f"{where}: parameter_optimizers must be a dict, got {brief(copies)}")
    expected = set(layer.parameter_names) if template is not None else set()
    if set(copies) != expected:
        raise CheckpointError(
            f"{where}: parameter_optimizers must have one optimizer for each of "
            f"{', '.join(sorted(expected)) or '(none: no optimizer)'}, got {', '.join(map(str, copies)) or 'none'}"
        )
    for name, optimizer in copies.items():
        found = registered(optimizer, registry)
        if found is None or found[0] != "optimizers":
            raise CheckpointError(f"{where}: parameter_optimizers[{name!r}] must be an optimizer, "
                                  f"got {brief(optimizer)}")
    try:
        layer.optimizer = template
    except Exception as exc:
        raise CheckpointError(f"{where}: cannot set its optimizer: {type(exc).__name__}: {exc}") from exc
    layer._parameter_optimizers = dict(copies)


# -- encoding -------------------------------------------------------------------------------------
class Encoder:
    """Objects -> plain data (see the module docstring). One encoder per checkpoint (ids are shared)."""

    def __init__(self, registry, max_depth: int = 48) -> None:
        self.registry = registry
        self.max_depth = max_depth
        self._ids: dict[int, int] = {}
        self._alive: list[Any] = []  # keeps every object whose id is memoised alive

    def _memo(self, obj: Any) -> tuple[int, bool]:
        """(id for ``obj``, whether it was seen before)."""
        key = id(obj)
        if key in self._ids:
            return self._ids[key], True
        self._ids[key] = len(self._ids)
        self._alive.append(obj)
        return self._ids[key], False

    def value(self, value: Any, where: str, depth: int = 0) -> Any:
        """``value`` as plain data; a CheckpointError names ``where`` for anything else."""
        if depth > self.max_depth:
            raise CheckpointError(f"{where}: nested more than {self.max_depth} levels deep (a cycle?)")
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if type(value) in PLAIN_SCALARS:
            return value
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, np.dtype):
            return {"$type": "dtype", "dtype": self._dtype(value, where)}
        if type(value) in (list, tuple):
            items = [self.value(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)]
            return items if type(value) is list else tuple(items)
        if type(value) is dict:
            encoded = {}
            for key, item in value.items():
                if type(key) not in (str, int) or key == "$type":
                    raise CheckpointError(f"{where}: a dict key must be a str or int (not '$type'), got {key!r}")
                encoded[key] = self.value(item, f"{where}[{key!r}]", depth + 1)
            return encoded
        if registered(value, self.registry) is not None:
            return self.component(value, where, depth + 1)
        raise CheckpointError(
            f"{where} holds {brief(value)}, which a checkpoint cannot store: only plain data (numbers, strings, "
            f"lists, tuples, dicts), numeric NumPy arrays and registered components are saved. Keep it in a "
            f"private attribute (_name) or list it in the class's transient names, or give the class "
            f"get_state()/set_state()"
        )

    def _dtype(self, dtype: np.dtype, where: str) -> str:
        little = dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype
        name = little.str
        if name not in ARRAY_DTYPES or dtype.fields is not None or dtype.subdtype is not None:
            raise CheckpointError(f"{where}: dtype {dtype} cannot be saved; a checkpoint holds arrays of "
                                  f"{', '.join(sorted(ARRAY_DTYPES))} only")
        return name

    def _scalar(self, value: np.generic, where: str) -> dict:
        name = self._dtype(value.dtype, where)
        _refuse_non_finite(np.asarray(value), where, SAVE_NON_FINITE)
        return {"$type": "scalar", "dtype": name, "data": np.asarray(value, dtype=name).tobytes()}

    def array(self, array: np.ndarray, where: str) -> dict:
        """``array`` as ``{"$type": "ndarray", ...}`` (or a ref to the same array encoded before)."""
        identity, seen = self._memo(array)
        if seen:
            return {"$type": "ref", "id": identity}
        name = self._dtype(array.dtype, where)
        _refuse_non_finite(array, where, SAVE_NON_FINITE)
        order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        data = np.asarray(array, dtype=name).tobytes(order=order)
        return {"$type": "ndarray", "id": identity, "dtype": name, "shape": list(array.shape), "order": order,
                "data": data}

    def component(self, obj: Any, where: str, depth: int = 0) -> dict:
        """A registered component as ``{"$type": "component", ...}`` (or a ref)."""
        found = registered(obj, self.registry)
        if found is None:
            name = type(obj).__name__
            raise CheckpointError(
                f"{where}: {name} is not registered by corenet or an installed plugin, and a checkpoint names "
                f"components by their registry name; register {name} in a plugin (see docs/checkpoints.md)"
            )
        identity, seen = self._memo(obj)
        if seen:
            return {"$type": "ref", "id": identity}
        kind, name, plugin = found
        args, kwargs = config_of(obj, where)
        state = state_of(obj, where)
        for key, item in state.items():
            if _non_finite_number(item):
                raise CheckpointError(f"{where}: {key} holds NaN or inf values; {SAVE_NON_FINITE}")
        return {
            "$type": "component", "id": identity, "kind": kind, "name": name, "plugin": plugin,
            "args": [self.value(arg, f"{where}: argument {index + 1}", depth + 1) for index, arg in enumerate(args)],
            "kwargs": {key: self.value(arg, f"{where}: argument {key}", depth + 1) for key, arg in kwargs.items()},
            "state": {key: self.value(item, f"{where}: {key}", depth + 1) for key, item in state.items()},
        }


# -- decoding -------------------------------------------------------------------------------------
def _keys(value: dict, expected: set[str], where: str) -> None:
    if set(value) != expected:
        wrong = sorted(map(str, set(value) ^ expected))
        raise CheckpointError(f"{where}: malformed {value.get('$type')} record (keys {', '.join(wrong)} "
                              f"wrong); the file is damaged or was made by hand")


def _integer(value: Any) -> bool:
    return type(value) is int


class Decoder:
    """Plain data -> objects, rebuilding components through ``registry`` (see the module docstring)."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self._objects: dict[int, Any] = {}

    def value(self, value: Any, where: str) -> Any:
        kind = type(value)
        if kind in PLAIN_SCALARS:
            return value
        if kind is list:
            return [self.value(item, f"{where}[{index}]") for index, item in enumerate(value)]
        if kind is tuple:
            return tuple(self.value(item, f"{where}[{index}]") for index, item in enumerate(value))
        if kind is not dict:
            raise CheckpointError(f"{where}: holds {brief(value)}, not plain data")
        special = value.get("$type")
        if special is None:
            return {key: self.value(item, f"{where}[{key!r}]") for key, item in value.items()}
        handler = {"ndarray": self.array, "scalar": self._scalar, "dtype": self._dtype_record,
                   "component": self.component, "ref": self._ref}.get(special)
        if handler is None:
            raise CheckpointError(f"{where}: unknown record type {special!r}")
        return handler(value, where)

    def _remember(self, record: dict, obj: Any, where: str) -> None:
        identity = record["id"]
        if not _integer(identity) or identity in self._objects:
            raise CheckpointError(f"{where}: bad or repeated object id {identity!r}")
        self._objects[identity] = obj

    def _ref(self, record: dict, where: str) -> Any:
        _keys(record, {"$type", "id"}, where)
        identity = record["id"]
        if not _integer(identity) or identity not in self._objects:
            raise CheckpointError(f"{where}: refers to object {identity!r}, which the file does not define before")
        return self._objects[identity]

    @staticmethod
    def _dtype(name: Any, where: str) -> np.dtype:
        if type(name) is not str or name not in ARRAY_DTYPES:
            raise CheckpointError(f"{where}: dtype {name!r} is not allowed; a checkpoint holds arrays of "
                                  f"{', '.join(sorted(ARRAY_DTYPES))} only")
        return np.dtype(name)

    def _dtype_record(self, record: dict, where: str) -> np.dtype:
        _keys(record, {"$type", "dtype"}, where)
        return self._dtype(record["dtype"], where).newbyteorder("=")

    def _scalar(self, record: dict, where: str) -> np.generic:
        _keys(record, {"$type", "dtype", "data"}, where)
        dtype = self._dtype(record["dtype"], where)
        data = record["data"]
        if type(data) is not bytes or len(data) != dtype.itemsize:
            raise CheckpointError(f"{where}: a {dtype} scalar needs {dtype.itemsize} bytes")
        scalar = np.frombuffer(data, dtype=dtype)[0].astype(dtype.newbyteorder("="))
        _refuse_non_finite(np.asarray(scalar), where, LOAD_NON_FINITE)
        return scalar

    def array(self, record: dict, where: str) -> np.ndarray:
        """A writable array from its record; shape, dtype and byte count checked before anything is allocated."""
        _keys(record, {"$type", "id", "dtype", "shape", "order", "data"}, where)
        dtype = self._dtype(record["dtype"], where)
        shape, order, data = record["shape"], record["order"], record["data"]
        if (type(shape) is not list or len(shape) > MAX_NDIM
                or not all(_integer(n) and 0 <= n <= MAX_ARRAY_BYTES for n in shape)):
            raise CheckpointError(f"{where}: shape {brief(shape)} is not a list of at most {MAX_NDIM} "
                                  f"non-negative sizes")
        count = 1
        for n in shape:
            count *= n
        if count * dtype.itemsize > MAX_ARRAY_BYTES:
            raise CheckpointError(f"{where}: shape {tuple(shape)} of {dtype} would need {count * dtype.itemsize} "
                                  f"bytes, more than a checkpoint may hold ({MAX_ARRAY_BYTES})")
        if type(data) is not bytes or len(data) != count * dtype.itemsize:
            size = len(data) if type(data) is bytes else brief(data)
            raise CheckpointError(f"{where}: shape {tuple(shape)} of {dtype} needs {count * dtype.itemsize} bytes, "
                                  f"the file holds {size}")
        if order not in ("C", "F"):
            raise CheckpointError(f"{where}: order must be 'C' or 'F', got {order!r}")
        try:
            view = np.frombuffer(data, dtype=dtype).reshape(shape, order=order)
            array = np.array(view, dtype=dtype.newbyteorder("="), order=order, copy=True)
        except (ValueError, MemoryError) as exc:
            raise CheckpointError(f"{where}: cannot rebuild the array: {exc}") from None
        _refuse_non_finite(array, where, LOAD_NON_FINITE)
        self._remember(record, array, where)
        return array

    def component(self, record: Any, where: str, kind: str | None = None) -> Any:
        """Construct the registered class ``record`` names with its arguments, then restore its state.

        ``kind`` (e.g. ``"layers"``): the kind the record must name.
        """
        if type(record) is dict and record.get("$type") == "ref":  # the same object met before
            obj = self._ref(record, where)
            found = registered(obj, self.registry)
            if found is None or (kind is not None and found[0] != kind):
                raise CheckpointError(f"{where}: refers to {brief(obj)}, not a {(kind or 'components')[:-1]}")
            return obj
        if type(record) is not dict or record.get("$type") != "component":
            raise CheckpointError(f"{where}: expected a saved {(kind or 'components')[:-1]}, got {brief(record)}")
        _keys(record, {"$type", "id", "kind", "name", "plugin", "args", "kwargs", "state"}, where)
        saved_kind, name, plugin = record["kind"], record["name"], record["plugin"]
        if saved_kind not in KINDS or (kind is not None and saved_kind != kind):
            allowed = kind or " / ".join(KINDS)
            raise CheckpointError(f"{where}: a {allowed[:-1]} is expected here, the file names a {saved_kind!r}")
        if type(name) is not str or type(plugin) is not str:
            raise CheckpointError(f"{where}: malformed component name {brief(name)}")
        try:
            cls = self.registry.get(saved_kind, name)
        except RegistryError:
            raise CheckpointError(
                f"{where}: the {saved_kind[:-1]} {name!r} is not installed here (it was saved with "
                f"{plugin}); install the plugin that provides it"
            ) from None
        args, kwargs, state = record["args"], record["kwargs"], record["state"]
        if type(args) is not list or type(kwargs) is not dict or type(state) is not dict:
            raise CheckpointError(f"{where}: {name}'s args, kwargs and state must be a list and two dicts")
        if not all(type(key) is str for key in (*kwargs, *state)):
            raise CheckpointError(f"{where}: {name}'s keyword arguments and state keys must be strings")
        label = f"{where} ({name})"
        args = self.value(args, f"{label}: arguments")
        kwargs = {key: self.value(item, f"{label}: argument {key}") for key, item in kwargs.items()}
        try:
            obj = cls(*args, **kwargs)
        except MemoryError:
            raise CheckpointError(f"{label}: constructing {name}{_call(args, kwargs)} needs more memory than "
                                  f"there is") from None
        except Exception as exc:
            raise CheckpointError(f"{label}: cannot construct {name}{_call(args, kwargs)}: "
                                  f"{type(exc).__name__}: {exc}") from None
        self._remember(record, obj, where)
        decoded = {key: self.value(item, f"{label}: {key}") for key, item in state.items()}
        for key, item in decoded.items():
            if _non_finite_number(item):
                raise CheckpointError(f"{label}: {key} holds NaN or inf values; {LOAD_NON_FINITE}")
        restore_state(obj, decoded, label, self.registry)
        return obj


def _call(args: list, kwargs: dict) -> str:
    parts = [brief(arg) for arg in args] + [f"{key}={brief(value)}" for key, value in kwargs.items()]
    text = ", ".join(parts)
    return f"({text if len(text) <= 120 else text[:117] + '...'})"


def _non_finite_number(value: Any) -> bool:
    """Whether ``value`` (a float or a list/tuple/dict of them) holds NaN or inf."""
    if isinstance(value, (float, np.floating)):
        return not np.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite_number(item) for item in value)
    if isinstance(value, dict):
        return any(_non_finite_number(item) for item in value.values())
    return False


def _refuse_non_finite(array: np.ndarray, where: str, action: str) -> None:
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise CheckpointError(f"{where} holds NaN or inf values; {action}")
