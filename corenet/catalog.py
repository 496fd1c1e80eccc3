"""The plugins that ship with corenet: the one place in the core that knows their names.

The core runs without any of them; this table only lets messages say where a missing
name comes from (``Dropout`` -> corenet-dropout, ``plugins/dropout`` in a checkout).
Each entry is plain data: a short name, the pip distribution, its folder under
``plugins/`` in a corenet source checkout, and the names it provides (registry
components, training configs, CLI commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BundledPlugin:
    """One plugin shipped in corenet's source tree."""

    short_name: str
    distribution: str
    folder: str
    #: registry names it registers (layers, regularizers, models, ...)
    components: tuple[str, ...] = ()
    #: training configs it ships (``corenet train NAME``)
    configs: tuple[str, ...] = ()
    #: sub-commands it adds to the CLI
    commands: tuple[str, ...] = ()
    summary: str = ""

    @property
    def provides(self) -> tuple[str, ...]:
        """Every name it provides: components, configs and commands."""
        return self.components + self.configs + self.commands


BUNDLED: tuple[BundledPlugin, ...] = (
    BundledPlugin("dropout", "corenet-dropout", "dropout", components=("Dropout",),
                  summary="inverted dropout"),
    BundledPlugin("batchnorm", "corenet-batchnorm", "batchnorm", components=("BatchNormalization",),
                  summary="batch normalization"),
    BundledPlugin("reg-l1l2", "corenet-reg-l1l2", "reg_l1l2", components=("L1_Regularizer", "L2_Regularizer"),
                  summary="L1 and L2 weight constraints"),
    BundledPlugin("recurrent", "corenet-recurrent", "recurrent",
                  components=("TanH", "Sigmoid", "RNN", "LSTM"),
                  commands=("recall", "digit-rows"), summary="TanH, Sigmoid, Elman RNN and LSTM"),
    BundledPlugin("lenet", "corenet-lenet", "lenet", components=("LeNet",),
                  configs=("lenet-mnist", "digits-regularized"),
                  summary="the LeNet model and the regularized digits config"),
    BundledPlugin("fast", "corenet-fast", "fast",
                  summary="faster implementations of the core and plugin layers"),
    BundledPlugin("bench", "corenet-bench", "bench", commands=("bench",),
                  summary="the benchmark suite: corenet's tiers against PyTorch (corenet bench)"),
    BundledPlugin("export", "corenet-export", "export", commands=("export", "import-weights"),
                  summary="export trained networks to PyTorch and ONNX, import PyTorch weights"),
)


def provider_of(name: str) -> BundledPlugin | None:
    """The bundled plugin that provides ``name`` (a component, config or command), else None."""
    for entry in BUNDLED:
        if name in entry.provides:
            return entry
    return None


def by_short_name(name: str) -> BundledPlugin | None:
    """The bundled plugin called ``name``: its short name, distribution or folder (``reg_l1l2`` too)."""
    wanted = name.strip().lower().replace("_", "-")
    for entry in BUNDLED:
        if wanted in (entry.short_name, entry.distribution, entry.folder.replace("_", "-")):
            return entry
    return None


def checkout_folder(entry: BundledPlugin) -> Path | None:
    """``plugins/<folder>`` holding a pyproject.toml, next to the running corenet's source
    checkout or under the current directory; None when neither has it (an installed wheel)."""
    source_root = Path(__file__).resolve().parent.parent
    for root in (Path.cwd().resolve(), source_root):
        folder = root / "plugins" / entry.folder
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def install_hint(name: str) -> str | None:
    """How to get ``name`` when a bundled plugin provides it (None for other names).

    ``Dropout comes with the plugin corenet-dropout: corenet install ./plugins/dropout``
    """
    entry = provider_of(name)
    if entry is None:
        return None
    folder = checkout_folder(entry)
    if folder is None:
        how = f"corenet install {entry.distribution} (in a corenet checkout: corenet install ./plugins/{entry.folder})"
    else:
        how = f"corenet install {_shown(folder)}"
    return f"{name} comes with the plugin {entry.distribution}: {how}"


def _shown(folder: Path) -> str:
    """``folder`` as ``./relative`` when it is under the current directory, else absolute."""
    try:
        return "./" + folder.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(folder)
