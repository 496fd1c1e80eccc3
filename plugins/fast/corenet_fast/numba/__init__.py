"""Compiled kernels for corenet-fast (optional: ``pip install 'corenet-fast[numba]'``).

The fast layers and Adam ask :func:`kernels` for a kernel module by name
(``"batchnorm"``, ``"lstm"``, ``"pooling"``, ``"adam"``) and fall back to their NumPy code
when it returns None: numba is not installed, ``CORENET_FAST_NUMBA=0`` is set, or
numba failed to load. Nothing here imports numba before a kernel is asked for, so
``corenet --help`` and ``corenet list-layers`` start as fast with numba as without.

Compiled code is cached on disk (``cache=True``; numba keeps it beside the modules
in ``__pycache__``, or in its user cache when that folder is read-only); the first
call that has to compile prints one line to stderr, and later processes load the
cache in milliseconds.

Threads: every kernel runs on the calling thread. On the 2-core VMs measured
(benchmarks/README.md) waking numba's sleeping workers cost 0.1–0.2 ms per parallel
call, more than the kernels' own work, and its OpenMP workers, which spin instead,
slowed the OpenBLAS products of the layers that followed (LeNet's step 4.3 -> 12.5 ms).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

#: environment switch: ``CORENET_FAST_NUMBA=0`` makes every fast layer use its NumPy kernels
ENV = "CORENET_FAST_NUMBA"
#: kernel modules of this package, by the name the fast layers ask for
KERNELS = ("batchnorm", "lstm", "pooling", "adam")
#: the numba options every kernel is compiled with. fastmath is limited to reassociation and
#: fused multiply-add (so sums vectorise); 'nnan'/'ninf' are left out so a NaN still propagates
#: to the network's NaN guard, and error_model='numpy' lets divisions vectorise (x/0 gives inf/NaN
#: as in NumPy instead of raising).
OPTIONS = {"cache": True, "error_model": "numpy", "fastmath": {"reassoc", "contract"}, "nogil": True}
#: the options of an ``exact`` kernel: no fast-math at all, so it rounds exactly as NumPy does
EXACT_OPTIONS = {**OPTIONS, "fastmath": False}
#: seconds a first call may take before the one-time "compiling" message is printed
MESSAGE_AFTER = 0.3

_loaded: dict[str, ModuleType | None] = {}
_installed: bool | None = None  # whether numba can be imported (looked up once)
_announced = False
_lock = threading.Lock()


def enabled() -> bool:
    """Whether compiled kernels may be used: numba is installed and ``CORENET_FAST_NUMBA`` is not 0/false/no/off."""
    global _installed
    if os.environ.get(ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _installed is None:
        _installed = importlib.util.find_spec("numba") is not None
    return _installed


def kernels(name: str) -> ModuleType | None:
    """The compiled kernel module ``name`` (one of :data:`KERNELS`), or None to use the NumPy code.

    Re-reads ``CORENET_FAST_NUMBA`` on every call (tests switch it); imports numba once.
    """
    if name not in KERNELS:
        raise ValueError(f"unknown kernel module {name!r}; choose from {', '.join(KERNELS)}")
    if not enabled():
        return None
    if name not in _loaded:
        _loaded[name] = _import(name)
    return _loaded[name]


def _import(name: str) -> ModuleType | None:
    try:
        _initialise_numba()
        return importlib.import_module(f"{__name__}.{name}")
    except Exception as exc:  # a broken numba install must not break training: say so, use NumPy
        print(f"corenet-fast: numba kernels unavailable ({type(exc).__name__}: {exc}); using NumPy",
              file=sys.stderr)
        return None


def _initialise_numba() -> None:
    """Load numba's typing and lowering registries now (about a second, cache or not; it also imports
    SciPy's BLAS when SciPy is installed), so that a kernel's first call costs only loading its cached
    machine code or compiling it, and the "compiling" message means what it says."""
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
        cpu_target.typing_context.refresh()
    except Exception:  # an internal API that may move: the kernels work without this, only the message may lie
        pass


def compiled(exact: bool = False):
    """Decorator for a kernel: ``numba.njit`` with :data:`OPTIONS` (``exact``: :data:`EXACT_OPTIONS`), wrapped
    so that a call which has to compile (the first one for a dtype, when the cache holds none) prints the
    one-time message."""

    def decorate(function) -> Kernel:
        import numba

        return Kernel(numba.njit(**(EXACT_OPTIONS if exact else OPTIONS))(function))

    return decorate


def helper(function):
    """``numba.njit`` with :data:`OPTIONS` for a function that kernels call (not wrapped: called from compiled code)."""
    import numba

    return numba.njit(**OPTIONS)(function)


class Kernel:
    """A compiled function that announces slow first calls (see :func:`compiled`); ``dispatcher`` is numba's."""

    def __init__(self, dispatcher) -> None:
        self.dispatcher = dispatcher
        self._seen: set = set()  # dtype of the first argument of every call made so far

    def __call__(self, *args):
        key = getattr(args[0], "dtype", None)
        if key in self._seen:
            return self.dispatcher(*args)
        timer = threading.Timer(MESSAGE_AFTER, _announce)
        timer.daemon = True
        timer.start()
        try:
            result = self.dispatcher(*args)
        finally:
            timer.cancel()
        self._seen.add(key)
        return result


def _announce() -> None:
    global _announced
    with _lock:
        if not _announced:
            _announced = True
            print("corenet-fast: compiling kernels (once; later runs load them from the cache)...",
                  file=sys.stderr, flush=True)
