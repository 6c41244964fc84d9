"""``mamori simulate``: write a simulated consortium's gateway logs, auth events and ground truth."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mamori.cli.app import app, option_errors
from mamori.errors import ConfigError

#: ``--quick``: a consortium small enough for CI (seconds, tens of thousands of events).
QUICK_SCALE = 0.02
QUICK_DAYS = 2


@app.command("simulate")
def simulate_command(
    out: Path = typer.Option(Path("mamori-out/simulated"), "--out", "-o", help="Output directory."),
    banks: int = typer.Option(5, "--banks", help="Number of member banks."),
    days: int = typer.Option(7, "--days", help="Days to simulate."),
    seed: int = typer.Option(1, "--seed", help="Random seed (same seed, same bytes)."),
    fmt: str = typer.Option("nginx", "--format", "-f", help="Gateway log format: nginx, alb, envoy, envoy-json, ecs."),
    scale: float = typer.Option(1.0, "--scale", help="Multiplier on customer counts (1.0: ~6M events a week)."),
    attack_scale: float = typer.Option(1.0, "--attack-scale", help="Multiplier on campaign intensity (0: benign)."),
    start: str = typer.Option("2025-04-21", "--start", help="First day (JST), YYYY-MM-DD."),
    waves: int = typer.Option(1, "--waves", help="Campaigns per family per bank, one per segment of the period."),
    quick: bool = typer.Option(False, "--quick", help=f"Tiny run: scale {QUICK_SCALE}, {QUICK_DAYS} days."),
) -> None:
    """Simulate N banks' API traffic with attack campaigns and write logs plus ground truth per bank."""
    from mamori.simulate import GATEWAY_EXTENSIONS, SimulationConfig, default_bank_profiles, simulate_to_disk

    if fmt not in GATEWAY_EXTENSIONS:
        raise ConfigError(f"--format {fmt!r} is not supported; choose one of {', '.join(GATEWAY_EXTENSIONS)}")
    try:
        start_date = dt.date.fromisoformat(start)
    except ValueError as exc:
        raise ConfigError(f"--start {start!r} is not a date; use YYYY-MM-DD") from exc
    if quick:
        scale, days = min(scale, QUICK_SCALE), min(days, QUICK_DAYS)
    try:
        config = SimulationConfig(
            banks=banks, days=days, seed=seed, scale=scale, attack_scale=attack_scale, start=start_date, waves=waves
        )
    except ValidationError as exc:
        raise ConfigError(f"mamori simulate: invalid option: {option_errors(exc)}") from exc

    console = Console()
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("simulating", total=2 * banks)
        summary = simulate_to_disk(
            config, out, fmt, progress=lambda msg, done, total: bar.update(task, completed=done, description=msg)
        )
    elapsed = time.perf_counter() - t0

    profiles = {p.bank_id: p for p in default_bank_profiles(config)}
    table = Table("bank", "customers", "events", "attack events", "families")
    for bank, rows in summary.group_by("organization.id", maintain_order=True):
        bank_id = str(bank[0])
        attacks = rows.filter(pl.col("labels.attack_family") != "benign")
        table.add_row(
            bank_id,
            f"{profiles[bank_id].customers:,}",
            f"{rows['events'].sum():,}",
            f"{attacks['events'].sum():,}",
            ", ".join(sorted(attacks["labels.attack_family"].to_list())),
        )
    console.print(table)
    n = int(summary["events"].sum())
    console.print(
        f"{n:,} events simulated and written in {elapsed:.1f} s ({n / max(elapsed, 1e-9):,.0f} events/s) to "
        f"[bold]{out}[/] (gateway.{GATEWAY_EXTENSIONS[fmt]}, app-events.jsonl, truth.csv per bank; campaigns.json)"
    )
