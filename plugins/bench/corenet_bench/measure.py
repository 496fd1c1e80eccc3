"""Timing and peak memory of one training step.

Timing interleaves the frameworks in blocks (a few corenet steps, a few PyTorch
steps, then PyTorch first, ...), so slow drift and load from elsewhere hit both
alike. Blocks rather than single steps because each framework keeps its own
thread pool (OpenBLAS threads, PyTorch's OpenMP threads) whose threads spin for
a while after their work: alternating step by step on a 2-core machine made
each framework run beside the other's spinning threads and inflated both
(PyTorch's Conv step by up to 15x). Blocks alone were not enough: OpenBLAS's
idle threads keep spinning for about 0.1 s after NumPy's last matrix product,
and a PyTorch block started in that window ran up to 2.5x slower on a 2-core
machine (W6 float64: 13.7 ms right after corenet's block, 5.4 ms after a 0.1 s
pause; corenet was unaffected by PyTorch's threads). Pausing is no cure either:
after even 10 ms of idling the next steps of both frameworks ran slower (the
idle cores and sleeping helper threads take a while to come back; corenet's
Dropout step 1.8 -> 2.8 ms). So each block starts with untimed steps of its own
framework, repeated for at least :data:`SETTLE` seconds: the CPU never idles, and
the other framework's threads have gone quiet before the first timed step. The
garbage collector is paused while timing, as :mod:`timeit` does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable

Step = Callable[[], object]
BLOCK = 5  # timed steps per framework before switching
LEAD = 1  # untimed steps after each switch
SETTLE = 0.25  # seconds of untimed steps opening each block, while the other framework's threads go idle


def interleaved(steps: dict[str, Step], repeats: int, warmup: int, block: int = BLOCK,
                lead: int = LEAD, settle: float | None = None) -> dict[str, list[float]]:
    """Milliseconds of ``repeats`` timed runs of each step, taken in alternating blocks.

    First every step runs ``warmup`` times untimed. Then, round after round, each
    step runs untimed ``lead`` times and for at least ``settle`` seconds (default
    :data:`SETTLE`), then up to ``block`` timed times; the order of the steps reverses
    every round.
    """
    settle = SETTLE if settle is None else settle
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in names:
            for _ in range(warmup):
                steps[name]()
        round_index = 0
        while len(times[names[0]]) < repeats:
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                opened, runs = time.perf_counter(), 0
                # untimed: until the previous block's thread pool has fallen asleep, the CPU kept busy
                while runs < lead or time.perf_counter() - opened < settle:
                    steps[name]()
                    runs += 1
                for _ in range(min(block, repeats - len(times[name]))):
                    start = time.perf_counter()
                    steps[name]()
                    times[name].append((time.perf_counter() - start) * 1e3)
            round_index += 1
    finally:
        if was_enabled:
            gc.enable()
    return times


def summarize(times_ms: list[float]) -> dict:
    """Median, minimum and maximum of a list of milliseconds (rounded to microseconds), and the list."""
    return {
        "median_ms": round(statistics.median(times_ms), 4),
        "min_ms": round(min(times_ms), 4),
        "max_ms": round(max(times_ms), 4),
        "times_ms": [round(t, 4) for t in times_ms],
    }


def kernel_cost(step: Step, steps: int = 3) -> dict | None:
    """Page faults and kernel (system) CPU milliseconds per step, over ``steps`` extra steps.

    Large temporaries that the C allocator hands back to the system each step come
    back as fresh pages, which the kernel must fault in and zero: a high figure here
    means buffer reuse would pay. None where ``resource`` is unavailable (Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(steps):
        step()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"page_faults_per_step": round((after.ru_minflt - before.ru_minflt) / steps, 1),
            "system_ms_per_step": round((after.ru_stime - before.ru_stime) / steps * 1e3, 3)}


def held_bytes(build: Callable[[], object], step_of: Callable[[object], Step]) -> tuple[object, int]:
    """Build a case and run one step under tracemalloc; return it and the bytes still held afterwards.

    That is what the case keeps between steps: its parameters, optimizer state,
    inputs, caches for backward and any reused workspace buffers.
    """
    if tracemalloc.is_tracing():  # someone else traces: do not disturb their figures
        case = build()
        step_of(case)()
        return case, 0
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        case = build()
        step_of(case)()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return case, max(0, after - before)


def numpy_peak_bytes(step: Step) -> int:
    """Peak bytes allocated during one ``step`` above what was held before it (tracemalloc).

    NumPy reports its array buffers to tracemalloc, so this is the step's
    transient NumPy + Python memory: temporaries, caches for backward, new weights.
    """
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already_tracing:
            tracemalloc.stop()
    return max(0, peak - before)


def torch_peak_bytes(torch, step: Step) -> int | None:
    """Approximate peak bytes PyTorch allocates during one ``step``, from its profiler's memory records.

    Each operator's own allocations count from its start, its own frees from its
    end; the running sum's maximum is the peak. None if the profiler is unavailable.
    """
    try:
        from torch.profiler import ProfilerActivity, profile

        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        changes = []
        for event in prof.events():
            amount = int(getattr(event, "self_cpu_memory_usage", 0) or 0)
            if amount > 0:
                changes.append((event.time_range.start, amount))
            elif amount < 0:
                changes.append((event.time_range.end, amount))
        changes.sort(key=lambda change: (change[0], -change[1]))
        current = peak = 0
        for _, amount in changes:
            current += amount
            peak = max(peak, current)
        return peak
    except Exception:  # profiler missing or its event format changed: no figure rather than a crash
        return None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop chatter) for the block."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
