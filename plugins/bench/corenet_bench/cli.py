"""The ``corenet bench`` command."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the corenet CLI."""

    @app.command("bench")
    def bench(
        workload: list[str] | None = typer.Option(
            None, "--workload", "-w", help="W1 ... W7 (repeatable). Default: all (see benchmarks/README.md)."),
        repeats: int = typer.Option(10, "--repeats", "-r", min=1, help="Timed steps per workload (median)."),
        warmup: int = typer.Option(3, "--warmup", min=0, help="Untimed steps before timing."),
        dtype: str = typer.Option("both", "--dtype", help="float64, float32 or both."),
        impl: str | None = typer.Option(
            None, "--impl", metavar="TIER",
            help="reference, fast or both: which implementation tier's layers to time (both: interleaved in one "
            "run, with the reference tier's time over the fast tier's). Default: the selected implementations."),
        json_path: str | None = typer.Option(None, "--json", help="Also write machine-readable results here."),
        no_torch: bool = typer.Option(False, "--no-torch", help="Measure corenet only, even with PyTorch."),
        threads: int | None = typer.Option(None, "--threads", min=1, help="Limit NumPy's BLAS and PyTorch to N."),
    ) -> None:
        """Time training steps in corenet and PyTorch CPU (W1 LeNet ... W7 start-up): medians and ratios.

        PyTorch is optional (corenet-bench's torch extra); without it corenet's own figures are shown.
        """
        from corenet_bench.suite import run_and_report

        try:
            run_and_report(workload, dtype, repeats, warmup, json_path, use_torch=not no_torch,
                           threads=threads, impl=impl)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
