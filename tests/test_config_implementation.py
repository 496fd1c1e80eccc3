"""A config's ``implementation`` key: it selects the tier the config's classes come from, is
validated like ``--impl``, loses to ``--impl``/``CORENET_IMPL``, leaves the process-wide selection as
it was, shows in ``corenet train``'s summary, and does not affect checkpoints."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from corenet.cli import app
from corenet.config import ConfigError, build_data, build_network, load_config, parse_config
from corenet.network import load
from corenet.plugins import IMPL_ENV, get_registry
from corenet.training import train

CONFIG = """
implementation: {implementation}
data: {{name: digits}}
network:
  optimizer: {{name: Adam, args: {{learning_rate: 1.0e-3}}}}
  layers:
    - {{name: Conv, args: {{stride_shape: [1, 1], convolution_shape: [1, 3, 3], num_kernels: 2}}}}
    - ReLU
    - Flatten
    - {{name: FullyConnected, args: {{input_size: 128, output_size: 10}}}}
    - SoftMax
training: {{iterations: 3, batch_size: 16}}
"""


def write(tmp_path, implementation: str, name: str = "tiers.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(CONFIG.format(implementation=implementation)))
    return path


def state(registry) -> tuple:
    """Everything the registry's selection consists of."""
    return (registry.preference, dict(registry.selected), dict(registry.layers), dict(registry.optimizers),
            dict(registry.ties), list(registry.unmatched_preferences))


@pytest.fixture
def registry(monkeypatch):
    """The process-wide registry without a command-line preference, restored afterwards."""
    monkeypatch.delenv(IMPL_ENV, raising=False)
    registry = get_registry()
    with registry.preferring(registry.preference):
        yield registry


@pytest.fixture
def fast(registry):
    """The registry when corenet-fast provides Conv and Adam (skips otherwise)."""
    labels = {impl.label for impl in registry.implementations_of("layers", "Conv")}
    if "fast" not in labels:
        pytest.skip("corenet-fast is not installed")
    return registry


def tiers(net) -> dict[str, str]:
    """Registry name -> implementation label of the network's Conv and its optimizer."""
    registry = get_registry()
    conv = next(layer for layer in net.layers if registry.name_of(layer) == "Conv")
    return {"Conv": registry.registration_of(conv, "layers").label,
            "Adam": registry.registration_of(net.optimizer, "optimizers").label}


# -- selecting --------------------------------------------------------------------------------------------
def test_key_reference_builds_reference_classes_while_fast_is_selected(fast, tmp_path):
    fast.prefer(None)  # priorities: the fast tier is selected
    before = state(fast)
    assert fast.layers["Conv"].__module__.startswith("corenet_fast")
    config = load_config(write(tmp_path, "reference"))
    assert config.implementation == "reference"
    net = build_network(config)
    assert tiers(net) == {"Conv": "reference", "Adam": "reference"}
    assert type(net.layers[0]).__module__ == "corenet.layers.conv"
    assert type(net.optimizer).__module__ == "corenet.optimizers"
    assert state(fast) == before  # nothing leaked


def test_key_fast_builds_fast_classes_while_reference_is_selected(fast, tmp_path):
    fast.prefer("reference")
    net = build_network(load_config(write(tmp_path, "fast")))
    assert tiers(net) == {"Conv": "fast", "Adam": "fast"}
    assert fast.layers["Conv"].__module__ == "corenet.layers.conv"


def test_per_name_items_as_with_impl(fast, tmp_path):
    fast.prefer(None)
    net = build_network(load_config(write(tmp_path, '"reference, Conv=fast"')))
    assert tiers(net) == {"Conv": "fast", "Adam": "reference"}


def test_a_model_builds_under_the_key(fast):
    pytest.importorskip("corenet_lenet")
    fast.prefer(None)
    raw = {"implementation": "reference", "data": {"name": "digits"}, "network": {"model": "LeNet"},
           "training": {"iterations": 1}}
    net = build_network(parse_config(raw))
    assert tiers(net) == {"Conv": "reference", "Adam": "reference"}
    assert fast.layers["Conv"].__module__.startswith("corenet_fast")


def test_without_the_key_the_selection_is_used(fast, tmp_path):
    fast.prefer(None)
    text = write(tmp_path, "reference").read_text().replace("implementation: reference\n", "")
    config = parse_config(yaml.safe_load(text))
    assert config.implementation is None
    assert tiers(build_network(config)) == {"Conv": "fast", "Adam": "fast"}


# -- restoring the selection ------------------------------------------------------------------------------
def test_selection_is_restored_after_reading_building_and_failing(registry, tmp_path):
    registry.prefer("Conv=reference")
    before = state(registry)
    config = load_config(write(tmp_path, "reference" if registry.unmatched("fast") else "fast"))
    build_data(config)
    build_network(config)
    assert state(registry) == before
    broken = write(tmp_path, "reference").read_text().replace("- ReLU\n", "- ReLUU\n")
    (tmp_path / "broken.yaml").write_text(broken)
    with pytest.raises(ConfigError, match="ReLUU"):
        load_config(tmp_path / "broken.yaml")
    assert state(registry) == before


def test_preferring_restores_the_tables_in_place_even_on_an_exception(registry):
    layers = registry.layers
    before = state(registry)
    with pytest.raises(RuntimeError), registry.preferring("reference"):
        assert registry.preference == "reference"
        raise RuntimeError("inside")
    assert registry.layers is layers and state(registry) == before


# -- validation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, fragments", [
    ("refrence", ["no installed implementation is labelled 'refrence'", "did you mean 'reference'?",
                  "labels:"]),
    ("Conv=refrence", ["Conv has no implementation 'refrence'", "did you mean 'reference'?"]),
    ("Cnv=reference", ["nothing installed is named 'Cnv'", "did you mean 'Conv'?"]),
])
def test_unknown_label_is_a_one_line_error_naming_the_key(registry, tmp_path, value, fragments):
    path = write(tmp_path, value)
    before = state(registry)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: implementation: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert state(registry) == before


@pytest.mark.parametrize("value, shown", [("[reference]", "['reference'] (a list)"), ("1", "1 (an integer)"),
                                          ("true", "True (a boolean)"), ("{Conv: fast}", "(a mapping)")])
def test_a_value_that_is_not_a_string_is_refused(registry, tmp_path, value, shown):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, value))
    message = str(info.value)
    assert "implementation: expected a string such as 'reference'" in message and shown in message


def test_an_empty_value_is_refused(registry, tmp_path):
    with pytest.raises(ConfigError, match="implementation: is empty"):
        load_config(write(tmp_path, '" , "'))


def test_impl_reports_an_unknown_label_with_the_same_words(registry, monkeypatch):
    monkeypatch.setenv(IMPL_ENV, "reference")  # --impl sets it; monkeypatch puts it back
    result = CliRunner().invoke(app, ["--impl", "refrence", "list-layers", "--json"])
    assert result.exit_code == 0, result.output
    assert f"--impl refrence: {registry.describe_unmatched(['refrence'])}" in result.stderr
    assert "did you mean 'reference'?" in result.stderr


# -- precedence and visibility ----------------------------------------------------------------------------
def test_corenet_impl_in_the_environment_wins_over_the_key(fast, tmp_path, monkeypatch):
    config = load_config(write(tmp_path, "reference"))
    monkeypatch.setenv(IMPL_ENV, "fast")
    assert tiers(build_network(config)) == {"Conv": "fast", "Adam": "fast"}
    monkeypatch.delenv(IMPL_ENV)
    assert tiers(build_network(config)) == {"Conv": "reference", "Adam": "reference"}


def summary_row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[1:2] == [name])


def test_train_shows_the_keys_implementation(fast, tmp_path):
    fast.prefer(None)
    result = CliRunner().invoke(app, ["train", str(write(tmp_path, "reference")), "--no-checkpoint"])
    assert result.exit_code == 0, result.output
    assert summary_row(result.stdout, "Conv")[2] == "reference"
    assert "optimizer Adam(learning_rate=0.001) (reference)" in result.stdout
    assert "overrides" not in result.stderr


def test_impl_on_the_command_line_wins_over_the_key_and_says_so(fast, tmp_path, monkeypatch):
    monkeypatch.setenv(IMPL_ENV, "reference")  # --impl sets it; monkeypatch puts it back
    result = CliRunner().invoke(app, ["--impl", "fast", "train", str(write(tmp_path, "reference")),
                                      "--no-checkpoint"])
    assert result.exit_code == 0, result.output
    assert summary_row(result.stdout, "Conv")[2] == "fast"
    assert "optimizer Adam(learning_rate=0.001) (fast)" in result.stdout
    assert "--impl/CORENET_IMPL 'fast' overrides the config's implementation: 'reference'" in result.stderr


def test_train_help_documents_the_key_and_its_precedence():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "implementation:" in result.stdout and "overrides it" in result.stdout


# -- checkpoints ------------------------------------------------------------------------------------------
def test_a_network_trained_with_the_key_saves_and_loads_with_either_tier(registry, tmp_path):
    path = tmp_path / "tiers.ckpt"
    run = train(load_config(write(tmp_path, "reference")), checkpoint=path)
    assert run.completed == 3 and path.is_file()
    inputs = run.data_layer.get_test_set()[0][:20]
    expected = run.network.test(inputs)
    labels = {impl.label for impl in registry.implementations_of("layers", "Conv")}
    for label in sorted(labels):
        with registry.preferring(label):
            loaded = load(path, None)
        assert registry.registration_of(loaded.layers[0], "layers").label == label
        np.testing.assert_allclose(loaded.test(inputs), expected, rtol=0, atol=1e-10)
