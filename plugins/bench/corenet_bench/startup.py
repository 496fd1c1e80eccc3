"""W7: wall time of ``corenet --help`` and ``corenet list-layers``, each as a new process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def corenet_command() -> list[str]:
    """The ``corenet`` console script beside this Python (else on PATH, else ``python -m corenet``)."""
    beside = Path(sys.executable).parent / ("corenet.exe" if os.name == "nt" else "corenet")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("corenet")
    return [found] if found else [sys.executable, "-m", "corenet"]


def time_command(arguments: tuple[str, ...], repeats: int, warmup: int) -> list[float]:
    """Milliseconds of ``corenet ARGUMENTS`` run ``repeats`` times after ``warmup`` untimed runs.

    Raises RuntimeError (with the end of stderr) if the command fails.
    """
    command = [*corenet_command(), *arguments]
    times: list[float] = []
    for index in range(warmup + repeats):
        start = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
        elapsed = (time.perf_counter() - start) * 1e3
        if finished.returncode != 0:
            tail = finished.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"`{' '.join(command)}` exited with {finished.returncode}: {' | '.join(tail)}")
        if index >= warmup:
            times.append(elapsed)
    return times
