"""The plugin system: discovery, isolation of broken plugins, duplicates, CLI listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corenet.errors import RegistryError
from corenet.plugins import get_registry, load_plugins

REPO = Path(__file__).resolve().parents[1]
CORE_LAYERS = {"FullyConnected", "ReLU", "SoftMax", "Flatten", "Conv", "Pooling"}


def test_core_registers_through_hooks():
    registry = get_registry()
    assert CORE_LAYERS <= set(registry.layers)
    assert {"Sgd", "SgdWithMomentum", "Adam"} <= set(registry.optimizers)
    assert {"Constant", "UniformRandom", "Xavier", "He"} <= set(registry.initializers)
    assert "CrossEntropyLoss" in registry.losses
    assert {"iris", "digits", "mnist"} <= set(registry.datasets)
    assert registry.provider("layers", "Conv").distribution == "corenet"
    assert "TestConv" in registry.test_groups


def test_unknown_name_lists_available():
    with pytest.raises(RegistryError) as info:
        get_registry().get("optimizers", "Adagrad")
    message = str(info.value)
    assert "Adagrad" in message and "Adam" in message and "SgdWithMomentum" in message


def test_empty_load_list_loads_only_core(monkeypatch):
    monkeypatch.setenv("CORENET_LOAD_PLUGINS", "")
    _, registry = load_plugins()
    assert [p.name for p in registry.plugins] == ["corenet"]
    assert set(registry.layers) == CORE_LAYERS


def test_example_plugin_installs_and_loads(fake_site):
    example = REPO / "examples" / "plugin-leakyrelu"
    fake_site.add_distribution("corenet-leakyrelu", {"leakyrelu": "corenet_leakyrelu"},
                               packages={"corenet_leakyrelu": example / "corenet_leakyrelu"})
    result = fake_site.run("list-layers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["LeakyReLU"]["distribution"] == "corenet-leakyrelu"
    assert rows["LeakyReLU"]["trainable"] is False
    assert rows["Conv"]["trainable"] is True
    tests = fake_site.run("run-tests", "--group", "TestLeakyReLU", "--bonus", "--", "-q")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "bonus points: 1 / 1" in tests.stdout


BROKEN = "raise RuntimeError('boom at import')\n"
GOOD = """
from corenet import hookimpl
from corenet.base import BaseLayer

class Identity(BaseLayer):
    def forward(self, x):
        return x
    def backward(self, e):
        return e

@hookimpl
def corenet_register_layers(register):
    register(Identity)
"""
DUPLICATE = """
from corenet import hookimpl
from corenet.base import BaseLayer

class Identity(BaseLayer):
    pass

@hookimpl
def corenet_register_layers(register):
    register(Identity)
"""
NOT_A_CLASS = """
from corenet import hookimpl

@hookimpl
def corenet_register_layers(register):
    register(lambda x: x, "Lambda")
"""
RAISES_IN_HOOK = """
from corenet import hookimpl

@hookimpl
def corenet_register_optimizers(register):
    raise ValueError('cannot register today')
"""


def _plugins_json(fake_site):
    result = fake_site.run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}, result.stderr


def test_broken_plugin_is_isolated_and_reported(fake_site):
    fake_site.add_distribution("corenet-broken", {"broken": "corenet_broken"}, {"corenet_broken": BROKEN})
    fake_site.add_distribution("corenet-good", {"good": "corenet_good"}, {"corenet_good": GOOD})
    plugins, stderr = _plugins_json(fake_site)
    assert plugins["broken"]["status"] == "failed"
    assert "boom at import" in plugins["broken"]["error"]
    assert "broken" in stderr and "boom at import" in stderr
    assert plugins["good"]["status"] == "ok"
    layers = fake_site.run("list-layers", "--json")
    assert layers.returncode == 0
    assert "Identity" in {row["name"] for row in json.loads(layers.stdout)}


def test_uninstall_works_while_the_plugin_is_broken(fake_site):
    fake_site.add_distribution("corenet-broken", {"broken": "corenet_broken"}, {"corenet_broken": BROKEN})
    result = fake_site.run("uninstall", "corenet-broken")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (fake_site.root / "corenet_broken.py").exists()
    plugins, stderr = _plugins_json(fake_site)
    assert "broken" not in plugins and "boom" not in stderr


def _layers_json(fake_site, *options: str):
    result = fake_site.run(*options, "list-layers", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_one_name_two_plugins_tie_is_settled_alphabetically_and_reported(fake_site):
    fake_site.add_distribution("corenet-bbb", {"bbb": "corenet_bbb"}, {"corenet_bbb": DUPLICATE})
    fake_site.add_distribution("corenet-aaa", {"aaa": "corenet_aaa"}, {"corenet_aaa": GOOD})
    plugins, _ = _plugins_json(fake_site)
    assert plugins["aaa"]["status"] == plugins["bbb"]["status"] == "ok"
    rows, stderr = _layers_json(fake_site)
    identity = [row for row in rows if row["name"] == "Identity"]
    assert [(r["distribution"], r["selected"], r["tie"]) for r in identity] == [
        ("corenet-aaa", True, True), ("corenet-bbb", False, True)]
    assert "Identity" in stderr and "corenet-bbb" in stderr and "--impl Identity=" in stderr
    rows, stderr = _layers_json(fake_site, "--impl", "Identity=corenet-bbb")
    chosen = [r for r in rows if r["name"] == "Identity" and r["selected"]]
    assert chosen[0]["distribution"] == "corenet-bbb" and not chosen[0]["tie"]
    assert "share priority" not in stderr


def test_a_plugin_implementation_beats_the_bundled_reference(fake_site):
    """A third-party RNN (default priority) is selected over corenet-recurrent's reference RNN."""
    source = GOOD.replace("class Identity", "class RNN").replace("register(Identity)", "register(RNN)")
    fake_site.add_distribution("my-rnn", {"myrnn": "my_rnn"}, {"my_rnn": source})
    rows, _ = _layers_json(fake_site)
    rnn = [r for r in rows if r["name"] == "RNN"]
    if len(rnn) < 2:
        pytest.skip("corenet-recurrent is not installed")
    assert rnn[0]["selected"] and rnn[0]["distribution"] == "my-rnn" and rnn[0]["priority"] == 50
    assert rnn[-1]["implementation"] == "reference" and rnn[-1]["priority"] == 0  # after corenet-fast's, if installed
    rows, _ = _layers_json(fake_site, "--impl", "reference")
    assert [r["distribution"] for r in rows if r["name"] == "RNN" and r["selected"]] == ["corenet-recurrent"]
    result = fake_site.run("list-layers", "--json", env=fake_site.env(CORENET_IMPL="RNN=reference"))
    assert [r["distribution"] for r in json.loads(result.stdout) if r["name"] == "RNN" and r["selected"]] == [
        "corenet-recurrent"]


def test_same_name_twice_in_one_plugin_is_refused(fake_site):
    twice = GOOD.replace("register(Identity)", "register(Identity)\n    register(Identity)")
    fake_site.add_distribution("corenet-twice", {"twice": "corenet_twice"}, {"corenet_twice": twice})
    plugins, _ = _plugins_json(fake_site)
    assert plugins["twice"]["status"] == "failed"
    assert "Identity" in plugins["twice"]["error"] and "twice" in plugins["twice"]["error"]


@pytest.mark.parametrize("source, fragment", [(NOT_A_CLASS, "must be registered as classes"),
                                              (RAISES_IN_HOOK, "cannot register today")])
def test_faulty_registration_is_isolated(fake_site, source, fragment):
    fake_site.add_distribution("corenet-faulty", {"faulty": "corenet_faulty"}, {"corenet_faulty": source})
    plugins, _ = _plugins_json(fake_site)
    assert plugins["faulty"]["status"] == "failed"
    assert fragment in plugins["faulty"]["error"]
    assert plugins["corenet"]["status"] == "ok"


def test_load_list_selects_plugins(fake_site):
    fake_site.add_distribution("corenet-good", {"good": "corenet_good"}, {"corenet_good": GOOD})
    result = fake_site.run("list-layers", "--json", env=fake_site.env(CORENET_LOAD_PLUGINS=""))
    assert "Identity" not in {row["name"] for row in json.loads(result.stdout)}
    result = fake_site.run("list-layers", "--json", env=fake_site.env(CORENET_LOAD_PLUGINS="good"))
    assert "Identity" in {row["name"] for row in json.loads(result.stdout)}


def test_run_tests_unknown_group_lists_known(fake_site):
    result = fake_site.run("run-tests", "--group", "TestNope")
    assert result.returncode == 2
    assert "TestNope" in result.stderr and "TestConv" in result.stderr


# -- plugins cannot take the CLI down (issue 13, part 5) -------------------------------------------
COMMANDS = """
import typer
from corenet import hookimpl

def hello(name: str = typer.Option("world", help="Whom to greet.")) -> None:
    '''Say hello.'''
    typer.echo(f"hello {name} from a plugin")

@hookimpl
def corenet_register_commands(app):
    app.command("hello")(hello)
"""
SHADOWING = """
import typer
from corenet import hookimpl

def fake_train() -> None:
    typer.echo("hijacked train")

def fake_plugins() -> None:
    typer.echo("hijacked plugins")

def extra() -> None:
    '''A command of its own.'''
    typer.echo("extra ran")

@hookimpl
def corenet_register_commands(app):
    app.command("train")(fake_train)
    app.command()(fake_plugins)           # named from the function: fake-plugins, allowed
    app.command("plugins")(fake_plugins)
    app.command("extra")(extra)
    sub = typer.Typer()
    sub.command("x")(extra)
    app.add_typer(sub, name="uninstall")  # a group may not take a built-in name either
    app.callback()(extra)
"""
HOOK_RAISES = """
from corenet import hookimpl

class Mine(BaseException):
    pass

@hookimpl
def corenet_register_commands(app):
    app.command("half")(lambda: None)
    raise {exception}
"""
BROKEN_SIGNATURE = """
from typing import Annotated

import typer
from corenet import hookimpl

def odd(value: Annotated[int, typer.Option("--value")] = typer.Option(1)) -> None:  # typer refuses both styles
    pass

def fine() -> None:
    '''Still added.'''
    print("fine ran")

@hookimpl
def corenet_register_commands(app):
    app.command("odd")(odd)
    app.command("fine")(fine)
"""


def _by_distribution(fake_site) -> tuple[dict, str]:
    result = fake_site.run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {r["distribution"]: r for r in json.loads(result.stdout)}, result.stderr


def _cli_survives(fake_site) -> None:
    """--help, plugins and uninstall work and show the built-in commands."""
    result = fake_site.run("--help")
    assert result.returncode == 0, result.stderr
    for command in ("train", "plugins", "uninstall", "list-layers"):
        assert command in result.stdout
    assert fake_site.run("plugins").returncode == 0
    result = fake_site.run("uninstall", "--help")
    assert result.returncode == 0 and "Distributions to remove" in result.stdout


def test_a_shared_entry_point_name_does_not_drop_a_healthy_plugins_commands(fake_site):
    # both distributions call their entry point "shared"; the broken one must not hide the other's command
    fake_site.add_distribution("corenet-shared-broken", {"shared": "shared_broken"}, {"shared_broken": BROKEN})
    fake_site.add_distribution("corenet-shared-good", {"shared": "shared_good"}, {"shared_good": COMMANDS})
    result = fake_site.run("hello", "--name", "you")
    assert result.returncode == 0, result.stderr
    assert "hello you from a plugin" in result.stdout
    plugins, _ = _by_distribution(fake_site)
    assert plugins["corenet-shared-broken"]["status"] == "failed"
    assert plugins["corenet-shared-good"]["status"] == "ok"
    assert plugins["corenet-shared-good"]["registered"]["commands"] == ["hello"]


def test_a_plugin_cannot_replace_or_shadow_a_builtin_command(fake_site):
    fake_site.add_distribution("corenet-shadow", {"shadow": "corenet_shadow"}, {"corenet_shadow": SHADOWING})
    plugins, stderr = _by_distribution(fake_site)
    problems = plugins["corenet-shadow"]["problems"]
    for name in ("train", "plugins", "uninstall"):
        assert any(f"command {name!r} refused: it is a built-in command" in p for p in problems), problems
        assert f"command {name!r} refused" in stderr
    assert any("callback" in p for p in problems)
    assert sorted(plugins["corenet-shadow"]["registered"]["commands"]) == ["extra", "fake-plugins"]
    result = fake_site.run("train", "--help")
    assert result.returncode == 0 and "hijacked" not in result.stdout and "YAML" in result.stdout
    assert "extra ran" in fake_site.run("extra").stdout
    _cli_survives(fake_site)


def test_a_second_plugin_cannot_take_a_plugin_command_name(fake_site):
    fake_site.add_distribution("corenet-aaa", {"aaa": "corenet_aaa"}, {"corenet_aaa": COMMANDS})
    fake_site.add_distribution("corenet-bbb", {"bbb": "corenet_bbb"},
                               {"corenet_bbb": COMMANDS.replace("from a plugin", "from bbb")})
    plugins, _ = _by_distribution(fake_site)
    refused = [d for d in ("corenet-aaa", "corenet-bbb") if plugins[d]["problems"]]
    assert len(refused) == 1
    other = "corenet-bbb" if refused == ["corenet-aaa"] else "corenet-aaa"
    assert f"already a command of {other}" in plugins[refused[0]]["problems"][0]


@pytest.mark.parametrize("exception", ["SystemExit(3)", "KeyboardInterrupt()", "Mine('odd')",
                                       "RuntimeError('no commands today')"])
def test_a_commands_hook_raising_anything_is_isolated(fake_site, exception):
    source = HOOK_RAISES.format(exception=exception)
    fake_site.add_distribution("corenet-raiser", {"raiser": "corenet_raiser"}, {"corenet_raiser": source})
    plugins, stderr = _by_distribution(fake_site)
    name = exception.split("(")[0]
    assert any("corenet_register_commands raised" in p and name in p for p in plugins["corenet-raiser"]["problems"])
    assert "its commands were not added" in stderr
    assert "commands" not in plugins["corenet-raiser"]["registered"]  # nothing half-added
    assert "half" not in fake_site.run("--help").stdout
    _cli_survives(fake_site)


@pytest.mark.parametrize("exception", ["SystemExit(0)", "KeyboardInterrupt()"])
def test_a_plugin_raising_at_import_leaves_help_plugins_and_uninstall_working(fake_site, exception):
    fake_site.add_distribution("corenet-exits", {"exits": "corenet_exits"},
                               {"corenet_exits": f"raise {exception}\n"})
    plugins, _ = _by_distribution(fake_site)
    assert plugins["corenet-exits"]["status"] == "failed"
    assert exception.split("(")[0] in plugins["corenet-exits"]["error"]
    _cli_survives(fake_site)
    result = fake_site.run("uninstall", "corenet-exits")
    assert result.returncode == 0, result.stderr
    assert not (fake_site.root / "corenet_exits.py").exists()


def test_a_command_typer_cannot_build_is_refused_alone(fake_site):
    fake_site.add_distribution("corenet-odd", {"odd": "corenet_odd"}, {"corenet_odd": BROKEN_SIGNATURE})
    plugins, _ = _by_distribution(fake_site)
    assert any("command 'odd' refused: typer cannot build it" in p for p in plugins["corenet-odd"]["problems"])
    assert plugins["corenet-odd"]["registered"]["commands"] == ["fine"]
    assert "fine ran" in fake_site.run("fine").stdout
    _cli_survives(fake_site)


def test_invoked_command_skips_option_values():
    from corenet.plugin_commands import invoked_command

    assert invoked_command(["--impl", "reference", "uninstall", "x"]) == "uninstall"
    assert invoked_command(["-h"]) is None and invoked_command(["train", "digits"]) == "train"
