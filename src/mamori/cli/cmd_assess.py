"""``mamori assess``: the adversarial-vulnerability assessment of a scoring model (HTML, PDF, JSON)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from mamori.assess import AssessConfig, find_chromium, load_demo, run_assessment, write_assessment
from mamori.cli.app import app
from mamori.detect.loading import resolve_model
from mamori.errors import ConfigError
from mamori.events import read_event_parquet

SIM_PREFIX = "sim:"


def _load_events(data: str) -> pl.DataFrame:
    """Read labelled canonical events: a Parquet file, a directory of them, or ``sim:BANKS,DAYS,SCALE[,SEED]``."""
    if data.startswith(SIM_PREFIX):
        from mamori.simulate import SimulationConfig, iter_bank_events

        try:
            parts = [float(p) for p in data[len(SIM_PREFIX):].split(",")]
            banks, days, scale = int(parts[0]), int(parts[1]), parts[2]
            seed = int(parts[3]) if len(parts) > 3 else 1
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"--data {data!r}: expected sim:BANKS,DAYS,SCALE[,SEED], e.g. sim:2,2,0.02.") from exc
        sim = SimulationConfig(banks=banks, days=days, scale=scale, seed=seed)
        return pl.concat([events for _profile, events in iter_bank_events(sim)], how="vertical_relaxed")
    path = Path(data)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise ConfigError(f"--data {path}: the directory holds no .parquet files of labelled events.")
        return read_event_parquet(files, where="--data")
    if path.is_file() and path.suffix == ".parquet":
        return read_event_parquet([path], where="--data")
    raise ConfigError(
        f"--data {data}: expected a Parquet file or directory of labelled canonical events, or "
        "sim:BANKS,DAYS,SCALE[,SEED] to simulate them."
    )


def _load_json(path: Path | None, what: str) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--{what} {path}: cannot read it as JSON ({exc}).") from exc


def _command_line(ctx: click.Context) -> str:
    """The command as the user gave it (options set on the command line only), for the red-team record."""
    parts = ctx.command_path.split()
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if param.is_flag:
            parts.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
        else:
            parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


@app.command("assess")
def assess_command(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", "-m", help="Scoring-model bundle (.npz, ScoringModel.save())."),
    data: str | None = typer.Option(None, "--data", "-d",
                                    help="Labelled events: .parquet file/directory, or sim:BANKS,DAYS,SCALE[,SEED]."),
    demo: Path | None = typer.Option(None, "--demo",
                                     help="A 'mamori demo --out DIR' folder: its federated model, events, store."),
    member: str | None = typer.Option(None, "--member", help="With --demo: whose bundle (threshold) evasion attacks."),
    out: Path = typer.Option(Path("mamori-out/assessment"), "--out", "-o", help="Output directory."),
    db: str | None = typer.Option(None, "--db", envvar="MAMORI_DB",
                                  help="Store with the model registry and audit log (round hashes, audit check)."),
    pki: Path | None = typer.Option(None, "--pki", help="The consortium's PKI directory (mamori pki init --dir)."),
    poisoning: Path | None = typer.Option(None, "--poisoning",
                                          help="poisoning.json from benchmarks/poisoning.py (else measured here)."),
    measure_poisoning: bool = typer.Option(True, "--measure-poisoning/--no-measure-poisoning",
                                           help="Without --poisoning, run the small poisoning experiment."),
    privacy: Path | None = typer.Option(None, "--privacy",
                                        help="Membership-inference audit JSON (else measured if membership is known)."),
    n_evasion: int = typer.Option(200, "--n-evasion", min=1, help="Alerted attacks attacked by PGD and mimicry."),
    n_hopskipjump: int = typer.Option(20, "--n-hopskipjump", min=1, help="Attacks attacked by HopSkipJump."),
    seed: int = typer.Option(0, "--seed", help="Seeds every sample and attack."),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Print assessment.pdf with headless Chromium if installed."),
    harden: bool = typer.Option(False, "--harden", help="Fine-tune with constrained adversarial examples; compare."),
    quick: bool = typer.Option(False, "--quick", help="Small budgets for CI (AssessConfig.quick()); noisier figures."),
) -> None:
    """Assess a model's adversarial robustness: performance, evasion, poisoning, privacy, controls, findings."""
    console = Console(stderr=True)
    base = (AssessConfig.quick(seed=seed) if quick
            else AssessConfig(n_evasion=n_evasion, n_hopskipjump=n_hopskipjump, seed=seed))
    config = base if measure_poisoning else base.model_copy(update={"poisoning": None})
    extra: dict = {}
    if demo is not None:
        if data is not None or model is not None:
            raise ConfigError("--demo DIR brings its own model and events; do not combine it with --model or --data.")
        with console.status(f"reading the demo in {demo} and re-simulating its events"):
            inputs = load_demo(demo, member=member)
        scoring, events = inputs.model, inputs.events
        db = db or inputs.db
        extra = {"member_thresholds": inputs.member_thresholds, "train_until": inputs.train_until,
                 "federation": inputs.federation}
    else:
        if data is None:
            raise ConfigError("mamori assess: pass --data EVENTS (with --model and/or --db), or --demo DIR.")
        scoring, _registry = resolve_model(model, db=db)
        with console.status("reading events"):
            events = _load_events(data)
    out.mkdir(parents=True, exist_ok=True)
    with console.status(f"assessing {scoring.name} v{scoring.version} on {events.height:,} events") as status:
        result = run_assessment(scoring, events, config, db=db, poisoning=_load_json(poisoning, "poisoning"),
                                privacy=_load_json(privacy, "privacy"), command=_command_line(ctx),
                                harden_to=(out / "hardened-model.npz") if harden else None, pki_dir=pki,
                                progress=lambda step: status.update(f"assessing: {step}"), **extra)
    with console.status("writing the report"):
        paths = write_assessment(result, out, pdf=pdf)
    table = Table("severity", "finding", "evidence", title="findings")
    for f in result["findings"]:
        table.add_row(f["severity"], f["title"], f["evidence"])
    console.print(table)
    if result.get("hardening"):
        h = result["hardening"]
        console.print(
            f"hardening: evasion at full effort {h['before']['evasion'][-1]['success_rate']:.1%} -> "
            f"{h['after']['evasion'][-1]['success_rate']:.1%}, FPR {h['before']['fpr']:.2%} -> {h['after']['fpr']:.2%}"
            f"; hardened model {h['model_path']}"
        )
    console.print(f"wrote {paths['json']}")
    console.print(f"wrote {paths['html']}")
    if paths["pdf"] is not None:
        console.print(f"wrote {paths['pdf']}")
    elif not pdf:
        console.print("assessment.pdf not written (--no-pdf).")
    elif find_chromium() is None:
        console.print("[yellow]assessment.pdf not written: no Chromium found (apt-get install chromium).[/yellow]")
    else:
        console.print("[yellow]assessment.pdf not written: Chromium failed (see the log).[/yellow]")
