"""``mamori audit``: verify and read the hash-chained audit log."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mamori.cli.app import app
from mamori.store import DEFAULT_URL, open_store

audit_app = typer.Typer(help="Verify and read the hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

DB_OPTION = typer.Option(DEFAULT_URL, "--db", envvar="MAMORI_DB",
                         help="Database URL (sqlite:///file.db, postgresql://user@host/db) or SQLite file path.")


@audit_app.command("verify")
def verify_command(db: str = DB_OPTION) -> None:
    """Recompute the hash chain; exit 1 and name the first tampered row if it is broken."""
    with open_store(db, must_exist=True) as store:
        report = store.audit.verify()
    console = Console()
    if report.ok:
        console.print(f"[green]audit log intact[/]: {report.rows_checked} rows, head {report.head_hash}")
        return
    reason = escape(str(report.reason))  # shown literally: a tampered row's text may hold markup brackets
    Console(stderr=True).print(f"[bold red]audit log TAMPERED[/] at row {report.first_bad_id}: {reason} "
                               f"({report.rows_checked} rows read; last good hash {report.head_hash})")
    raise typer.Exit(1)


@audit_app.command("show")
def show_command(
    db: str = DB_OPTION,
    last: int = typer.Option(20, "--last", "-n", min=1, help="Show this many of the newest rows."),
) -> None:
    """Show the newest rows of the audit log."""
    with open_store(db, must_exist=True) as store:
        total = store.audit.count()
        entries = store.audit.entries(since_id=max(0, total - last))
    table = Table("id", "at", "actor", "action", "subject", "details", "hash")
    for e in entries:
        table.add_row(str(e.id), e.at, e.actor, e.action, e.subject, json.dumps(e.details)[:80], e.hash[:12])
    Console().print(table)
