"""``mamori coordinator``: run the Flower SuperLink for the consortium and start federated runs."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.console import Console

from mamori.cli.app import app
from mamori.deploy import Coordinator, load_consortium_config, run_federated, sync_members
from mamori.errors import FederationError

coordinator_app = typer.Typer(help="The consortium coordinator (Flower SuperLink, TAXII, model registry, dashboard).",
                              no_args_is_help=True)
app.add_typer(coordinator_app, name="coordinator")
console = Console()

CONFIG_OPTION = typer.Option(Path("consortium.toml"), "--config", help="consortium.toml")


def _audit(cfg_store_url: str):  # type: ignore[no-untyped-def]
    from mamori.store import AuditLog, open_store

    return AuditLog(open_store(cfg_store_url))


@coordinator_app.command("start")
def start_command(config: Path = CONFIG_OPTION) -> None:
    """Start the SuperLink, TAXII server, model registry and dashboard; run the schedule until stopped."""
    cfg = load_consortium_config(config)
    stopping = {"flag": False}

    def _stop(*_: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    coordinator = Coordinator(cfg)

    def dashboard(store: object) -> object:
        from mamori.web import DashboardConfig, create_dashboard_app

        return create_dashboard_app(store,  # type: ignore[arg-type]
                                    DashboardConfig(api_root=cfg.taxii.api_root, results_dir=cfg.dashboard.results_dir))

    try:
        coordinator.start(dashboard=dashboard)
        console.print(f"SuperLink on {cfg.coordinator.host}:{cfg.coordinator.port} (pid {coordinator.superlink.pid})")
        for s in coordinator.services:
            console.print(f"{s.name} on {s.url}")
        if coordinator.schedule.interval_s:
            console.print(f"a run of {cfg.federation.num_rounds} round(s) every {cfg.schedule.interval_minutes} min")
        reported = 0
        while not stopping["flag"] and coordinator.alive:
            if coordinator.tick():
                console.print("scheduled run started")
            for outcome in coordinator.runs[reported:]:
                console.print(f"scheduled run: code {outcome.returncode}, rounds {outcome.rounds_before} -> "
                              f"{outcome.rounds_after}, {outcome.seconds:.1f} s")
            reported = len(coordinator.runs)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        coordinator.stop()


@coordinator_app.command("sync-members")
def sync_command(config: Path = CONFIG_OPTION) -> None:
    """Register active member keys with the running SuperLink and unregister revoked ones."""
    cfg = load_consortium_config(config)
    for name, node_id in sync_members(cfg, _audit(cfg.resolved_store_url)).items():
        console.print(f"{name}: node {node_id}")


@coordinator_app.command("run-round")
def run_round_command(
    config: Path = CONFIG_OPTION,
    rounds: int | None = typer.Option(None, help="Rounds beyond the last checkpoint (default: up to num_rounds)."),
) -> None:
    """Start a federated run on the running SuperLink and wait for it to end."""
    cfg = load_consortium_config(config)
    outcome = run_federated(cfg, more_rounds=rounds)
    console.print(f"run: code {outcome.returncode}, rounds {outcome.rounds_before} -> {outcome.rounds_after}, "
                  f"{outcome.seconds:.1f} s")
    if not outcome.ok:
        raise FederationError(
            f"coordinator run-round: flwr run failed (code {outcome.returncode}): {outcome.log[-800:]}"
        )
