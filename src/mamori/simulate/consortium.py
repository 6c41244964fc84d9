"""Simulate a whole consortium (every bank's traffic and the campaign catalogue) and write it to disk."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mamori.errors import ConfigError
from mamori.events import EVENT_SCHEMA, FORMATS, LABEL_COLUMNS, write_events
from mamori.simulate._rows import render_rows
from mamori.simulate.campaigns import CampaignPlan, instantiate, plan_campaigns
from mamori.simulate.config import BankProfile, SimulationConfig, default_bank_profiles
from mamori.simulate.population import benign_traffic, make_context, person_universe

__all__ = [
    "APP_EVENT_COLUMNS",
    "GATEWAY_EXTENSIONS",
    "Consortium",
    "app_events",
    "simulate_bank",
    "simulate_consortium",
    "simulate_to_disk",
    "write_bank",
    "write_consortium",
]

logger = logging.getLogger(__name__)

#: ``progress(message, done, total)``: called once per bank generated or written.
ProgressCallback = Callable[[str, int, int], None]

#: File name suffix of the gateway log per format: ``bank-01/gateway.<ext>``.
GATEWAY_EXTENSIONS: dict[str, str] = {
    "nginx": "nginx.log",
    "alb": "alb.log",
    "envoy": "envoy.log",
    "envoy-json": "envoy.jsonl",
    "ecs": "ecs.jsonl",
}

#: What the bank's application / authentication server logs per request (ECS JSON lines).
APP_EVENT_COLUMNS: tuple[str, ...] = (
    "@timestamp",
    "organization.id",
    "http.request.id",
    "source.ip",
    "source.as.number",
    "source.as.organization.name",
    "source.geo.country_iso_code",
    "url.path",
    "http.request.method",
    "http.request.body.content",
    "user.name",
    "user.id",
    "session.id",
    "device.id",
    "event.action",
    "event.outcome",
    "banking.amount",
    "banking.payee.id",
    "banking.instrument",
)
_APP_KEYS = ("user.name", "user.id", "session.id", "device.id", "event.action", "http.request.body.content")


@dataclass
class Consortium:
    """A simulated consortium: per-bank canonical event frames, bank profiles and the campaign catalogue.

    Attributes
    ----------
    config : SimulationConfig
        What was simulated.
    profiles : list of BankProfile
        One per bank, ``bank-01`` first.
    campaigns : list of CampaignPlan
        The campaign catalogue (which family hit which bank, when, with which parameters).
    events : dict of str to polars.DataFrame
        Bank id -> canonical events (:data:`mamori.events.EVENT_SCHEMA`) sorted by ``@timestamp``,
        ground truth in ``labels.*``.
    """

    config: SimulationConfig
    profiles: list[BankProfile]
    campaigns: list[CampaignPlan]
    events: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def bank_ids(self) -> list[str]:
        """The bank ids, in order."""
        return [p.bank_id for p in self.profiles]

    @property
    def n_events(self) -> int:
        """Total events over all banks."""
        return sum(f.height for f in self.events.values())

    def all_events(self) -> pl.DataFrame:
        """Every bank's events in one frame (bank after bank; ``organization.id`` tells them apart)."""
        return pl.concat([self.events[b] for b in self.bank_ids], rechunk=False)

    def summary(self) -> pl.DataFrame:
        """Events per bank and attack family (``benign`` included).

        Returns
        -------
        polars.DataFrame
            Columns ``organization.id``, ``labels.attack_family``, ``events``.
        """
        return pl.concat([_summary(f) for f in self.events.values()]).sort("organization.id", "labels.attack_family")


def simulate_bank(
    config: SimulationConfig,
    profile: BankProfile,
    campaigns: list[CampaignPlan],
    universe: int,
) -> pl.DataFrame:
    """Generate one bank's canonical events: normal traffic plus every campaign that targets it.

    Parameters
    ----------
    config : SimulationConfig
        The consortium configuration.
    profile : BankProfile
        The bank.
    campaigns : list of CampaignPlan
        The catalogue; only entries targeting this bank are used.
    universe : int
        Size of the consortium's person universe.

    Returns
    -------
    polars.DataFrame
        Canonical events sorted by ``@timestamp``.
    """
    ctx = make_context(config, profile, universe)
    batches = benign_traffic(ctx)
    for plan in campaigns:
        if profile.bank_id in plan.targets:
            rows = instantiate(plan).generate(ctx, plan, config.seed)
            logger.debug("%s: %s %s -> %d rows", profile.bank_id, plan.campaign_id, plan.family, len(rows))
            batches.append(rows)
    frame = render_rows(
        batches,
        bank_id=profile.bank_id,
        domain=profile.domain,
        ua_table=ctx.ua,
        heads=ctx.heads,
        tails=ctx.tails,
        rng=ctx.rng(99),
    )
    logger.info("%s: %d events (%d attack)", profile.bank_id, frame.height, int(frame["labels.is_attack"].sum()))
    return frame


def simulate_consortium(config: SimulationConfig | None = None, progress: ProgressCallback | None = None) -> Consortium:
    """Simulate every bank of a consortium.

    Parameters
    ----------
    config : SimulationConfig, default=None
        What to simulate; ``None`` means ``SimulationConfig()`` (5 banks, 7 days, seed 1).
    progress : callable, default=None
        ``progress(message, done, total)``, called after each bank.

    Returns
    -------
    Consortium
        Per-bank frames, profiles and the campaign catalogue. The same config gives identical frames.

    Raises
    ------
    ConfigError
        If the configuration names unknown banks.

    Examples
    --------
    >>> from mamori.simulate import SimulationConfig, simulate_consortium
    >>> c = simulate_consortium(SimulationConfig(banks=3, days=1, scale=0.005))
    >>> sorted(c.events)
    ['bank-01', 'bank-02', 'bank-03']
    """
    config = config or SimulationConfig()
    profiles = default_bank_profiles(config)
    campaigns = plan_campaigns(config, profiles)
    universe = person_universe(profiles)
    consortium = Consortium(config=config, profiles=profiles, campaigns=campaigns)
    for i, profile in enumerate(profiles):
        consortium.events[profile.bank_id] = simulate_bank(config, profile, campaigns, universe)
        if progress is not None:
            progress(f"simulated {profile.bank_id}", i + 1, len(profiles))
    return consortium


def write_consortium(
    consortium: Consortium,
    out_dir: str | Path,
    fmt: str = "nginx",
    progress: ProgressCallback | None = None,
) -> dict[str, dict[str, Path]]:
    """Write each bank's gateway log, application events and ground truth, plus the catalogue.

    Layout::

        out_dir/
          consortium.json            config, banks, event counts
          campaigns.json             the campaign catalogue
          bank-01/
            profile.json             the bank's profile
            gateway.<ext>            every request in ``fmt`` (see GATEWAY_EXTENSIONS)
            app-events.jsonl         ECS JSON lines of the application/auth server, keyed by http.request.id
            truth.csv                http.request.id + labels.* for every request

    Parameters
    ----------
    consortium : Consortium
        From :func:`simulate_consortium`.
    out_dir : str or pathlib.Path
        Created if missing; files in it are overwritten.
    fmt : str, default="nginx"
        Gateway log format: one of ``nginx``, ``alb``, ``envoy``, ``envoy-json``, ``ecs``.
    progress : callable, default=None
        ``progress(message, done, total)``, called after each bank.

    Returns
    -------
    dict of str to dict of str to pathlib.Path
        Bank id -> ``{"gateway", "app_events", "truth", "profile"}`` paths.

    Raises
    ------
    ConfigError
        If ``fmt`` is not a writable format.
    """
    _check_fmt(fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, dict[str, Path]] = {}
    for i, profile in enumerate(consortium.profiles):
        paths[profile.bank_id] = write_bank(profile, consortium.events[profile.bank_id], out, fmt)
        if progress is not None:
            progress(f"wrote {profile.bank_id}", i + 1, len(consortium.profiles))
    _write_manifest(consortium.config, consortium.campaigns, consortium.summary(), out, fmt)
    return paths


def simulate_to_disk(
    config: SimulationConfig,
    out_dir: str | Path,
    fmt: str = "nginx",
    progress: ProgressCallback | None = None,
) -> pl.DataFrame:
    """Simulate and write one bank at a time (peak memory: the largest bank, not the consortium).

    The files are byte-identical to ``write_consortium(simulate_consortium(config), out_dir, fmt)``.

    Parameters
    ----------
    config : SimulationConfig
        What to simulate.
    out_dir : str or pathlib.Path
        Output directory (layout as :func:`write_consortium`).
    fmt : str, default="nginx"
        Gateway log format.
    progress : callable, default=None
        ``progress(message, done, total)``, called after each bank is generated and after it is written
        (``total`` is twice the number of banks).

    Returns
    -------
    polars.DataFrame
        Events per bank and family, as :meth:`Consortium.summary`.

    Raises
    ------
    ConfigError
        If ``fmt`` is not a writable format or the config names unknown banks.
    """
    _check_fmt(fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    profiles = default_bank_profiles(config)
    campaigns = plan_campaigns(config, profiles)
    universe = person_universe(profiles)
    summaries = []
    total = 2 * len(profiles)
    for i, profile in enumerate(profiles):
        frame = simulate_bank(config, profile, campaigns, universe)
        if progress is not None:
            progress(f"simulated {profile.bank_id}", 2 * i + 1, total)
        write_bank(profile, frame, out, fmt)
        summaries.append(_summary(frame))
        del frame
        if progress is not None:
            progress(f"wrote {profile.bank_id}", 2 * i + 2, total)
    summary = pl.concat(summaries).sort("organization.id", "labels.attack_family")
    _write_manifest(config, campaigns, summary, out, fmt)
    return summary


def write_bank(profile: BankProfile, frame: pl.DataFrame, out_dir: str | Path, fmt: str) -> dict[str, Path]:
    """Write one bank's folder: gateway log, application events, ground truth and profile.

    Parameters
    ----------
    profile : BankProfile
        The bank.
    frame : polars.DataFrame
        Its canonical events.
    out_dir : str or pathlib.Path
        The consortium folder; the bank's folder ``out_dir/<bank_id>`` is created.
    fmt : str
        Gateway log format.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"gateway", "app_events", "truth", "profile"}`` paths.
    """
    _check_fmt(fmt)
    d = Path(out_dir) / profile.bank_id
    d.mkdir(parents=True, exist_ok=True)
    p = {
        "gateway": d / f"gateway.{GATEWAY_EXTENSIONS[fmt]}",
        "app_events": d / "app-events.jsonl",
        "truth": d / "truth.csv",
        "profile": d / "profile.json",
    }
    # ground truth goes to truth.csv only; the logs a detector reads never carry it
    gateway = frame.with_columns([pl.lit(None, dtype=EVENT_SCHEMA[c]).alias(c) for c in LABEL_COLUMNS])
    write_events(gateway, p["gateway"], fmt)
    del gateway
    write_events(app_events(frame), p["app_events"], "ecs")
    frame.select("http.request.id", *LABEL_COLUMNS).write_csv(p["truth"])
    p["profile"].write_text(json.dumps(profile.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    logger.info("%s: wrote %d events to %s", profile.bank_id, frame.height, d)
    return p


def _check_fmt(fmt: str) -> None:
    if fmt not in GATEWAY_EXTENSIONS or fmt not in FORMATS:
        raise ConfigError(f"write_consortium: unknown format {fmt!r}; expected one of {', '.join(GATEWAY_EXTENSIONS)}")


def _summary(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("organization.id", "labels.attack_family").agg(pl.len().alias("events"))


def _write_manifest(
    config: SimulationConfig, campaigns: list[CampaignPlan], summary: pl.DataFrame, out: Path, fmt: str
) -> None:
    """campaigns.json and consortium.json."""
    catalogue = [c.model_dump(mode="json") for c in campaigns]
    (out / "campaigns.json").write_text(json.dumps(catalogue, indent=2, sort_keys=True) + "\n")
    banks: dict[str, dict[str, int]] = {}
    for bank, family, events in summary.sort("organization.id", "labels.attack_family").iter_rows():
        entry = banks.setdefault(bank, {"events": 0, "attacks": 0})
        entry["events"] += events
        if family != "benign":
            entry["attacks"] += events
    manifest = {
        "config": config.model_dump(mode="json"),
        "format": fmt,
        "gateway_file": f"gateway.{GATEWAY_EXTENSIONS[fmt]}",
        "banks": banks,
    }
    (out / "consortium.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def app_events(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows and columns the application/auth server logs (no ground truth).

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical events of one bank.

    Returns
    -------
    polars.DataFrame
        Canonical schema; rows with an identity, action or body; only :data:`APP_EVENT_COLUMNS` non-null.
    """
    keep = pl.any_horizontal([pl.col(c).is_not_null() for c in _APP_KEYS])
    return frame.filter(keep).select(
        [pl.col(c) if c in APP_EVENT_COLUMNS else pl.lit(None, dtype=t).alias(c) for c, t in EVENT_SCHEMA.items()]
    )


def iter_bank_events(config: SimulationConfig | None = None) -> Iterator[tuple[BankProfile, pl.DataFrame]]:
    """Simulate the consortium one bank at a time, yielding each bank's canonical frame.

    Peak memory is the largest bank, not the consortium: callers that turn each bank into something smaller
    (features, summaries) should drop the frame before asking for the next. The frames are identical to
    ``simulate_consortium(config).events``.

    Parameters
    ----------
    config : SimulationConfig, default=None
        What to simulate; ``None`` means ``SimulationConfig()``.

    Yields
    ------
    tuple of (BankProfile, polars.DataFrame)
        The bank's profile and its events sorted by ``@timestamp``.
    """
    config = config or SimulationConfig()
    profiles = default_bank_profiles(config)
    campaigns = plan_campaigns(config, profiles)
    universe = person_universe(profiles)
    for profile in profiles:
        yield profile, simulate_bank(config, profile, campaigns, universe)
