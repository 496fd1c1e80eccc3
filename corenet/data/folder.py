"""Where corenet keeps downloaded data sets: a per-user data folder, or ``$CORENET_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable that replaces the per-user data folder
DATA_ENV = "CORENET_DATA"


def data_home() -> Path:
    """``$CORENET_DATA`` if set, else the per-user data folder (platformdirs: e.g. ~/.local/share/corenet)."""
    configured = os.environ.get(DATA_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("corenet", appauthor=False))


def dataset_folder(name: str) -> Path:
    """The folder of data set ``name`` inside :func:`data_home` (e.g. ``.../corenet/mnist``)."""
    return data_home() / name
