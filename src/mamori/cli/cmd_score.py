"""``mamori score``: score a log file or directory, or follow a live log, and write alerts."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mamori.cli.allocators import batch_allocators, batch_blas_threads
from mamori.cli.app import app, option_errors, print_error
from mamori.detect import (
    CAMPAIGN_FEATURE,
    JsonlAlertSink,
    LogFollower,
    MemoryAlertSink,
    Scorer,
    ScoringConfig,
    WebhookAlertSink,
    alerts_to_stix,
    score_path,
    train_simulated_model,
)
from mamori.detect.loading import load_indicators, resolve_model
from mamori.errors import ConfigError
from mamori.events import Quarantine

MODEL_HELP = "Scoring-model bundle (.npz) from `mamori score --train-demo` or ScoringModel.save()."


@app.command("score")
def score_command(
    path: Path | None = typer.Argument(None, help="Log file or directory (batch), or the live log with --follow."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    db: str | None = typer.Option(None, "--db", envvar="MAMORI_DB",
                                  help="Model registry store URL: take the latest model from there."),
    name: str | None = typer.Option(None, "--name", help="Model name in the registry."),
    fmt: str = typer.Option("auto", "--format", "-f", help="Log format (auto, nginx, alb, envoy, ecs, csic, ...)."),
    follow: bool = typer.Option(False, "--follow", help="Tail the log (rotation- and truncation-safe)."),
    state_dir: Path | None = typer.Option(None, "--state-dir",
                                          help="With --follow: keep offset, dedup table and window state here "
                                               "to resume after a restart."),
    idle_timeout: float | None = typer.Option(None, "--idle-timeout", help="With --follow: stop after this many "
                                              "seconds without new lines."),
    alerts: str = typer.Option("alerts.jsonl", "--alerts", "-a", help="JSON-lines alert file ('-' = stdout)."),
    webhook: str | None = typer.Option(None, "--webhook", help="Also POST each alert (JSON) to this URL."),
    indicators: Path | None = typer.Option(None, "--indicators",
                                           help="Shared indicators (STIX JSON) to match; also the campaign feature "
                                                "of models that read it (with --train-demo: train such a model)."),
    taxii_url: str | None = typer.Option(None, "--taxii-url", envvar="MAMORI_TAXII_URL"),
    taxii_member: str | None = typer.Option(None, "--taxii-member", envvar="MAMORI_TAXII_MEMBER"),
    taxii_key: str | None = typer.Option(None, "--taxii-key", envvar="MAMORI_TAXII_KEY"),
    taxii_collection: str | None = typer.Option(None, "--taxii-collection", help="Collection to pull indicators "
                                                "from."),
    emit_stix: Path | None = typer.Option(None, "--emit-stix", help="Write sightings of the alerts (STIX bundle)."),
    member: str = typer.Option("member", "--member", help="Your member name (identity of the sightings)."),
    horizon: str = typer.Option("24h", "--horizon", help="How far back per-entity window state reaches."),
    max_state_events: int = typer.Option(100_000, "--max-state-events", help="Window-state budget in events."),
    dedup_window: str = typer.Option("10m", "--dedup-window", help="One alert per entity per this window."),
    no_explain: bool = typer.Option(False, "--no-explain", help="Skip contributing features (faster)."),
    batch_lines: int = typer.Option(250_000, "--batch-lines", help="Events per scoring call (batch mode)."),
    quarantine_path: Path | None = typer.Option(None, "--quarantine", "-q", help="JSON-lines file for bad lines."),
    train_demo: Path | None = typer.Option(None, "--train-demo",
                                           help="Train a small model on a simulated consortium, save it here, exit."),
) -> None:
    """Score events with the consortium's model and write deduplicated, explained alerts."""
    console = Console(stderr=True)
    if train_demo is not None:
        # with --indicators the demo model also reads the shared-campaign column (docs/cross-bank.md, step 8)
        shared = load_indicators(indicators) if indicators is not None else None
        with console.status("simulating a small consortium and training a scoring model"):
            bundle = train_simulated_model(log_format=None if fmt in ("auto", "ecs") else fmt, indicators=shared)
        bundle.save(train_demo)
        extra = (f", last one {CAMPAIGN_FEATURE}: {bundle.metadata.get('campaign_hit_rows', 0):,} training events "
                 "hit a campaign indicator") if shared is not None else ""
        console.print(f"saved {train_demo} (threshold {bundle.threshold:.3f}, {bundle.spec.n_features} features"
                      f"{extra})")
        return
    if path is None:
        raise ConfigError("mamori score: give a log file or directory (or --train-demo OUT).")
    try:
        config = ScoringConfig(horizon=horizon, max_state_events=max_state_events, dedup_window=dedup_window)
    except ValueError as exc:
        raise ConfigError(f"mamori score: invalid option: {option_errors(exc)}") from exc
    bundle, _registry = resolve_model(model, db=db, name=name)
    index = load_indicators(indicators, taxii_url=taxii_url if taxii_collection else None, member=taxii_member,
                            api_key=taxii_key, collection=taxii_collection)
    sink = JsonlAlertSink(sys.stdout if alerts == "-" else Path(alerts))
    sinks: list[JsonlAlertSink | WebhookAlertSink | MemoryAlertSink] = [sink]
    memory = MemoryAlertSink() if emit_stix is not None else None
    if memory is not None:
        sinks.append(memory)
    hook = WebhookAlertSink(webhook) if webhook else None
    if hook is not None:
        sinks.append(hook)
    scorer = Scorer(bundle, config, indicators=index, sinks=sinks)
    quarantine = Quarantine(quarantine_path) if quarantine_path is not None else None
    try:
        if follow:
            _follow(console, path, scorer, fmt, state_dir, idle_timeout, quarantine, not no_explain)
        else:
            batch_allocators()  # chunk-sized matrices: reuse freed memory instead of faulting in fresh pages
            batch_blas_threads()  # the pipeline keeps both cores busy: no spinning BLAS worker beside it
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=console) as progress:
                task = progress.add_task("scoring", total=None)

                def update(events: int, n_alerts: int) -> None:
                    progress.update(task, description=f"{events:,} events, {n_alerts:,} alerts")

                summary = score_path(path, scorer, fmt=fmt, batch_lines=batch_lines, quarantine=quarantine,
                                     explain_alerts=not no_explain, progress=update)
            table = Table(title=f"mamori score ({bundle.name} v{bundle.version})")
            for col in ("files", "events", "over threshold", "alerts", "quarantined", "events/s"):
                table.add_column(col, justify="right")
            table.add_row(str(len(summary.files)), f"{summary.events:,}", f"{summary.hits:,}", f"{summary.alerts:,}",
                          f"{summary.quarantined:,}", f"{summary.events_per_second:,.0f}")
            console.print(table)
            for message in summary.errors:
                print_error(message, console)
    finally:
        for s in sinks:
            s.close()
        if quarantine is not None:
            quarantine.close()
    if memory is not None and emit_stix is not None:
        objects = alerts_to_stix(memory.alerts, member)
        bundle_doc = {"type": "bundle", "id": f"bundle--{bundle.sha256[:8]}-0000-4000-8000-000000000000",
                      "objects": objects}
        emit_stix.write_text(json.dumps(bundle_doc, indent=1))
        console.print(f"wrote {len(objects)} STIX objects to {emit_stix}")
    if alerts != "-":
        console.print(f"alerts: {alerts}")
    if not follow and summary.errors:
        console.print(f"{len(summary.errors)} of {len(summary.files)} file(s) not read to the end; the events read "
                      "before each error were scored (exit status 1).")
        raise typer.Exit(1)


def _follow(console: Console, path: Path, scorer: Scorer, fmt: str, state_dir: Path | None,
            idle_timeout: float | None, quarantine: Quarantine | None, explain: bool) -> None:
    follower = LogFollower(path, scorer, fmt="nginx" if fmt == "auto" else fmt, state_dir=state_dir,
                           quarantine=quarantine, explain_alerts=explain)
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    console.print(f"following {path} (Ctrl-C to stop)")
    try:
        total = follower.run(stop, idle_timeout=idle_timeout)
    except KeyboardInterrupt:
        follower.save()
        follower.close()
        total = scorer.events_scored
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"scored {total:,} events; {scorer.alerts_raised:,} alerts")
