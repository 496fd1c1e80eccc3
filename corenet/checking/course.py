"""The course's folder layout (``Layers/``, ``Optimization/``, ``NeuralNetwork.py``, ``Models/``)
mapped onto registry names."""

from __future__ import annotations

from pathlib import Path

#: registry name -> (file in the course folder, the attribute that implements it)
COURSE_LAYOUT: dict[str, tuple[str, str]] = {
    "FullyConnected": ("Layers/FullyConnected.py", "FullyConnected"),
    "ReLU": ("Layers/ReLU.py", "ReLU"),
    "SoftMax": ("Layers/SoftMax.py", "SoftMax"),
    "Conv": ("Layers/Conv.py", "Conv"),
    "Pooling": ("Layers/Pooling.py", "Pooling"),
    "Flatten": ("Layers/Flatten.py", "Flatten"),
    "Constant": ("Layers/Initializers.py", "Constant"),
    "UniformRandom": ("Layers/Initializers.py", "UniformRandom"),
    "Xavier": ("Layers/Initializers.py", "Xavier"),
    "He": ("Layers/Initializers.py", "He"),
    "Dropout": ("Layers/Dropout.py", "Dropout"),
    "BatchNormalization": ("Layers/BatchNormalization.py", "BatchNormalization"),
    "TanH": ("Layers/TanH.py", "TanH"),
    "Sigmoid": ("Layers/Sigmoid.py", "Sigmoid"),
    "RNN": ("Layers/RNN.py", "RNN"),
    "LSTM": ("Layers/LSTM.py", "LSTM"),
    "Sgd": ("Optimization/Optimizers.py", "Sgd"),
    "SgdWithMomentum": ("Optimization/Optimizers.py", "SgdWithMomentum"),
    "Adam": ("Optimization/Optimizers.py", "Adam"),
    "CrossEntropyLoss": ("Optimization/Loss.py", "CrossEntropyLoss"),
    "L1_Regularizer": ("Optimization/Constraints.py", "L1_Regularizer"),
    "L2_Regularizer": ("Optimization/Constraints.py", "L2_Regularizer"),
    "NeuralNetwork": ("NeuralNetwork.py", "NeuralNetwork"),
    "save": ("NeuralNetwork.py", "save"),
    "load": ("NeuralNetwork.py", "load"),
    "LeNet": ("Models/LeNet.py", "build"),
}


def module_spec(relative_file: str, attribute: str) -> str:
    """``("Layers/FullyConnected.py", "FullyConnected")`` -> ``"Layers.FullyConnected:FullyConnected"``."""
    return f"{relative_file.removesuffix('.py').replace('/', '.')}:{attribute}"


def course_targets(folder: Path) -> dict[str, str | None]:
    """Every course name -> its module target in ``folder`` (which goes on sys.path), or None when the
    file is absent. Raises ValueError when ``folder`` is not a folder in the course's layout."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    targets = {name: module_spec(file, attribute) if (folder / file).is_file() else None
               for name, (file, attribute) in COURSE_LAYOUT.items()}
    if not any(targets.values()):
        expected = ", ".join(sorted({file for file, _ in COURSE_LAYOUT.values()})[:4])
        raise ValueError(f"{folder} is not in the course's layout: none of its files exist "
                         f"(expected e.g. {expected}, ...)")
    return targets
