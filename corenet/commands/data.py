"""``corenet data``: download data sets (``corenet data fetch mnist``) and show where they are."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Data sets corenet can download, and where they are kept.", no_args_is_help=True)


@data_app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="The data set: mnist."),
    to: Path | None = typer.Option(
        None, "--to", help="Folder to put the files in (default: corenet's data folder, see `corenet data path`)."),
    mirror: list[str] | None = typer.Option(
        None, "--mirror", help="Base URL holding the files, tried instead of the built-in mirrors (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download a data set, verify every file's SHA-256 and keep it where `--data NAME` finds it.

    An interrupted download resumes where it stopped; a file only gets its real name once complete and verified.
    """  # noqa: E501 (one line per paragraph: typer keeps a docstring's line breaks)
    from corenet.data.fetch import DATASETS, FetchError, fetch

    if name not in DATASETS:
        typer.echo(f"error: unknown data set {name!r}; corenet can fetch: {', '.join(sorted(DATASETS))}", err=True)
        raise typer.Exit(2)
    try:
        if quiet:
            folder, downloaded = fetch(name, to, mirror)
        else:
            folder, downloaded = _fetch_with_progress(name, to, mirror)
    except FetchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    kept = len(DATASETS[name].files) - len(downloaded)
    typer.echo(f"{name}: {len(downloaded)} file(s) downloaded, {kept} already there, all verified (SHA-256) "
               f"in {folder}")


def _fetch_with_progress(name: str, to: Path | None, mirrors: list[str] | None):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from corenet.data.fetch import fetch

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(remote, done: int, total: int) -> None:
            if remote.name not in tasks:
                tasks[remote.name] = progress.add_task(remote.name, total=total)
            progress.update(tasks[remote.name], completed=done)

        return fetch(name, to, mirrors, report)


@data_app.command("path")
def path_command(name: str = typer.Argument("mnist", help="The data set.")) -> None:
    """Print the folder where a data set is kept (set CORENET_DATA to move corenet's data folder)."""
    from corenet.data.folder import dataset_folder

    typer.echo(str(dataset_folder(name)))


def register(app: typer.Typer) -> None:
    """Add ``corenet data`` to the CLI."""
    app.add_typer(data_app, name="data")
