"""``python -m corenet`` runs the CLI."""

from corenet.cli import app

app(prog_name="corenet")
