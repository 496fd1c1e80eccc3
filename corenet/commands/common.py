"""What several commands share: the error exit, training overrides, loading a training config."""

from __future__ import annotations

from pathlib import Path

import typer


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def train_overrides(seed, iterations, epochs, batch_size) -> dict:
    overrides: dict = {}
    if seed is not None:
        overrides["seed"] = seed
    if iterations is not None:
        overrides.update({"training.iterations": iterations, "training.epochs": None})
    if epochs is not None:
        overrides.update({"training.epochs": epochs, "training.iterations": None})
    if batch_size is not None:
        overrides["training.batch_size"] = batch_size
    return overrides


def load_train_config(config: str | None, data: Path | None, overrides: dict):
    from corenet.config import load_config, parse_yaml, read_config_text
    from corenet.plugins import get_registry

    if data is not None:
        name, source, text = read_config_text(config)
        spec = parse_yaml(text, source).get("data")
        dataset = spec.get("name") if isinstance(spec, dict) else spec
        known = isinstance(dataset, str) and dataset in get_registry().datasets
        if known and not reads_files(dataset):  # unknown names are reported by load_config
            raise fail(f"--data: the config {name!r} uses the data set {dataset!r}, which does not read "
                        f"files; --data PATH works with configs on file data sets (mnist)")
        if not (str(data) == dataset and not data.is_dir()):  # --data mnist: corenet's data folder
            overrides = {**overrides, "data.args.path": str(data)}
    return load_config(config, overrides)


def reads_files(dataset: str) -> bool:
    """Whether the registered data set ``dataset`` takes a ``path`` argument (e.g. mnist)."""
    import inspect

    from corenet.plugins import get_registry

    cls = get_registry().datasets.get(dataset)
    return cls is not None and "path" in inspect.signature(cls).parameters


def print_table(title: str, columns, rows, sections: list[int] | None = None) -> None:
    """A rich table on stdout (at least 160 columns wide); ``sections`` are row indexes that start a section."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for index, row in enumerate(rows):
        if sections and index in sections:
            table.add_section()
        table.add_row(*row)
    Console(width=max(Console().width, 160)).print(table)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on stdout, as wide as the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
