"""Fixtures for tests that need plugins installed into a throw-away site folder."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the real MNIST test-set files (t10k, IDX, gzip) the tests use: where CORENET_TEST_MNIST says, else the
#: course's shared data folder beside the repository; tests that need them skip when they are missing
MNIST_FOLDER = Path(os.environ.get("CORENET_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")
# pytest imports the test files with importlib (tests/ is no package): let them import helper modules beside them
sys.path.insert(0, str(Path(__file__).resolve().parent))


class FakeSite:
    """A throw-away venv whose site-packages holds hand-made distributions (dist-info + modules).

    The venv sees the running environment's packages (corenet and its plugins) through a
    ``.pth`` line, and importlib.metadata discovers the fake distributions' entry points
    exactly as for pip-installed ones; pip can uninstall them too.
    """

    def __init__(self, venv: Path) -> None:
        venv_builder = __import__("venv").EnvBuilder(with_pip=False)
        venv_builder.create(venv)
        self.python = venv / "bin" / "python"
        purelib = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        self.root = Path(purelib)
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        (self.root / "_corenet_parent_env.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n"
        )

    def add_distribution(self, name: str, entry_points: dict[str, str], modules: dict[str, str] | None = None,
                         packages: dict[str, Path] | None = None, version: str = "0.0.1") -> None:
        files: list[str] = []
        for module, source in (modules or {}).items():
            path = self.root / f"{module}.py"
            path.write_text(source)
            files.append(path.name)
        for package, folder in (packages or {}).items():
            shutil.copytree(folder, self.root / package, ignore=shutil.ignore_patterns("__pycache__"))
            files += [str(p.relative_to(self.root)) for p in (self.root / package).rglob("*.py")]
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[corenet]\n{lines}")
        (dist_info / "INSTALLER").write_text("pip\n")
        record = [*files, *(f"{dist_info.name}/{f}" for f in ("METADATA", "entry_points.txt", "INSTALLER"))]
        (dist_info / "RECORD").write_text("".join(f"{f},,\n" for f in record + [f"{dist_info.name}/RECORD"]))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("CORENET_LOAD_PLUGINS", "CORENET_IMPL", "PYTHONPATH")}
        env.update(extra)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        """Run ``python -m corenet ARGS`` in the throw-away venv."""
        return subprocess.run([str(self.python), "-m", "corenet", *args], capture_output=True, text=True,
                              env=env or self.env(), cwd=cwd or self.root.parent, timeout=300)


@pytest.fixture
def fake_site(tmp_path: Path) -> FakeSite:
    return FakeSite(tmp_path / "venv")


@pytest.fixture(autouse=True)
def empty_data_folder(tmp_path_factory, monkeypatch) -> Path:
    """CORENET_DATA points at an empty folder: no test reads or fills the user's data folder."""
    folder = tmp_path_factory.mktemp("corenet-data")
    monkeypatch.setenv("CORENET_DATA", str(folder))
    return folder
