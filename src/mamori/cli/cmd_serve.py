"""``mamori serve``: the scoring HTTP API."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mamori.cli.app import app, option_errors
from mamori.detect import JsonlAlertSink, Scorer, ScoringConfig, WebhookAlertSink
from mamori.detect.api import ServiceConfig, create_app, serve
from mamori.detect.loading import load_indicators, resolve_model
from mamori.detect.service import ModelWatcher, ScoringService
from mamori.errors import ConfigError


@app.command("serve")
def serve_command(
    model: Path | None = typer.Option(None, "--model", "-m", help="Scoring-model bundle (.npz)."),
    db: str | None = typer.Option(None, "--db", envvar="MAMORI_DB",
                                  help="Model registry store URL: serve its latest model and hot-reload new ones."),
    name: str | None = typer.Option(None, "--name", help="Model name in the registry."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8080, help="TCP port."),
    alerts: Path | None = typer.Option(Path("alerts.jsonl"), "--alerts", "-a", help="JSON-lines alert file."),
    webhook: str | None = typer.Option(None, "--webhook", help="Also POST each alert (JSON) to this URL."),
    indicators: Path | None = typer.Option(None, "--indicators",
                                           help="Shared indicators (STIX JSON) to match; also the campaign feature "
                                                "of models that read it."),
    reload_interval: float = typer.Option(5.0, "--reload-interval", help="Seconds between model-source polls."),
    max_body_bytes: int = typer.Option(5 * 1024 * 1024, "--max-body-bytes", help="Largest request body."),
    horizon: str = typer.Option("24h", "--horizon", help="How far back per-entity window state reaches."),
    max_state_events: int = typer.Option(100_000, "--max-state-events", help="Window-state budget in events."),
    dedup_window: str = typer.Option("10m", "--dedup-window", help="One alert per entity per this window."),
    incremental: bool = typer.Option(True, "--incremental/--window-state",
                                     help="Features from per-entity aggregates updated per event (fast), or by "
                                          "re-extracting over retained events per micro-batch."),
    max_entities: int = typer.Option(1_000_000, "--max-entities",
                                     help="With --incremental: entities held per kind (least recently seen go)."),
    certfile: str | None = typer.Option(None, help="TLS certificate (PEM)."),
    keyfile: str | None = typer.Option(None, help="TLS private key (PEM)."),
) -> None:
    """Serve POST /v1/score, GET /v1/model, /healthz, /metrics and the OpenAPI spec (/openapi.json)."""
    try:
        config = ScoringConfig(horizon=horizon, max_state_events=max_state_events, dedup_window=dedup_window,
                               incremental=incremental, max_entities=max_entities)
        service_config = ServiceConfig(max_body_bytes=max_body_bytes, reload_interval=reload_interval)
    except ValueError as exc:
        raise ConfigError(f"mamori serve: invalid option: {option_errors(exc)}") from exc
    bundle, registry = resolve_model(model, db=db, name=name)
    sinks: list[JsonlAlertSink | WebhookAlertSink] = []
    if alerts is not None:
        sinks.append(JsonlAlertSink(alerts))
    if webhook:
        sinks.append(WebhookAlertSink(webhook))
    scorer = Scorer(bundle, config, indicators=load_indicators(indicators), sinks=sinks)
    service = ScoringService(scorer)
    watcher = ModelWatcher(service, model_path=model if registry is None else None, registry=registry,
                           name=name or bundle.name, interval=reload_interval)
    Console(stderr=True).print(
        f"scoring API on http://{host}:{port}/ (model {bundle.name} v{bundle.version}, "
        f"{scorer.model_sha256[:12]}); OpenAPI at /openapi.json"
    )
    try:
        serve(create_app(service, service_config, watcher), host=host, port=port, certfile=certfile, keyfile=keyfile)
    finally:
        for s in sinks:
            s.close()
