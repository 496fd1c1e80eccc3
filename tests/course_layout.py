"""Write a submission folder in the course's layout whose modules wrap corenet's own classes.

``write_course_folder(path)`` writes every file of :data:`corenet.checking.course.COURSE_LAYOUT`
(``Layers/FullyConnected.py``, ``Optimization/Optimizers.py``, ``NeuralNetwork.py``, ...).
Each class is a thin subclass of corenet's (so, to the checker, a foreign implementation),
save/load pickle the network as the course does, and ``Models/LeNet.py`` builds LeNet.
``names`` limits the folder to some registry names; ``overrides`` maps a file (e.g.
``"Layers/RNN.py"``) to replacement source, for deliberately broken variants.
"""

from __future__ import annotations

from pathlib import Path

from corenet.checking.course import COURSE_LAYOUT

#: registry name -> corenet module that holds the class the course file subclasses
SOURCES = {
    "FullyConnected": "corenet.layers.fully_connected",
    "ReLU": "corenet.layers.activations",
    "SoftMax": "corenet.layers.activations",
    "Conv": "corenet.layers.conv",
    "Pooling": "corenet.layers.pooling",
    "Flatten": "corenet.layers.flatten",
    "Constant": "corenet.initializers",
    "UniformRandom": "corenet.initializers",
    "Xavier": "corenet.initializers",
    "He": "corenet.initializers",
    "Dropout": "corenet_dropout.dropout",
    "BatchNormalization": "corenet_batchnorm.batchnorm",
    "TanH": "corenet_recurrent.activations",
    "Sigmoid": "corenet_recurrent.activations",
    "RNN": "corenet_recurrent.rnn",
    "LSTM": "corenet_recurrent.lstm",
    "Sgd": "corenet.optimizers",
    "SgdWithMomentum": "corenet.optimizers",
    "Adam": "corenet.optimizers",
    "CrossEntropyLoss": "corenet.losses",
    "L1_Regularizer": "corenet_reg_l1l2.constraints",
    "L2_Regularizer": "corenet_reg_l1l2.constraints",
    "NeuralNetwork": "corenet.network",
}

SAVE = '''

def save(filename, net):
    with open(filename, "wb") as stream:
        pickle.dump(net, stream)
'''
LOAD = '''

def load(filename, data_layer):
    with open(filename, "rb") as stream:
        net = pickle.load(stream)
    net.data_layer = data_layer
    return net
'''
LENET = '''"""LeNet as the course builds it: here corenet-lenet's build()."""

from corenet_lenet.lenet import build  # noqa: F401
'''


def _subclass(name: str) -> str:
    return (f"from {SOURCES[name]} import {name} as _Corenet{name}\n\n\n"
            f"class {name}(_Corenet{name}):\n    \"\"\"The course's {name}: corenet's, subclassed.\"\"\"\n")


def course_sources(names=None) -> dict[str, str]:
    """Relative file -> source for ``names`` (default: every name of the course layout)."""
    names = list(COURSE_LAYOUT) if names is None else list(names)
    unknown = [name for name in names if name not in COURSE_LAYOUT]
    if unknown:
        raise ValueError(f"not in the course layout: {', '.join(unknown)}")
    files: dict[str, list[str]] = {}
    for name in names:
        file, _ = COURSE_LAYOUT[name]
        if name == "LeNet":
            files.setdefault(file, []).append(LENET)
        elif name == "save":
            files.setdefault(file, []).append(SAVE)
        elif name == "load":
            files.setdefault(file, []).append(LOAD)
        else:
            files.setdefault(file, []).append(_subclass(name))
    sources = {}
    for file, parts in files.items():
        header = "import pickle\n\n" if file == "NeuralNetwork.py" else ""
        sources[file] = header + "\n\n".join(part.strip("\n") + "\n" for part in parts)
    return sources


def write_course_folder(path: Path, names=None, overrides: dict[str, str] | None = None) -> Path:
    """Write the course-layout folder for ``names`` into ``path``; ``overrides`` replace whole files."""
    path = Path(path)
    sources = course_sources(names)
    sources.update(overrides or {})
    for file, source in sources.items():
        target = path / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    return path
