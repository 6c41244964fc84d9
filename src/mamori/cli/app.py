"""Assemble the ``mamori`` Typer application from one module per command group."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console
from rich.markup import escape

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


def print_error(message: object, console: Console | None = None) -> None:
    """Print ``error: message`` in bold red on stderr, the message shown literally.

    Messages name what the user gave: TOML tables (``[federation]``), paths and values that may hold square
    brackets, which rich would otherwise read as markup and drop from the line.
    """
    (console or err_console).print(f"[bold red]error:[/] {escape(str(message))}")


def option_errors(exc: ValueError) -> str:
    """Say which command-line options a settings model refused and why, one clause per option.

    A pydantic ``ValidationError`` becomes ``--banks 0: Input should be greater than or equal to 1`` (the field's
    name as its option, the value given, pydantic's reason) instead of its multi-line report with a documentation
    link; any other ``ValueError`` is returned as its text.
    """
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    clauses = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        option = f"--{field.replace('_', '-')}" if field else "options"
        given = f" {error['input']!r}" if field and not isinstance(error.get("input"), dict) else ""
        clauses.append(f"{option}{given}: {error['msg']}")
    return "; ".join(clauses)


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
        print_error(exc)
        raise SystemExit(2) from exc
    except OSError as exc:  # a path the command was given cannot be read or written, a port is taken, ...
        where = f": '{exc.filename}'" if exc.filename else ""
        print_error(f"{exc.strerror or exc}{where}")
        raise SystemExit(2) from exc
