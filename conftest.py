"""pytest in a checkout tests corenet's reference tier unless ``CORENET_IMPL`` names another.

With corenet-fast installed the registry would select the fast layers; the suite's
default run checks the textbook ones instead, and CI runs the conformance suite a
second time with ``CORENET_IMPL=fast`` (see ``.ci/run`` and docs/two-tiers.md).
Only a pytest run rooted at this checkout (its pyproject.toml) is affected: conformance
tests run by ``corenet run-tests`` or ``corenet check`` (their own root, even from an
editable install) test whatever the registry selects.
"""

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent


def pytest_configure(config) -> None:
    if Path(config.rootpath).resolve() == CHECKOUT:
        os.environ.setdefault("CORENET_IMPL", "reference")
