"""pytest in a checkout tests corenet's reference tier unless ``CORENET_IMPL`` names another.

With corenet-fast installed the registry would select the fast layers; the suite's
default run checks the textbook ones instead, and CI runs the conformance suite a
second time with ``CORENET_IMPL=fast`` (see ``.ci/run`` and docs/two-tiers.md).
Installed conformance tests run by ``corenet run-tests`` do not see this file:
they test whatever the registry selects.
"""

import os

os.environ.setdefault("CORENET_IMPL", "reference")
