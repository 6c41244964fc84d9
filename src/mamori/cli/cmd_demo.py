"""``mamori demo``: the main job on the embedded default consortium."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mamori.cli.app import app
from mamori.cli.progress import stage_progress


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("mamori-out/demo"), "--out", help="Folder for report.html, results.json, mamori.db."),
    quick: bool = typer.Option(False, "--quick", help="A small consortium (4 days, 3% of customers): about 2 minutes."),
    banks: int = typer.Option(5, "--banks", min=2, help="Members of the simulated consortium."),
    days: int = typer.Option(7, "--days", min=2, help="Days of traffic to simulate (the last ones are the test)."),
    seed: int = typer.Option(1, "--seed", help="Seed of every random choice."),
    rounds: int = typer.Option(10, "--rounds", min=1, help="Federated rounds."),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg or fedprox."),
    secure_aggregation: bool = typer.Option(
        True, "--secure-aggregation/--no-secure-aggregation", help="SecAgg+: the coordinator sees only the sum."
    ),
    dp_epsilon: float | None = typer.Option(
        None,
        "--dp-epsilon",
        min=0.0,
        help="Train the federated model with customer-level DP-SGD at this epsilon (whole run); see docs/privacy.md.",
    ),
    dp_delta: float | None = typer.Option(
        None, "--dp-delta", min=0.0, max=1.0, help="Delta of the DP guarantee (default: 1 / each bank's training rows)."
    ),
    serve: bool = typer.Option(False, "--serve", help="Then serve the dashboard over the results (Ctrl-C stops)."),
    serve_port: int = typer.Option(8080, "--serve-port", help="TCP port of the dashboard (on 127.0.0.1)."),
) -> None:
    """Simulate a consortium, train each bank alone, federated and centralized; write report.html."""
    from mamori.compare import ComparisonConfig, DemoConfig, run_demo
    from mamori.federation import RecordDPConfig

    record_dp = None
    if dp_epsilon is not None or dp_delta is not None:
        if dp_epsilon is None:
            raise typer.BadParameter("--dp-delta needs --dp-epsilon (the budget).", param_hint="--dp-delta")
        try:
            record_dp = RecordDPConfig(epsilon=dp_epsilon, delta=dp_delta)
        except ValueError as exc:  # pydantic: epsilon must be > 0, 0 < delta < 1
            raise typer.BadParameter(f"--dp-epsilon {dp_epsilon} / --dp-delta {dp_delta}: {exc}") from exc
    if quick:
        config = DemoConfig.quick(seed=seed)
        config = config.model_copy(
            update={"comparison": config.comparison.model_copy(
                update={"secure_aggregation": secure_aggregation, "record_dp": record_dp})}
        )
    else:
        comparison = ComparisonConfig(
            rounds=rounds, strategy=strategy, seed=seed, secure_aggregation=secure_aggregation, record_dp=record_dp
        )
        config = DemoConfig(banks=banks, days=days, seed=seed, comparison=comparison)
    console = Console()
    with stage_progress() as progress:
        results = run_demo(config, out, progress=progress)
    table = Table("regime", "mean PR-AUC", "seconds", title="PR-AUC on the test days, averaged over banks")
    for regime in ("local", "federated", "centralized"):
        r = results["regimes"][regime]
        table.add_row(regime, f"{r['mean_pr_auc']:.3f}", f"{r['seconds']:.1f}")
    console.print(table)
    s = results["summary"]
    console.print(f"federated / centralized PR-AUC: [bold]{s['fed_over_central']:.3f}[/]  (bar ≥ 0.95)")
    dp = results["regimes"]["federated"].get("record_dp")
    if dp is not None:
        spent = ", ".join(f"{bank} ε={m['epsilon']:.3f} (δ={m['delta']:.2g}, σ={m['noise_multiplier']:.2f})"
                          for bank, m in dp["members"].items())
        console.print(f"customer-level DP-SGD (federated model only): budget ε={dp['settings']['epsilon']:g}; spent "
                      f"{spent}; privacy ledger run [bold]{dp['ledger_run_id']}[/] in mamori.db")
    console.print(f"report: [bold]{(out / 'report.html').resolve()}[/]")
    console.print(f"results: {(out / 'results.json').resolve()}")
    if serve:
        _serve_dashboard(out, serve_port, console)


def _serve_dashboard(out: Path, port: int, console: Console) -> None:
    """Serve the dashboard over the demo's store and results, with a fresh operator key."""
    import secrets

    from mamori.intel.taxii import add_member
    from mamori.store import open_store
    from mamori.web import DashboardConfig, serve_dashboard

    store = open_store(f"sqlite:///{(out / 'mamori.db').resolve()}")
    try:
        name = f"operator-{secrets.token_hex(3)}"
        _, key = add_member(store, name, "Consortium operator", admin=True, actor="cli:demo")
        console.print(f"dashboard: [bold]http://127.0.0.1:{port}/[/]  log in as [bold]{name}[/] with key "
                      f"[bold]{key}[/] (shown once)")
        serve_dashboard(store, DashboardConfig(results_dir=out), host="127.0.0.1", port=port)
    finally:
        store.close()
