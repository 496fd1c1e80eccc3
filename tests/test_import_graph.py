"""The import graph of corenet and its bundled plugins has no cycles, and every module imports alone.

Every module is parsed with ``ast``; its imports of other corenet/plugin modules are edges,
split into *module-level* ones (run when the module is imported, including class bodies and
top-level ``if``/``try`` blocks, but not ``if TYPE_CHECKING:``) and *function-level* ones
(run when a function is called; ``importlib.import_module("literal")`` counts too).

- module-level imports: no cycle at all;
- all imports together: no cycle except the ones in :data:`ALLOWED_CYCLES`, each with its
  reason; an entry that no longer is a cycle must be removed (the list only shrinks);
- each module, imported first in a fresh interpreter (state of corenet: nothing loaded), works.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: strongly connected groups of modules allowed to import each other, each inside functions only
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def _package_roots() -> list[Path]:
    """Folders whose files are modules named from that folder: the checkout root and each plugin."""
    return [ROOT, *sorted(path.parent for path in ROOT.glob("plugins/*/pyproject.toml"))]


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for corenet and every bundled plugin package."""
    found: dict[str, Path] = {}
    for root in _package_roots():
        packages = [ROOT / "corenet"] if root == ROOT else sorted(root.glob("corenet_*/__init__.py"))
        for package in packages:
            package = package if package.is_dir() else package.parent
            for path in sorted(package.rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, is_package: bool, node: ast.AST, constants: dict[str, str]) -> list[str]:
    """The internal modules an import statement (or an ``import_module`` call with a literal or a
    module-level string constant) loads."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(module, is_package, node)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    elif isinstance(node, ast.Call):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        argument = node.args[0] if called == "import_module" and node.args else None
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            names = [argument.value]
        elif isinstance(argument, ast.Name) and argument.id in constants:
            names = [constants[argument.id]]
    found = []
    for name in names:
        while name and name not in MODULES:  # `import corenet.layers.conv.Conv`-like: the nearest module
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append(name)
    return found


def _imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(module-level, function-level) internal imports of one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    top: set[str] = set()
    inner: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            (inner if nested else top).update(_targets(module, is_package, child, constants))
            visit(child, nested)

    visit(tree, False)
    return top, inner - top


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _describe(cycle: frozenset[str], edges: dict[str, set[str]]) -> str:
    links = sorted(f"{a} -> {b}" for a in cycle for b in edges[a] if b in cycle)
    return "{" + ", ".join(sorted(cycle)) + "}: " + "; ".join(links)


def test_the_graph_covers_the_core_and_every_plugin():
    assert {"corenet", "corenet.plugins", "corenet.builtin", "corenet.config", "corenet.layers.conv"} <= set(MODULES)
    plugins = {name.split(".")[0] for name in MODULES if name.startswith("corenet_")}
    folders = {path.parent.name for path in ROOT.glob("plugins/*/pyproject.toml")}
    assert len(plugins) == len(folders) > 0
    assert "corenet.hookspecs" in GRAPH["corenet"][0]  # `from corenet.hookspecs import hookimpl`
    assert "corenet.builtin" in GRAPH["corenet.plugins"][1]  # import_module(BUILTIN_PLUGIN) inside a function


def test_no_cycle_among_module_level_imports():
    cycles = _cycles({module: top for module, (top, _) in GRAPH.items()})
    assert not cycles, "module-level import cycles:\n" + "\n".join(
        _describe(c, {m: t for m, (t, _) in GRAPH.items()}) for c in cycles)


def test_no_cycle_at_all_except_the_allowed_ones():
    edges = {module: top | inner for module, (top, inner) in GRAPH.items()}
    cycles = _cycles(edges)
    unexpected = [c for c in cycles if c not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles (function-level imports included):\n" + "\n".join(
        _describe(c, edges) for c in unexpected)
    stale = [sorted(c) for c in ALLOWED_CYCLES if c not in cycles]
    assert not stale, f"no longer a cycle, remove from ALLOWED_CYCLES: {stale}"


def test_cycle_finder_on_a_known_graph():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [frozenset({"a", "b", "c"})]
    assert _cycles({"a": {"b"}, "b": set()}) == []


#: corenet_fast.numba's kernel modules (its KERNELS): they compile with numba when imported
NUMBA_KERNEL_MODULES = {"batchnorm", "lstm", "pooling", "adam"}


def test_the_kernel_module_list_is_corenet_fasts():
    compiled = pytest.importorskip("corenet_fast.numba")  # importing it does not import numba
    assert set(compiled.KERNELS) == NUMBA_KERNEL_MODULES


# Imports each module in a child forked from a parent that has loaded only third-party packages,
# so every module is the first corenet module its interpreter imports (fork keeps it fast).
_IMPORT_EACH = r"""
import importlib, json, os, sys, traceback
for heavy in ("numpy", "pluggy", "yaml", "typer", "rich", "pytest", "hypothesis", "torch"):
    try:
        importlib.import_module(heavy)
    except ImportError:
        pass
assert not any(name == "corenet" or name.startswith(("corenet.", "corenet_")) for name in sys.modules)
failures = {}
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            importlib.import_module(name)
        except BaseException as exc:
            if type(exc).__name__ != "Skipped":  # pytest.importorskip at module level is not a failure
                os.write(write, traceback.format_exc().encode()[-3000:])
                code = 1
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if status:
        failures[name] = b"".join(chunks).decode(errors="replace") or f"exit status {status}"
print(json.dumps(failures))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_alone():
    names = sorted(name for name in MODULES if not name.endswith(".__main__"))  # __main__ runs the CLI
    if importlib.util.find_spec("numba") is None:  # corenet-fast's kernel modules need its optional numba extra
        names = [name for name in names if name.split(".")[-1] not in NUMBA_KERNEL_MODULES
                 or not name.startswith("corenet_fast.numba.")]
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True, text=True,
                            timeout=600, cwd=ROOT.parent)
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "\n\n".join(f"python -c 'import {name}' fails:\n{error}" for name, error in
                                     failures.items())
