"""``mamori privacy``: read the privacy ledger (budget spent per member) and plan a DP budget."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from mamori.cli.app import app
from mamori.store import DEFAULT_URL, PrivacyLedger, open_store

privacy_app = typer.Typer(help="Differential-privacy budget: the ledger and noise planning.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")

DB_OPTION = typer.Option(DEFAULT_URL, "--db", envvar="MAMORI_DB",
                         help="Database URL (sqlite:///file.db, postgresql://user@host/db) or SQLite file path.")


@privacy_app.command("ledger")
def ledger_command(
    db: str = DB_OPTION,
    member: str | None = typer.Option(None, "--member", help="Show this member's rows round by round."),
    budget: float | None = typer.Option(None, "--budget", min=0.0, help="Lifetime epsilon budget: show what is left."),
) -> None:
    """Show each member's total epsilon and delta per unit (customer-level, member-level) over all runs."""
    with open_store(db, must_exist=True) as store:
        ledger = PrivacyLedger(store)
        if member is not None:
            table = Table("run", "round", "unit", "mechanism", "epsilon", "delta", "noise", "steps", "recorded")
            for e in ledger.entries(member):
                table.add_row(e.run_id, str(e.server_round), e.unit, e.mechanism, f"{e.epsilon:.3f}",
                              f"{e.delta:.2g}", f"{e.noise_multiplier:.3f}", str(e.steps), e.recorded_at)
            Console().print(table)
            return
        totals = ledger.totals()
    columns = ["member", "unit", "epsilon", "delta", "runs", "rounds", "mechanisms"]
    table = Table(*columns, *(["left of budget"] if budget is not None else []))
    for t in totals:
        row = [t.member, t.unit, f"{t.epsilon:.3f}", f"{t.delta:.2g}", str(t.runs), str(t.rounds),
               ", ".join(t.mechanisms)]
        if budget is not None:
            row.append(f"{max(0.0, budget - t.epsilon):.3f}")
        table.add_row(*row)
    Console().print(table if totals else "[yellow]the privacy ledger is empty[/]")


@privacy_app.command("plan")
def plan_command(
    epsilon: float = typer.Option(..., "--dp-epsilon", min=0.0, help="Budget for the whole training."),
    records: int = typer.Option(..., "--records", min=1, help="Training records of the bank (delta default 1/n)."),
    customers: int = typer.Option(..., "--customers", min=1, help="Customers (privacy units) of the bank."),
    rounds: int = typer.Option(10, "--rounds", min=1),
    local_epochs: int = typer.Option(1, "--local-epochs", min=1),
    batch_units: int = typer.Option(256, "--batch-units", min=1, help="Customers expected per DP-SGD step."),
    delta: float | None = typer.Option(None, "--dp-delta", help="Default 1/records."),
) -> None:
    """Show the noise multiplier the accountant would choose for a planned customer-level DP-SGD training."""
    import math

    from mamori.federation import calibrate_noise

    q = min(1.0, batch_units / customers)
    steps = rounds * local_epochs * math.ceil(1 / q)
    d = delta if delta is not None else 1.0 / records
    sigma = calibrate_noise(epsilon, d, steps=steps, sample_rate=q)
    Console().print(f"epsilon {epsilon:g}, delta {d:.3g}: {steps} steps at sampling rate {q:.4f} -> "
                    f"noise multiplier [bold]{sigma:.3f}[/]")
