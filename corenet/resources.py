"""How much memory a layer's parameters may take, checked from its arguments before anything is allocated.

A typo such as ``output_size: 1000000000000`` would otherwise ask NumPy for terabytes
(or, below the system's limit, succeed and swap the machine to a halt). Layers call
:func:`check_parameter_memory` with the number of parameter values their arguments
imply before they allocate them; more than :func:`parameter_budget` bytes (a quarter of
the physical memory: training keeps about four copies, the weights, their gradient and
an optimizer's state) raises :class:`ResourceError` saying how much it would take.
"""

from __future__ import annotations

import os

import numpy as np

from corenet.errors import CorenetError

#: physical memory assumed where the system does not say
FALLBACK_MEMORY = 8 << 30
#: the share of physical memory one layer's parameters may take
BUDGET_SHARE = 4


class ResourceError(CorenetError, ValueError):
    """Building something would take more memory than this machine has to give."""


def physical_memory() -> int:
    """Bytes of physical memory (``FALLBACK_MEMORY`` where the system does not say)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return FALLBACK_MEMORY
    return pages * page_size if pages > 0 and page_size > 0 else FALLBACK_MEMORY


def parameter_budget() -> int:
    """Bytes one layer's parameters may take: a quarter of the physical memory."""
    return physical_memory() // BUDGET_SHARE


def format_bytes(count: float) -> str:
    """``count`` bytes in binary units, e.g. ``5.7 TiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_parameter_memory(owner: str, argument: str, count: int, dtype, what: str) -> None:
    """Refuse ``count`` parameter values of ``dtype`` when they exceed :func:`parameter_budget`.

    ``owner`` is the layer's class name, ``argument`` the constructor argument most
    responsible (the message names it, so configs report its key path) and ``what``
    describes the values, e.g. ``"785 x 1000000000000 weights"``.
    """
    size = int(count) * np.dtype(dtype).itemsize
    budget = parameter_budget()
    if size > budget:
        raise ResourceError(
            f"{owner}: {argument}: {what} of {np.dtype(dtype).name} would take {format_bytes(size)}; one layer's "
            f"parameters may take at most {format_bytes(budget)}, a quarter of this machine's "
            f"{format_bytes(physical_memory())} (training keeps weights, gradients and optimizer state)"
        )
