"""Assemble the ``mamori`` Typer application from one module per command group."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console

from mamori import __version__
from mamori.errors import MamoriError

# Flower and Ray phone home unless told not to; mamori never lets them (banks run offline).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

app = typer.Typer(
    name="mamori",
    help="Federated threat intelligence for financial institutions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


class _FlowerVerbosity(logging.Filter):
    """Drops Flower's records below the CLI's verbosity.

    Flower sets its ``flwr`` logger to DEBUG with a console handler of its own when it is imported, and its records
    also reach the root handler: ``mamori demo`` printed every SecAgg+ stage of every round (about 600 lines) through
    its progress bars. A filter on that logger, added before Flower is imported (which keeps it), applies ``-v`` to
    both handlers. Flower's own processes (SuperLink, SuperNodes, ClientApps) do not run through this CLI and keep
    their logs.
    """

    threshold = logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep records at or above the threshold."""
        if record.levelno < self.threshold:
            return False
        # Flower warns whenever a strategy is built with fraction_evaluate=0; mamori's train-only federations
        # (the assessment's poisoning runs, secure rounds without evaluation) choose that on purpose, and
        # `mamori assess` printed it once per federation. Shown again with -v.
        return self.threshold < logging.WARNING or "Federated evaluation will be skipped" not in record.getMessage()


_FLOWER_FILTER = _FlowerVerbosity()


def _not_printed_by_flower(record: logging.LogRecord) -> bool:
    """False for Flower's INFO and above: Flower's own console handler prints those (ours would repeat them)."""
    flower = record.name == "flwr" or record.name.startswith("flwr.")
    return not flower or record.levelno < logging.INFO


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mamori {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."),
) -> None:
    """Federated threat intelligence for financial institutions."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    created = not root.handlers  # basicConfig leaves a logging setup it finds (an embedding program's) alone
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if created:
        root.handlers[0].addFilter(_not_printed_by_flower)
    _FLOWER_FILTER.threshold = level
    flower_logger = logging.getLogger("flwr")
    if _FLOWER_FILTER not in flower_logger.filters:
        flower_logger.addFilter(_FLOWER_FILTER)


def register_commands() -> None:
    """Import each command module; each one adds its commands to ``app``."""
    import importlib
    import pkgutil

    import mamori.cli as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"mamori.cli.{info.name}")


def main() -> None:
    """Entry point of the ``mamori`` console script."""
    try:
        app()
    except MamoriError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from exc
