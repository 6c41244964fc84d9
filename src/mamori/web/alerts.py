"""Member alerts for the dashboard: read the detector's JSONL alert files, record verdicts, publish sightings."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mamori.detect.alerts import Alert
from mamori.detect.sightings import alerts_to_stix
from mamori.errors import IntelError, SchemaError
from mamori.events import VerdictLabel
from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.ingest import parse_envelope
from mamori.intel.taxii.members import Member
from mamori.intel.taxii.repository import TaxiiRepository, list_collections
from mamori.store import Store, utc_now

__all__ = ["VERDICTS", "load_alerts", "publish_sightings", "record_verdict", "verdict_labels"]

logger = logging.getLogger(__name__)

VERDICTS = ("confirmed", "false-positive")


def _files(alerts_dir: Path, member: Member) -> tuple[Path, Path]:
    return alerts_dir / f"{member.name}.jsonl", alerts_dir / f"{member.name}.verdicts.jsonl"


def load_alerts(alerts_dir: Path | None, member: Member) -> list[dict[str, Any]]:
    """The member's own alerts, newest first, each with its latest verdict (``verdict``: str or None).

    Parameters
    ----------
    alerts_dir : Path or None
        Folder of ``<member>.jsonl`` alert files; None = no alerts.
    member : Member
        Whose alerts (only its own file is read, so no member sees another's alerts).

    Returns
    -------
    list of dict
        Alerts as :meth:`mamori.detect.Alert.to_dict` wrote them, plus ``verdict``.
    """
    if alerts_dir is None:
        return []
    path, verdicts_path = _files(alerts_dir, member)
    alerts: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                a = json.loads(line)
                alerts[str(a["id"])] = {**a, "verdict": None}
            except (ValueError, KeyError, TypeError):
                logger.warning("%s line %d: not an alert; skipped", path, n)
    if verdicts_path.is_file():
        for line in verdicts_path.read_text(encoding="utf-8").splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if v.get("alert") in alerts:
                alerts[v["alert"]]["verdict"] = v.get("verdict")
    return sorted(alerts.values(), key=lambda a: str(a.get("@timestamp", "")), reverse=True)


def record_verdict(alerts_dir: Path, member: Member, alert_id: str, verdict: str, store: Store) -> None:
    """Append a verdict (the label feedback for the next training round) and audit it.

    Parameters
    ----------
    alerts_dir : Path
        Folder of the alert files.
    member : Member
        Who decides (its own alert).
    alert_id : str
        The alert.
    verdict : {"confirmed", "false-positive"}
        The decision.
    store : Store
        For the audit log.
    """
    _, verdicts_path = _files(alerts_dir, member)
    with verdicts_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"alert": alert_id, "verdict": verdict, "member": member.name, "at": utc_now()}) + "\n")
    store.audit.append(f"member:{member.name}", "dashboard.alert_verdict", f"alert:{alert_id}", {"verdict": verdict})


def _alert(d: dict[str, Any]) -> Alert:
    ms = d.get("max_score")
    return Alert(id=str(d["id"]), timestamp=str(d["@timestamp"]), entity=dict(d.get("entity") or {}),
                 score=float(d.get("score", 0.0)), threshold=float(d.get("threshold", 0.0)), family=d.get("family"),
                 family_similarity=d.get("family_similarity"), top_features=list(d.get("top_features") or []),
                 indicators=list(d.get("indicators") or []), request=dict(d.get("request") or {}),
                 model=dict(d.get("model") or {}), count=int(d.get("count", 1)),
                 max_score=float(ms) if isinstance(ms, (int, float)) else math.nan)


def publish_sightings(store: Store, member: Member, alert: dict[str, Any], *, api_root: str = "mamori",
                      collection: str | None = None, tlp: str = "amber") -> int:
    """Publish a confirmed alert to TAXII as sightings (:func:`mamori.detect.alerts_to_stix`), as the member.

    Parameters
    ----------
    store : Store
        The open store.
    member : Member
        The member confirming its alert (the objects are created by its organisation).
    alert : dict
        The alert as :func:`load_alerts` returns it.
    api_root : str, default="mamori"
        TAXII API root.
    collection : str or None, default=None
        Target collection id or alias; None = the first one the member may write to.
    tlp : str, default="amber"
        TLP level of the objects.

    Returns
    -------
    int
        Objects added (the identity, indicators and sightings already present count as not added).

    Raises
    ------
    IntelError
        When the member may write to no collection (or not to the named one).
    """
    targets = [c for c in list_collections(store, api_root) if member.may_write(c.id, c.alias)
               and (collection is None or collection in (c.id, c.alias))]
    if not targets:
        raise IntelError(f"member {member.name} may not write to "
                         f"{'collection ' + repr(collection) if collection else 'any collection'} of API root "
                         f"{api_root!r}; a confirmed alert cannot be shared as a sighting")
    objects = alerts_to_stix([_alert(alert)], member.organization, tlp=tlp)
    incoming = parse_envelope(json.dumps({"objects": objects}).encode(), TaxiiConfig(validation="library"))
    status = TaxiiRepository(store).add(targets[0], member, incoming, utc_now())
    added = sum(1 for s in status["successes"] if "message" not in s)
    logger.info("alert %s of %s: %d STIX objects published to %s", alert.get("id"), member.name, added, targets[0].id)
    return added


def verdict_labels(alerts_dir: Path | None, member: Member, *, window_seconds: float = 600.0) -> list[VerdictLabel]:
    """The member's alert verdicts as labels for its next training run (the dashboard's label export).

    Each alert with a verdict gives one :class:`mamori.events.VerdictLabel`: the alert's entity
    (``entity.kind`` = ``entity.value``), the window ``[@timestamp, @timestamp + window_seconds)`` - the
    detector folds an entity's further hits within its deduplication window into the alert - and label 1
    for ``confirmed``, 0 for ``false-positive``. Only the latest verdict on an alert counts; labels are in
    the order of those verdicts, so a later one wins where windows overlap.

    Parameters
    ----------
    alerts_dir : Path or None
        Folder of the alert and verdict files; None = no labels.
    member : Member
        Whose alerts (only its own files are read).
    window_seconds : float, default=600.0
        Window length after the alert's first event (``mamori score``'s default deduplication window, 10 min).

    Returns
    -------
    list of VerdictLabel

    Raises
    ------
    SchemaError
        When an alert with a verdict has no usable entity or time (named by alert id).
    """
    if alerts_dir is None:
        return []
    alerts = {a["id"]: a for a in load_alerts(alerts_dir, member) if a.get("verdict") in VERDICTS}
    _, verdicts_path = _files(alerts_dir, member)
    order: dict[str, int] = {}
    if verdicts_path.is_file():
        for n, line in enumerate(verdicts_path.read_text(encoding="utf-8").splitlines()):
            try:
                order[str(json.loads(line).get("alert"))] = n
            except (ValueError, AttributeError):
                continue
    out = []
    for alert_id in sorted(alerts, key=lambda a: order.get(a, -1)):
        a = alerts[alert_id]
        entity = a.get("entity") or {}
        try:
            start = datetime.fromisoformat(str(a["@timestamp"]))
        except (KeyError, ValueError) as exc:
            raise SchemaError(f"verdict_labels: alert {alert_id!r} of {member.name} has no ISO 8601 "
                              "'@timestamp'; it cannot be turned into a label.") from exc
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
        if not entity.get("kind") or entity.get("value") is None:
            raise SchemaError(f"verdict_labels: alert {alert_id!r} of {member.name} has no entity kind/value; "
                              "it cannot be turned into a label.")
        confirmed = a["verdict"] == "confirmed"
        out.append(VerdictLabel(kind=str(entity["kind"]), value=str(entity["value"]), start=start,
                                end=start + timedelta(seconds=window_seconds), label=1 if confirmed else 0,
                                family=a.get("family") if confirmed else None, alert_id=alert_id,
                                verdict=a["verdict"]))
    return out
