"""Every code block in README.md and docs/ runs, so the documentation cannot go stale.

- A ```python block runs; consecutive python blocks of a page (no console block
  between them) run in order in one interpreter, so later blocks see earlier names.
  Each page runs in a fresh temporary folder.
- A ```console block runs each ``$ command`` line with bash in that page's folder and
  expects exit status 0; lines without ``$ `` are example output and are not compared.
- A block whose fence names a file, ```` ```python title="my_relu.py" ````, is written to
  that file in the page's folder instead of being run (any language: configs too), so
  later blocks can use it, as a reader who saves it would.
- A block right after a line ``<!-- not-run: REASON -->`` is skipped; the reason is
  required and shown in the test report.

Blocks in any other language (yaml, json, text, toml) are examples of files, not programs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
TITLE = re.compile(r'title="([\w.-]+)"')
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$")
RUNNABLE = ("python", "console")
#: commands that change the Python environment the docs are tested in: such a block must be not-run
ENVIRONMENT_CHANGES = re.compile(r"\b(pip|corenet)\s+(-\S+\s+)*(install|uninstall)\b")
#: seconds one page may take (all of its blocks)
PAGE_TIMEOUT = 300


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    skip_reason: str | None
    filename: str | None = None


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` with their language and not-run reason."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        if marker is not None and not marker.group(1):
            raise ValueError(f"{page}:{text.count(chr(10), 0, match.start()) + 1}: not-run needs a reason")
        title = TITLE.search(match.group(2))
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group(1).lower(),
                           match.group(3), marker.group(1) if marker else None, title.group(1) if title else None))
    return found


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORENET_") or k == "CORENET_DATA"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["HOME"] = env.get("HOME", str(folder))
    return env


def run_page(page: Path, folder: Path) -> list[str]:
    """Run the page's runnable blocks in order in ``folder``; return the skip reasons met."""
    skipped = []
    python_source: list[str] = []
    env = _environment(folder)

    def flush_python() -> None:
        if not python_source:
            return
        script = folder / "_page.py"
        script.write_text("\n".join(python_source))
        result = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True,
                                text=True, timeout=PAGE_TIMEOUT)
        assert result.returncode == 0, f"{_page_id(page)}: python blocks failed:\n{result.stderr[-3000:]}"

    for block in blocks(page):
        if block.filename is not None and block.skip_reason is None:
            (folder / block.filename).write_text(block.code)
            continue
        if block.language not in RUNNABLE:
            continue
        if block.skip_reason is not None:
            skipped.append(f"line {block.line}: {block.skip_reason}")
            continue
        if block.language == "python":
            # each block is appended as it stands; a failing line number maps back through this comment
            python_source.append(f"# --- {_page_id(page)} line {block.line}\n{block.code}")
            continue
        flush_python()  # console commands may use files the python blocks wrote
        python_source.clear()
        for command in (line[2:] for line in block.code.splitlines() if line.startswith("$ ")):
            assert not ENVIRONMENT_CHANGES.search(command), (
                f"{_page_id(page)} line {block.line}: `{command}` would change the environment the tests run in; "
                f"mark the block <!-- not-run: REASON -->")
            result = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True,
                                    timeout=PAGE_TIMEOUT)
            assert result.returncode == 0, (
                f"{_page_id(page)} line {block.line}: `{command}` exited {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
    flush_python()
    return skipped


def test_every_page_has_a_title_and_no_path_outside_the_repository():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert text.lstrip().startswith("# "), f"{_page_id(page)} has no '# Title' first line"
        assert "../shared" not in text, f"{_page_id(page)} points at ../shared, which a user's clone lacks"


def test_not_run_markers_give_reasons():
    for page in PAGES:
        blocks(page)  # raises on a reasonless marker


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_code_blocks_run(page: Path, tmp_path: Path):
    runnable = [b for b in blocks(page) if b.language in RUNNABLE and b.filename is None]
    if not runnable:
        pytest.skip("no runnable code blocks")
    run_page(page, tmp_path)
