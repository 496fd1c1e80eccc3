"""corenet plugin: the benchmark suite, `corenet bench` (hook implementations only).

The suite itself is :mod:`corenet_bench.suite` (``run_and_report``); nothing heavy
is imported until the command runs.
"""

from corenet import hookimpl


@hookimpl
def corenet_register_commands(app):
    from corenet_bench.cli import register

    register(app)
