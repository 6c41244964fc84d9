"""``mamori analytics``: cross-bank campaign analytics (keyed-hash sketches, secure sum, campaign indicators)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mamori.cli.app import app, option_errors
from mamori.errors import ConfigError

if TYPE_CHECKING:
    from mamori.analytics import AnalyticsResult

analytics_app = typer.Typer(help="Privacy-preserving cross-bank campaign analytics.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


def _load_sim(sim: Path) -> dict[str, pl.DataFrame]:
    from mamori.events import read_events

    banks = sorted(p for p in sim.iterdir() if p.is_dir() and p.name.startswith("bank-"))
    out: dict[str, pl.DataFrame] = {}
    for bank in banks:
        logs = sorted(bank.glob("gateway.ecs.jsonl*"))
        if not logs:
            raise ConfigError(f"analytics run --sim {sim}: {bank.name}/ has no gateway.ecs.jsonl; the sketches need "
                              "user names and login outcomes, so write the simulation with `mamori simulate --format "
                              "ecs`, or use --banks to simulate in memory")
        out[bank.name] = read_events(logs[0], organization_id=bank.name).frame
    if not out:
        raise ConfigError(f"analytics run --sim {sim}: no bank-*/ folders found (expected `mamori simulate` output)")
    return out


@analytics_app.command("run")
def run_command(
    sim: Path | None = typer.Option(None, "--sim", help="A `mamori simulate --format ecs` output folder."),
    banks: int = typer.Option(5, "--banks", help="Simulate this many banks in memory (when --sim is not given)."),
    days: int = typer.Option(2, "--days", help="Simulated days."),
    scale: float = typer.Option(0.02, "--scale", help="Simulated customer scale."),
    seed: int = typer.Option(1, "--seed", help="Seed of the simulation, the key and the noise."),
    min_banks: int = typer.Option(3, "--min-banks", "-k", help="Flag items seen at this many banks or more."),
    horizon_hours: float = typer.Option(72.0, "--horizon-hours", help="Look-back of the presence sketches."),
    window_minutes: int = typer.Option(60, "--window-minutes", help="Length of one analytics window."),
    dp_epsilon: float | None = typer.Option(None, "--dp-epsilon", help="Per-window DP epsilon (none by default)."),
    key_hex: str | None = typer.Option(None, "--key", envvar="MAMORI_CONSORTIUM_KEY",
                                       help="Consortium key as hex (random per run when absent)."),
    out: Path | None = typer.Option(None, "--out", help="Write the campaign's STIX objects here (JSON bundle)."),
    push_url: str | None = typer.Option(None, "--push", help="TAXII discovery URL to publish the campaign to."),
    collection: str = typer.Option("shared", "--collection", help="TAXII collection id or alias."),
    member: str | None = typer.Option(None, "--member", envvar="MAMORI_TAXII_MEMBER", help="TAXII member name."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="MAMORI_TAXII_KEY", help="TAXII API key."),
    author: str = typer.Option("mamori cross-bank analytics", "--author",
                               help="Creator identity (the publishing member's organisation when using --push)."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Close the loop: train the next period's detector without and with the "
                                   "campaign-indicator feature and compare (labelled events only)."),
) -> None:
    """Run the windowed protocol over simulated banks and show (and optionally publish) the campaign indicators."""
    import numpy as np

    from mamori.analytics import AnalyticsConfig, ConsortiumKey, campaign_objects, publish_campaign, run_analytics
    from mamori.intel import TaxiiClient, serialize
    from mamori.simulate import SimulationConfig, simulate_consortium

    console = Console(stderr=True)
    try:  # every option is checked before minutes of simulation or loading
        config = AnalyticsConfig(min_banks=min_banks, horizon_hours=horizon_hours, window_minutes=window_minutes,
                                 dp_epsilon=dp_epsilon, seed=seed)
        simulation = None if sim is not None else SimulationConfig(banks=banks, days=days, scale=scale, seed=seed)
    except ValueError as exc:
        raise ConfigError(f"analytics run: invalid option: {option_errors(exc)}") from exc
    key = ConsortiumKey.from_hex(key_hex) if key_hex else ConsortiumKey(np.random.default_rng(seed).bytes(32))
    frames = _load_sim(sim) if sim is not None else simulate_consortium(simulation).events  # type: ignore[arg-type]
    with console.status("secure-summing sketches window by window"):
        result = run_analytics(frames, key, config)
    table = Table(title=f"Cross-bank findings ({len(frames)} banks, {len(result.rounds)} windows, k={min_banks})")
    for col in ("kind", "flagged", "banks", "value"):
        table.add_column(col)
    counts: dict[str, int] = {}
    for f in result.findings.values():
        counts[f.kind] = counts.get(f.kind, 0) + 1
    for kind, n in sorted(counts.items()):
        first = min((f for f in result.findings.values() if f.kind == kind), key=lambda f: f.flagged_at)
        shown = first.value if kind not in ("username", "payee") else key.token(kind, first.value)
        table.add_row(kind, str(n), str(first.banks), f"first: {shown[:60]}")
    Console().print(table)
    objects = campaign_objects(result.findings.values(), name="cross-bank campaign", members=len(frames),
                               config=config, key=key, author=author)
    if out is not None:
        out.write_text(json.dumps({"type": "bundle", "id": "bundle--" + objects[1].id.split("--")[1] if objects
                                   else "bundle--00000000-0000-4000-8000-000000000000",
                                   "objects": [serialize(o) for o in objects]}, indent=1))
        console.print(f"wrote {len(objects)} STIX objects to {out}")
    if loop:
        _closed_loop(frames, result, console)
    if push_url is not None:
        if not member or not api_key:
            raise ConfigError("analytics run --push needs --member and --api-key (or MAMORI_TAXII_MEMBER/_KEY)")
        res = publish_campaign(TaxiiClient(push_url, member, api_key), collection, objects)
        console.print(f"published to {collection}: {res}")


def _closed_loop(frames: dict[str, pl.DataFrame], result: AnalyticsResult, console: Console) -> None:
    from mamori.analytics import evaluate_closed_loop

    if not all("labels.is_attack" in f.columns for f in frames.values()):
        console.print("closed loop: not evaluated (the events carry no labels.is_attack ground truth)")
        return
    stamps = pl.concat([f.select("@timestamp") for f in frames.values()])["@timestamp"]
    split = stamps.min() + (stamps.max() - stamps.min()) / 2  # type: ignore[operator]
    try:
        with console.status("training the next period's detector without and with the campaign feature"):
            rep = evaluate_closed_loop(frames, result.findings.values(), split=split)
    except ConfigError as exc:
        console.print(f"closed loop: not evaluated: {escape(str(exc))}")
        return
    family = "credential_stuffing_low_slow"
    table = Table(title=f"Closed loop: trained before {split:%Y-%m-%d %H:%M}, scored after ({rep.test_rows} events; "
                        f"{rep.campaign_test_hits}/{rep.campaign_test_rows} campaign events match a shared indicator)")
    for col in ("detector", "campaign events", "... matching an indicator", "campaign IPs", "benign events",
                "legit-only IPs"):
        table.add_column(col)
    for name, fig in (("without campaign feature", rep.without), ("with campaign feature", rep.with_feature)):
        table.add_row(name, f"{100 * fig.recall.get(family, 0.0):.1f}%", f"{100 * fig.campaign_hit_recall:.1f}%",
                      f"{100 * fig.campaign_ips:.1f}%", f"{100 * fig.benign_fpr:.2f}%", f"{100 * fig.legit_ips:.2f}%")
    Console().print(table)
