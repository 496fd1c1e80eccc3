"""The files of a new plugin project (``corenet new-plugin``): names, checks and templates.

``plan_plugin("swish")`` derives every name (distribution ``corenet-swish``, package
``corenet_swish``, layer ``Swish`` in ``corenet_swish/swish.py``, conformance group
``TestSwish``) and refuses what would not work; ``render(plan)`` returns the files.
The layer skeleton passes the generic layer contract (:mod:`corenet.checking.generic`) as
generated: the identity, or (``trainable``) a per-feature scale and shift.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

_PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_LAYER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
FEATURES = 16  # the example config puts the layer after a FullyConnected with 16 outputs


class TemplateError(ValueError):
    """A name or a target folder that a plugin project cannot have."""


@dataclass(frozen=True)
class PluginPlan:
    """Every name of a new plugin project and where it goes."""

    distribution: str
    package: str
    entry_point: str
    layer: str
    module: str
    group: str
    trainable: bool
    folder: Path


def snake_case(name: str) -> str:
    """``LeakyReLU`` -> ``leaky_relu``, ``LSTM2`` -> ``lstm2``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return spaced.lower()


def plan_plugin(name: str, layer: str | None = None, *, trainable: bool = False, folder: Path | None = None,
                registry=None, force: bool = False) -> PluginPlan:
    """The names of plugin project ``name`` (``swish``, ``my-scale``, ``corenet-swish``); TemplateError
    for an invalid name, a layer name already registered (unless ``force``), a package name already
    importable, or a target folder that exists and is not empty."""
    if not _PROJECT_NAME.fullmatch(name):
        raise TemplateError(f"plugin name {name!r}: use letters, digits, '-' and '_', starting with a letter "
                            f"(e.g. swish or my-scale)")
    base = re.sub(r"^corenet[-_]", "", name, flags=re.IGNORECASE).lower().replace("_", "-")
    if not base:
        raise TemplateError(f"plugin name {name!r}: add what the plugin is about, e.g. corenet-swish")
    distribution = f"corenet-{base}"
    package = distribution.replace("-", "_")
    layer = layer or "".join(part[:1].upper() + part[1:] for part in base.split("-"))
    if not _LAYER_NAME.fullmatch(layer) or keyword.iskeyword(layer):
        raise TemplateError(f"--layer {layer}: a layer name must be a Python class name (letters, digits and '_', "
                            f"starting with a letter), e.g. Swish")
    module = snake_case(layer)
    if module in ("conformance", "__init__") or keyword.iskeyword(module):
        raise TemplateError(f"--layer {layer}: its module would be called {module!r}; choose another name")
    spec = importlib.util.find_spec(package)
    if spec is not None:
        where = spec.origin or ", ".join(spec.submodule_search_locations or [])
        raise TemplateError(f"a package named {package} is already importable ({where}); pip uninstall "
                            f"{distribution}, or choose another plugin name")
    group = f"Test{layer}"
    if registry is not None:
        taken = [kind for kind in ("layers", "optimizers", "initializers", "regularizers", "losses", "models")
                 if (kind, layer) in registry.implementations]
        if taken and not force:
            providers = ", ".join(f"{impl.label} ({impl.distribution})"
                                  for impl in registry.implementations_of(taken[0], layer))
            raise TemplateError(
                f"{layer} is already a registered {taken[0][:-1]} ({providers}). Installed, your plugin's {layer} "
                f"would be selected instead of it everywhere (plugins rank above corenet's own). Choose another "
                f"--layer, or pass --force to write a replacement for {layer} on purpose")
        if group in registry.test_groups:
            group = f"Test{layer}Plugin"
    folder = Path(folder) if folder is not None else Path(distribution)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise TemplateError(f"{folder} already exists and is not an empty folder; choose another --to")
    return PluginPlan(distribution, package, base.replace("-", "_"), layer, module, group, trainable, folder)


def render(plan: PluginPlan, corenet_version: str) -> dict[str, str]:
    """Relative path -> text of every file of the project."""
    values = {
        "distribution": plan.distribution, "package": plan.package, "entry_point": plan.entry_point,
        "layer": plan.layer, "module": plan.module, "group": plan.group, "features": FEATURES,
        "corenet_version": corenet_version, "config": f"iris-{plan.module.replace('_', '-')}.yaml",
        "config_layer": (f"{{name: {plan.layer}, args: {{features: {FEATURES}}}}}" if plan.trainable
                         else plan.layer),
        "make": f"layer_class({FEATURES})" if plan.trainable else "layer_class()",
        "input_shape": f"(4, {FEATURES})" if plan.trainable else "(4, 5)",
        "kind": "trainable layer" if plan.trainable else "layer",
        "contract": "TrainableLayerContract" if plan.trainable else "LayerContract",
        "trainable_note": ", updates through the optimizer and initialize" if plan.trainable else "",
    }
    layer_template = TRAINABLE_LAYER if plan.trainable else LAYER
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        values["config"]: CONFIG,
        f"{plan.package}/__init__.py": HOOKS,
        f"{plan.package}/{plan.module}.py": layer_template,
        f"{plan.package}/conformance/__init__.py": "",
        f"{plan.package}/conformance/test_{plan.module}.py": TESTS,
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}


def write(plan: PluginPlan, corenet_version: str) -> list[Path]:
    """Write the project into ``plan.folder``; the files written."""
    written = []
    for relative, text in render(plan, corenet_version).items():
        path = plan.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "corenet plugin: the $layer $kind"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["corenet>=$corenet_version"]

# corenet finds the plugin through this entry point: the module holding the hook implementations
[project.entry-points.corenet]
$entry_point = "$package"

[tool.setuptools.packages.find]
include = ["$package*"]

[tool.setuptools.package-data]
$package = ["conformance/*.py"]

[tool.pytest.ini_options]
# the `impl` fixture and the contract/reference/corenet tiers come from corenet's pytest plugin
addopts = "--import-mode=importlib -p corenet.checking.pytest_plugin"
testpaths = ["$package/conformance"]
'''

HOOKS = '''"""corenet plugin $distribution: registers the $layer layer and its conformance group.

Hook implementations only; the layer itself lives in $package/$module.py.
"""

from corenet import hookimpl
from corenet.plugins import package_path


@hookimpl
def corenet_register_layers(register):
    from $package.$module import $layer

    register($layer)


@hookimpl
def corenet_register_test_groups(register):
    # `corenet check` and `corenet run-tests -g $group` run this file on whichever $layer is installed
    register("$group", [package_path(__file__, "conformance", "test_$module.py")], 0, names=("$layer",))
'''

LAYER = '''"""$layer: as generated, the identity (every test passes); replace the math with your layer's."""

from __future__ import annotations

import numpy as np

from corenet.base import BaseLayer


class $layer(BaseLayer):
    """An elementwise layer. forward: (batch, ...) -> (batch, ...), the same shape.

    Constructor arguments become config arguments: `{name: $layer, args: {...}}`.
    """

    #: what backward needs from the last forward (left out of checkpoints and copies)
    transient = ("_input",)

    def __init__(self) -> None:
        super().__init__()  # trainable = False, testing_phase = False
        self._input = None

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """input_tensor (batch, ...) -> output (batch, ...)."""
        self._input = input_tensor
        # YOUR MATH: the output of the layer, e.g. input_tensor / (1 + np.exp(-input_tensor)) for Swish.
        # Keep what backward needs (here the input). Do not change input_tensor in place.
        return input_tensor.copy()

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """error_tensor (batch, ...) = d(loss)/d(output) -> d(loss)/d(input), shaped like forward's input."""
        # YOUR MATH: the chain rule, error_tensor * d(output)/d(input) evaluated at self._input.
        return error_tensor.copy()

    def __repr__(self) -> str:
        return "$layer()"
'''

TRAINABLE_LAYER = '''"""$layer: as generated, a per-feature scale and shift (every test passes); put your math in."""

from __future__ import annotations

import numpy as np

from corenet.base import TrainableLayer
from corenet.shapes import positive_int


class $layer(TrainableLayer):
    """y = x * weights + bias, feature by feature.

    forward: (batch, features) -> (batch, features); weights, bias: (features,).
    `gradient_weights` / `gradient_bias` hold the last backward's gradients (summed over the
    batch). Setting `layer.optimizer` gives every parameter its own copy of the optimizer
    (TrainableLayer); backward updates them. Config: `{name: $layer, args: {features: $features}}`.
    """

    #: the parameters: each has a gradient_<name> and its own optimizer copy
    parameter_names = ("weights", "bias")
    #: what backward needs from the last forward (left out of checkpoints and copies)
    transient = ("_input",)

    def __init__(self, features: int) -> None:
        super().__init__()  # trainable = True, testing_phase = False, no optimizer
        self.features = positive_int("features", features)
        self.weights = np.ones(self.features)  # the identity until initialize() is called
        self.bias = np.zeros(self.features)
        self.gradient_weights = None
        self.gradient_bias = None
        self._input = None

    def initialize(self, weights_initializer, bias_initializer) -> None:
        """New weights and bias from the initializers: initialize(shape, fan_in, fan_out)."""
        shape, fan_in, fan_out = (self.features,), self.features, self.features
        self.weights = np.reshape(weights_initializer.initialize(shape, fan_in, fan_out), shape)
        self.bias = np.reshape(bias_initializer.initialize(shape, fan_in, fan_out), shape)

    def forward(self, input_tensor: np.ndarray) -> np.ndarray:
        """input_tensor (batch, features) -> output (batch, features)."""
        self._input = input_tensor
        # YOUR MATH: the layer's output from the input and the parameters.
        return input_tensor * self.weights + self.bias

    def backward(self, error_tensor: np.ndarray) -> np.ndarray:
        """error_tensor (batch, features) = d(loss)/d(output) -> d(loss)/d(input) (batch, features)."""
        # YOUR MATH: the gradient of every parameter, summed over the batch ...
        self.gradient_weights = np.sum(error_tensor * self._input, axis=0)
        self.gradient_bias = np.sum(error_tensor, axis=0)
        # ... the error for the previous layer, with the weights forward used (before the update) ...
        error_previous = error_tensor * self.weights
        # ... then the update (nothing happens while no optimizer is set).
        self.apply_update("weights", self.gradient_weights)
        self.apply_update("bias", self.gradient_bias)
        return error_previous

    def __repr__(self) -> str:
        return f"$layer({self.features})"
'''

TESTS = '''"""$group: the generic layer contract on whichever $layer is installed (this plugin's, once
`pip install -e` has run): shapes, gradients by central differences w.r.t. the input and every
parameter, flags$trainable_note. Add tests of your layer's own values below."""

import numpy as np  # noqa: F401 (for your own tests)

from corenet.checking.expect import expect_close  # noqa: F401 (for your own tests)
from corenet.checking.generic import $contract


class $group($contract):
    name = "$layer"
    input_shape = $input_shape  # (batch, features)

    def make(self, layer_class):
        return $make

    # Your own tests, e.g. forward values worked out by hand:
    #
    # def test_forward_values(self, layer_class):
    #     x = np.full(self.input_shape, 2.0)
    #     expected = ...  # what your formula gives for 2.0
    #     expect_close(self.make(layer_class).forward(x), np.full(self.input_shape, expected), "forward output")
'''

README = '''# $distribution

A corenet plugin that adds the `$layer` $kind.

- `$package/$module.py`: the layer; put your math where it says YOUR MATH;
- `$package/__init__.py`: the hook implementations that register it with corenet;
- `$package/conformance/test_$module.py`: its tests (the generic layer contract, and yours);
- `$config`: a training config that uses it.

## Install, test, use

```console
$$ pip install -e .                  # editable: your edits count without reinstalling
$$ pytest                            # the tests, on the installed $layer
$$ corenet check -g $group        # the same through corenet's checker, one line per failure
$$ corenet list-layers               # $layer, provided by $distribution
$$ corenet train $config    # train with it
```

In a config, the layer is `$config_layer`.
'''

CONFIG = '''# Fisher's iris flowers with the $layer layer after the first hidden layer (corenet train $config)
description: iris flowers, a fully connected network with $layer
seed: 0
data:
  name: iris
network:
  optimizer:
    name: Adam
    args: {learning_rate: 1.0e-2, mu: 0.9, rho: 0.999}
  weights_initializer: He
  bias_initializer: {name: Constant, args: {value: 0.0}}
  loss: CrossEntropyLoss
  layers:
    - {name: FullyConnected, args: {input_size: 4, output_size: $features}}
    - ReLU
    - $config_layer
    - {name: FullyConnected, args: {input_size: $features, output_size: 3}}
    - SoftMax
training:
  iterations: 300
  batch_size: 16
  checkpoint: $module.ckpt
'''
