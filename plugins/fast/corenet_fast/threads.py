"""Large elementwise steps split over the first axis between the calling thread and one helper.

NumPy releases the GIL inside its ufunc loops, so the two halves run on two cores
at once (a single NumPy call uses one). The results are bit-for-bit those of one
call: every element is computed the same way whichever thread computes it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

#: Fewer elements than this are not split: handing work to the helper thread costs some 10-50 µs.
MIN_SPLIT = 1 << 16

T = TypeVar("T")

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

#: Threads a split uses (the caller and at most one helper); set 1 to keep everything on one thread.
THREADS = min(2, _CORES)
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def _helper() -> ThreadPoolExecutor:
    """The one helper thread, created on first use (again in a forked child, where threads are gone)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corenet-fast")
            _pool_pid = os.getpid()
        return _pool


def over_rows(task: Callable[[slice], T], rows: int, size: int) -> list[T]:
    """Run ``task(part)`` for slices ``part`` covering ``range(rows)``; return its results in row order.

    With :data:`THREADS` at 2, two or more rows and ``size`` (the elements
    involved) of at least :data:`MIN_SPLIT`, the first half of the rows goes to the
    helper thread and the second half runs here; otherwise one call does all rows.
    ``task`` must only write its own rows.
    """
    if THREADS < 2 or rows < 2 or size < MIN_SPLIT:
        return [task(slice(0, rows))]
    half = rows // 2
    future = _helper().submit(task, slice(0, half))
    try:
        second = task(slice(half, rows))
    finally:
        first = future.result()
    return [first, second]
