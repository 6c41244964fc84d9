"""``mamori version``: print versions of mamori and the libraries it pins."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from rich.console import Console
from rich.table import Table

from mamori.cli.app import app

_LIBRARIES = ("flwr", "torch", "polars", "scikit-learn", "stix2", "fastapi", "sqlalchemy")


@app.command("version")
def version_command() -> None:
    """Print the versions of mamori and of the libraries it runs on."""
    table = Table("package", "version")
    for name in ("mamori", *_LIBRARIES):
        try:
            table.add_row(name, version(name))
        except PackageNotFoundError:
            table.add_row(name, "not installed")
    Console().print(table)
