"""The catalog of bundled plugins agrees with the plugins in this checkout and what they register."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corenet import catalog
from corenet.config import available_configs
from corenet.plugins import get_registry

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FOLDERS = sorted(p.parent.name for p in ROOT.glob("plugins/*/pyproject.toml"))


def _distribution(folder: str) -> str:
    text = (ROOT / "plugins" / folder / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^name = "([^"]+)"', text, re.MULTILINE).group(1)


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS)
def test_every_plugin_folder_has_an_entry_with_its_distribution_name(folder):
    entry = catalog.by_short_name(folder)
    assert entry is not None, f"plugins/{folder} is missing from corenet/catalog.py"
    assert entry.folder == folder
    assert entry.distribution == _distribution(folder)
    assert catalog.checkout_folder(entry) == ROOT / "plugins" / folder


def test_lookups():
    dropout = catalog.by_short_name("dropout")
    assert catalog.provider_of("Dropout") is dropout
    assert catalog.by_short_name("corenet-dropout") is dropout
    assert catalog.by_short_name("reg_l1l2") is catalog.by_short_name("reg-l1l2") is catalog.provider_of(
        "L2_Regularizer")
    assert catalog.provider_of("Conv") is None  # the core's own names belong to no plugin
    assert catalog.provider_of("no-such-thing") is None and catalog.by_short_name("nothing") is None
    names = [name for entry in catalog.BUNDLED for name in entry.provides]
    assert len(names) == len(set(names)), "two entries claim one name"


def test_checkout_folder_is_none_outside_a_checkout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    ghost = catalog.BundledPlugin("ghost", "corenet-ghost", "no_such_folder_anywhere")
    assert catalog.checkout_folder(ghost) is None
    hint = catalog.install_hint("Dropout")
    assert hint is not None and hint.startswith("Dropout comes with the plugin corenet-dropout: corenet install ")
    source_checkout = (Path(catalog.__file__).resolve().parents[1] / "plugins" / "dropout").is_dir()
    if source_checkout:  # an editable install: the checkout next to the running corenet
        assert hint.endswith("plugins/dropout")
    else:  # an installed wheel (CI): the distribution, and the folder for those in a checkout
        assert hint.endswith("corenet install corenet-dropout (in a corenet checkout: corenet install "
                             "./plugins/dropout)")
    assert catalog.install_hint("Conv") is None


def test_entries_name_what_installed_plugins_provide():
    registry = get_registry()
    core = {name for plugin in registry.plugins if plugin.distribution == "corenet"
            for names in plugin.registered.values() for name in names}
    claimed = {name for entry in catalog.BUNDLED for name in entry.components}
    configs = available_configs()
    checked = 0
    for plugin in registry.plugins:
        entry = catalog.by_short_name(plugin.distribution)
        if plugin.status != "ok" or entry is None:
            continue
        registered = {name for kind, names in plugin.registered.items()
                      if kind not in ("test_groups", "commands", "inspections") for name in names}
        assert set(plugin.registered.get("commands", ())) <= set(entry.commands)
        assert set(plugin.registered.get("inspections", ())) <= set(entry.commands)  # `corenet inspect NAME`
        assert set(entry.components) <= registered, f"{entry.distribution} no longer registers some of its names"
        assert registered <= set(entry.components) | core | claimed, (
            f"{entry.distribution} registers names the catalog does not list: "
            f"{sorted(registered - set(entry.components) - core - claimed)}")
        assert set(entry.configs) <= set(configs)
        checked += 1
    assert checked >= 1


#: folders of the core package other helpers' work owns: the conformance suite names plugins to
#: skip without them, and the benchmark suite is leaving the core package
NOT_SCANNED = ("conformance", "bench")


def test_the_catalog_is_the_only_core_module_that_names_plugins():
    names = {entry.distribution for entry in catalog.BUNDLED} | {
        entry.distribution.replace("-", "_") for entry in catalog.BUNDLED}
    pattern = re.compile(r"plugins/|\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
    offenders = []
    for path in sorted((ROOT / "corenet").rglob("*")):
        relative = path.relative_to(ROOT / "corenet")
        if path.suffix not in (".py", ".yaml", ".yml", ".json", ".toml") or relative.parts[0] in NOT_SCANNED:
            continue
        if path.name == "catalog.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"corenet/{relative}:{number}: {line.strip()}")
    assert not offenders, "plugin names or checkout paths outside corenet/catalog.py:\n" + "\n".join(offenders)
