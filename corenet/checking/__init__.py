"""Conformance checking: run the conformance groups against any implementation of a name.

- :mod:`~corenet.checking.targets`: which implementation a test checks (``CORENET_TARGETS``,
  else the registry's selection);
- :mod:`~corenet.checking.pytest_plugin`: the ``impl`` fixture, the ``contract`` /
  ``reference`` / ``corenet`` tiers and the event stream;
- :mod:`~corenet.checking.expect`: assertions with one-line, actionable messages;
- :mod:`~corenet.checking.doubles`: initializers that hand out known arrays, fixed batches;
- :mod:`~corenet.checking.agreement`: training side by side with corenet's reference;
- :mod:`~corenet.checking.runner`, :mod:`~corenet.checking.results`: the subprocess run with
  time limits, and its JSON and text report (``corenet check``, ``corenet run-tests``);
- :mod:`~corenet.checking.course`: the course's folder layout.
"""
