"""The submissions in a folder: one per sub-folder, in the course's layout or a plugin project.

Sub-folders whose name starts with ``.`` or ``_`` (``.git``, ``__pycache__``) and plain files
(a weights file beside the submissions) are not submissions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COURSE, PLUGIN = "course", "plugin"
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Submission:
    """One student's folder; ``kind`` is "course" or "plugin" (a folder with a pyproject.toml)."""

    name: str
    path: Path

    @property
    def kind(self) -> str:
        return PLUGIN if (self.path / "pyproject.toml").is_file() else COURSE


def find_submissions(folder: Path) -> list[Submission]:
    """Every submission folder directly inside ``folder``, sorted by name. Raises ValueError when
    ``folder`` is not a folder or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (expected a folder with one sub-folder per submission)")
    found = sorted((Submission(p.name, p.resolve()) for p in folder.iterdir()
                    if p.is_dir() and not p.name.startswith((".", "_"))), key=lambda s: s.name)
    if not found:
        raise ValueError(f"{folder} holds no submissions: expected one sub-folder per submission "
                         f"(in the course's layout, or a plugin project with a pyproject.toml)")
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> (2, 5); the shard number counts from 1."""
    match = _SHARD.match(text)
    if not match:
        raise ValueError(f"--shard {text}: expected I/N, e.g. 1/4 (the first of four machines)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard {text}: I must be between 1 and N (N >= 1)")
    return index, count


def shard(submissions: list[Submission], index: int, count: int) -> list[Submission]:
    """Shard ``index`` of ``count``: every ``count``-th submission in name order, starting at the
    ``index``-th. The shards 1/N ... N/N cover every submission exactly once, on any machine."""
    ordered = sorted(submissions, key=lambda s: s.name)
    return ordered[index - 1::count]
