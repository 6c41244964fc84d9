"""``mamori dashboard``: serve the consortium dashboard (web UI for operators and member SOCs)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mamori.cli.app import app
from mamori.store import DEFAULT_URL, open_store


@app.command("dashboard")
def dashboard_command(
    db: str = typer.Option(DEFAULT_URL, "--db", envvar="MAMORI_DB",
                           help="Database URL (sqlite:///file.db, postgresql://user@host/db) or SQLite file path."),
    results: Path | None = typer.Option(None, "--results", help="Folder with results.json and HTML reports "
                                        "(e.g. the output of `mamori demo`)."),
    alerts: Path | None = typer.Option(None, "--alerts", help="Folder of <member>.jsonl alert files "
                                       "(mamori score --alerts); confirmed alerts become TAXII sightings."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8080, help="TCP port."),
    api_root: str = typer.Option("mamori", help="TAXII API root whose collections the intelligence pages read."),
    secure_cookies: bool = typer.Option(False, help="Mark the session cookie Secure (behind an HTTPS proxy)."),
    label_window: float = typer.Option(600.0, "--label-window", min=1.0, help="Seconds after an alert's first "
                                       "event that its verdict labels in the exported verdict-labels.csv."),
) -> None:
    """Serve the dashboard; log in with a TAXII member name and API key (admins get the operator view)."""
    from mamori.web import DashboardConfig, serve_dashboard

    store = open_store(db, must_exist=True)
    config = DashboardConfig(results_dir=results, alerts_dir=alerts, api_root=api_root, secure_cookies=secure_cookies,
                             label_window_seconds=label_window)
    Console().print(f"dashboard on [bold]http://{host}:{port}/[/] (members: `mamori intel members add`)")
    try:
        serve_dashboard(store, config, host=host, port=port)
    finally:
        store.close()
