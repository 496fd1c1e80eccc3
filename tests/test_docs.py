"""Every code block in README.md and docs/ runs, so the documentation cannot go stale.

- A ```python block runs. All python blocks of a page run in order in one interpreter
  (console blocks in between included), so later blocks see earlier names, as in a notebook.
  A failure points at the page and line (tracebacks name ``docs/page.md``, line N).
- A ```console block runs each ``$ command`` line in one bash per page, started in the
  page's folder (``cd`` and ``export`` carry over, as in a terminal), and expects exit
  status 0; lines without ``$ `` are example output and are not compared.
- Each page runs in a fresh temporary folder; ``corenet``, ``python`` and ``pytest`` are this
  interpreter's. The folder of MNIST's test files that the test suite uses, when present,
  is the data folder's ``mnist`` (``CORENET_DATA``), as after ``corenet data fetch mnist``.

Markers, HTML comments on the lines right before a block (invisible on the site):

- ``<!-- not-run: REASON -->``: the block is skipped; the reason is required. Commands that
  install or uninstall into the tested environment (pip, corenet install) must be not-run,
  unless the block expects them to fail (``exit:`` below).
- A block whose fence names a file, ```` ```python title="my_relu.py" ````, is that file: it
  is written to the page's folder instead of being run (any language: configs too), so later
  blocks can use it, as a reader who saves it would. ``<!-- append: NAME -->`` adds the block
  to the end of NAME instead (a file shown in parts).
- ``<!-- needs: torch onnxruntime -->``: the block runs only where these modules import
  (``mnist``: where MNIST files are in the data folder); elsewhere it is skipped.
- ``<!-- exit: 2 -->``: every command of the console block must exit with this status (an
  error example that stays true).

Blocks in any other language (yaml, json, text, toml) without a title are examples, not programs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import MNIST_FOLDER  # the test helpers' module (pytest's pythonpath)

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
#: ```python title="my_relu.py": the block is that file (the site shows the name above it)
TITLE = re.compile(r'title="([\w./-]+)"')
MARKER = re.compile(r"^<!--\s*([a-z-]+):\s*(.*?)\s*-->\s*$")
MARKERS = ("not-run", "append", "needs", "exit")
#: commands that change the Python environment the docs are tested in: such a block must be not-run
ENVIRONMENT_CHANGES = re.compile(r"\b(pip|corenet)\s+(-\S+\s+)*(install|uninstall)\b")
RUNNABLE = ("python", "console")
MNIST_FILES = MNIST_FOLDER  # MNIST's t10k files as the test suite finds them (conftest.py)
#: seconds one page may take (all of its blocks)
PAGE_TIMEOUT = 300
#: pages run at the same time (each in its own folder and processes); CORENET_DOCS_JOBS overrides
JOBS = int(os.environ.get("CORENET_DOCS_JOBS", "3"))
#: CORENET_DOCS_TIMES=1 prints each block's seconds (with -s), to find the slow ones
TIMES = bool(os.environ.get("CORENET_DOCS_TIMES"))

#: runs the page's python blocks in one namespace: reads a block's file name per stdin line, answers on fd 3
DRIVER = r"""
import importlib, json, os, sys, traceback, types
status = os.fdopen(int(sys.argv[1]), "w")
main = types.ModuleType("__main__")
sys.modules["__main__"] = main
sys.path.insert(0, os.getcwd())
for request in sys.stdin:
    page, line, path = json.loads(request)
    source = "\n" * (line) + open(path, encoding="utf-8").read()
    importlib.invalidate_caches()
    try:
        exec(compile(source, page, "exec"), main.__dict__)
        answer = {"ok": True}
    except BaseException:
        answer = {"ok": False, "error": traceback.format_exc(limit=-8)}
    sys.stdout.flush(); sys.stderr.flush()
    status.write(json.dumps(answer) + "\n"); status.flush()
"""


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    markers: dict[str, str] = field(default_factory=dict)
    #: the file the block is (its fence's title="..."), or None
    filename: str | None = None

    @property
    def skip_reason(self) -> str | None:
        return self.markers.get("not-run")


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` with their language and markers (checked: a reason, known keys)."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        markers: dict[str, str] = {}
        for before in reversed(text[: match.start()].rstrip("\n").split("\n")):
            marker = MARKER.match(before.strip())
            if marker is None:
                break
            key, value = marker.groups()
            where = f"{_page_id(page)}:{line}"
            if key not in MARKERS:
                raise ValueError(f"{where}: unknown marker {key!r}; markers: {', '.join(MARKERS)}")
            if not value:
                raise ValueError(f"{where}: the marker {key} needs a value (not-run: a reason)")
            markers[key] = value
        title = TITLE.search(match.group(2))
        found.append(Block(page, line, match.group(1).lower(), match.group(3), markers,
                           title.group(1) if title else None))
    return found


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def _data_folder(folder: Path) -> Path | None:
    """A corenet data folder holding MNIST's t10k files for the page, if the suite has them."""
    if not (MNIST_FILES / "t10k-images-idx3-ubyte.gz").is_file():
        return None
    data = folder / "_corenet_data"
    (data / "mnist").mkdir(parents=True)
    for source in MNIST_FILES.iterdir():
        (data / "mnist" / source.name).symlink_to(source)
    return data


def _environment(folder: Path, data: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORENET_") or k == "CORENET_DATA"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["HOME"] = env.get("HOME", str(folder))
    env["COLUMNS"] = "100"
    if data is not None:
        env["CORENET_DATA"] = str(data)
    return env


def _has_mnist(env: dict[str, str]) -> bool:
    code = ("from corenet.data.folder import dataset_folder; import sys; "
            "sys.exit(0 if any(dataset_folder('mnist').glob('t10k-images*')) else 1)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


def missing(needs: str, env: dict[str, str]) -> list[str]:
    """The requirements of a ``needs:`` marker that this environment lacks."""
    absent = []
    for name in needs.replace(",", " ").split():
        present = _has_mnist(env) if name == "mnist" else importlib.util.find_spec(name) is not None
        if not present:
            absent.append(name)
    return absent


class _Session:
    """A page's child process (``process``) with a status pipe (``status``) that ``close`` shuts down."""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.status.close()


class PythonSession(_Session):
    """One interpreter per page: each python block runs in the namespace the earlier ones left."""

    def __init__(self, folder: Path, env: dict[str, str], deadline: float) -> None:
        self.deadline = deadline
        self.log = folder / "_python_output.txt"
        read, write = os.pipe()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-c", DRIVER, str(write)], cwd=folder, env=env,
                                            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(write,), text=True)
        os.close(write)
        self.status = os.fdopen(read)
        self.count = 0

    def run(self, block: Block) -> None:
        self.count += 1
        path = self.log.parent / f"_block_{self.count}.py"
        path.write_text(block.code, encoding="utf-8")
        self.process.stdin.write(json.dumps([_page_id(block.page), block.line, str(path)]) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.status], [], [], max(0.0, self.deadline - time.monotonic()))
        answer = self.status.readline() if ready else ""
        if not answer:
            self.close()
            reason = "timed out" if not ready else f"exited with status {self.process.returncode}"
            pytest.fail(f"{_page_id(block.page)} line {block.line}: the python block {reason}:\n{self.output()}")
        result = json.loads(answer)
        if not result["ok"]:
            pytest.fail(f"{_page_id(block.page)} line {block.line}: the python block failed:\n{result['error']}"
                        f"\noutput:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]



class ShellSession(_Session):
    """One bash per page, like a terminal: ``cd`` and ``export`` carry over to later commands."""

    def __init__(self, folder: Path, env: dict[str, str], deadline: float) -> None:
        self.deadline = deadline
        self.log = folder / "_shell_output.txt"
        read, self.write = os.pipe()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=folder, env=env,
                                            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(self.write,), text=True)
        os.close(self.write)
        self.status = os.fdopen(read)

    def run(self, block: Block) -> None:
        expected = int(block.markers.get("exit", "0"))
        for command in (line[2:] for line in block.code.splitlines() if line.startswith("$ ")):
            if ENVIRONMENT_CHANGES.search(command) and expected == 0:  # a refused install changes nothing
                pytest.fail(f"{_page_id(block.page)} line {block.line}: `{command}` would change the environment "
                            f"the tests run in; mark the block <!-- not-run: REASON -->")
            start = self.log.stat().st_size
            self.process.stdin.write(f"{{ {command}\n}} < /dev/null\nprintf '%s\\n' \"$?\" >&{self.write}\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.status], [], [], max(0.0, self.deadline - time.monotonic()))
            answer = self.status.readline().strip() if ready else ""
            output = self.log.read_bytes()[start:].decode(errors="replace")[-3000:]
            where = f"{_page_id(block.page)} line {block.line}: `{command}`"
            if not ready:
                self.close()
                pytest.fail(f"{where} timed out (page limit {PAGE_TIMEOUT} s):\n{output}")
            if not answer:
                pytest.fail(f"{where} ended the shell:\n{output}")
            if int(answer) != expected:
                pytest.fail(f"{where} exited {answer}, expected {expected}:\n{output}")



def run_page(page: Path, folder: Path) -> list[str]:
    """Run the page's blocks in order in ``folder``; return the reasons of the blocks skipped."""
    env = _environment(folder, _data_folder(folder))
    deadline = time.monotonic() + PAGE_TIMEOUT
    skipped = []
    session = shell = None
    try:
        for block in blocks(page):
            if block.skip_reason is not None:
                if block.language in RUNNABLE:
                    skipped.append(f"line {block.line}: {block.skip_reason}")
                continue
            if block.filename is not None or "append" in block.markers:
                target = folder / block.markers.get("append", block.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "a" if "append" in block.markers else "w", encoding="utf-8") as stream:
                    stream.write(block.code)
                continue
            if block.language not in RUNNABLE:
                continue
            absent = missing(block.markers.get("needs", ""), env)
            if absent:
                skipped.append(f"line {block.line}: needs {', '.join(absent)}")
                continue
            started = time.monotonic()
            if block.language == "console":
                shell = shell or ShellSession(folder, env, deadline)
                shell.run(block)
            else:
                session = session or PythonSession(folder, env, deadline)
                session.run(block)
            if TIMES:
                print(f"{_page_id(page)}:{block.line} {block.language} {time.monotonic() - started:.1f} s")
    finally:
        for running in (session, shell):
            if running is not None:
                running.close()
    return skipped


def test_every_page_has_a_title_and_no_path_outside_the_repository():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert text.lstrip().startswith("# "), f"{_page_id(page)} has no '# Title' first line"
        assert "../shared" not in text, f"{_page_id(page)} points at ../shared, which a user's clone lacks"


def test_reference_pages_cover_every_hook_and_config_key():
    from corenet import config, hookspecs

    hooks = (REPO / "docs" / "reference" / "hooks.md").read_text(encoding="utf-8")
    for name in dir(hookspecs):
        if name.startswith("corenet_register_"):
            assert f"### `{name}`" in hooks, f"docs/reference/hooks.md has no section for the hook {name}"
    configs = (REPO / "docs" / "reference" / "configs.md").read_text(encoding="utf-8")
    for key in (*config.TOP_KEYS, *config.NETWORK_KEYS, *config.TRAINING_KEYS):
        assert f"| `{key}` |" in configs, f"docs/reference/configs.md has no row for the config key {key}"


def test_markers_are_known_and_give_reasons():
    for page in PAGES:
        blocks(page)  # raises on an unknown marker or one without a value


def test_markers_are_read(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text('# T\n\n<!-- not-run: slow -->\n```console\n$ false\n```\n\n<!-- append: a/b.txt -->\n'
                    '<!-- needs: json -->\n```text title="a/b.txt"\nhello\n```\n')
    first, second = blocks(page)
    assert first.skip_reason == "slow" and first.line == 4
    assert second.markers == {"append": "a/b.txt", "needs": "json"} and second.filename == "a/b.txt"
    page.write_text("# T\n\n<!-- not-run: -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="needs a value"):
        blocks(page)


def _timed(page: Path, folder: Path) -> float:
    start = time.monotonic()
    run_page(page, folder)
    return time.monotonic() - start


def _runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.language in RUNNABLE or b.filename or "append" in b.markers]


@pytest.fixture(scope="session")
def page_runs(request, tmp_path_factory) -> dict[Path, Future]:
    """Every selected page started at once on a pool of JOBS threads (each page's commands are
    subprocesses, so pages overlap); a test waits for its own page. Longest pages start first."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_code_blocks_run" and hasattr(item, "callspec")]
    pages = sorted((page for page in selected if _runnable(page)), key=lambda page: -len(_runnable(page)))
    pool = ThreadPoolExecutor(max(1, JOBS))
    runs = {page: pool.submit(_timed, page, tmp_path_factory.mktemp(page.stem)) for page in pages}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_code_blocks_run(page: Path, page_runs: dict[Path, Future]):
    if page not in page_runs:
        pytest.skip("no runnable code blocks")
    seconds = page_runs[page].result()
    print(f"{_page_id(page)}: {seconds:.1f} s")  # shown with -s, or -rP
