"""What the dashboard pages show: federated results, models, members, ledger, TAXII objects, exports."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mamori.errors import StoreError
from mamori.intel.stix import tlp_of
from mamori.intel.taxii.members import Member, list_members
from mamori.intel.taxii.repository import ObjectQuery, TaxiiRepository, list_collections
from mamori.store import PrivacyLedger, Store
from mamori.store.tables import AuditRow

__all__ = [
    "FlaggedUpdate",
    "IntelObject",
    "csv_export",
    "flagged_updates",
    "intel_objects",
    "last_seen",
    "load_results",
    "member_rounds",
    "nginx_deny_list",
    "rounds_joined",
    "stix_bundle",
    "volume_bucket",
]

logger = logging.getLogger(__name__)

_IP_PATTERN = re.compile(r"^\[(ipv4-addr|ipv6-addr):value\s*=\s*'([^']+)'\]$")


def load_results(results_dir: Path | None) -> dict[str, Any] | None:
    """``results.json`` of a demo or comparison run, or None when there is none.

    Parameters
    ----------
    results_dir : Path or None
        Folder holding ``results.json``.

    Returns
    -------
    dict or None

    Raises
    ------
    StoreError
        When the file exists but is not JSON.
    """
    if results_dir is None:
        return None
    path = results_dir / "results.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"dashboard: cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else None


def volume_bucket(events: int) -> str:
    """A coarse data-volume bucket (members see buckets, not exact counts, of each other).

    Parameters
    ----------
    events : int
        Event count.

    Returns
    -------
    str
        ``"< 10k"``, ``"10k-100k"``, ``"100k-1M"`` or ``"> 1M"``.
    """
    if events < 10_000:
        return "< 10k"
    if events < 100_000:
        return "10k-100k"
    if events < 1_000_000:
        return "100k-1M"
    return "> 1M"


def last_seen(store: Store) -> dict[str, str]:
    """Latest audit-log time per member actor (``member:<name>``).

    Parameters
    ----------
    store : Store
        The open store.

    Returns
    -------
    dict
        Member name to UTC timestamp.
    """
    with store.read() as session:
        rows = session.execute(select(AuditRow.actor, func.max(AuditRow.at)).where(AuditRow.actor.like("member:%"))
                               .group_by(AuditRow.actor))
        return {actor.removeprefix("member:"): at for actor, at in rows}


def members_view(store: Store, viewer: Member) -> list[Member]:
    """Members the viewer may see: every member for an operator, itself otherwise.

    Parameters
    ----------
    store : Store
        The open store.
    viewer : Member
        Who is logged in.

    Returns
    -------
    list of Member
    """
    return list_members(store) if viewer.admin else [viewer]


def ledger_view(store: Store, viewer: Member) -> list[Any]:
    """Privacy-ledger totals: all for an operator, the viewer's own (by name or organisation) otherwise.

    Parameters
    ----------
    store : Store
        The open store.
    viewer : Member
        Who is logged in.

    Returns
    -------
    list of PrivacyTotal
    """
    totals = PrivacyLedger(store).totals()
    if viewer.admin:
        return totals
    return [t for t in totals if t.member in (viewer.name, viewer.organization)]


@dataclass(frozen=True)
class IntelObject:
    """One STIX object as the intelligence pages list it.

    Attributes
    ----------
    collection : str
        Collection title.
    id, type, name : str
        From the object (``name`` falls back to the pattern or the id).
    tlp : str
        TLP 2.0 level.
    date_added : str
        When the TAXII server stored it.
    sightings : int
        Sum of ``count`` of visible sightings of this object.
    body : dict
        The object itself.
    """

    collection: str
    id: str
    type: str
    name: str
    tlp: str
    date_added: str
    sightings: int
    body: dict[str, Any]


def intel_objects(store: Store, viewer: Member, *, api_root: str = "mamori", limit: int = 5000, query: str = "",
                  types: tuple[str, ...] = (), tlp: str = "", collection: str = "") -> list[IntelObject]:
    """The newest version of every object the viewer may read (TAXII TLP rules), newest first, filtered.

    Parameters
    ----------
    store : Store
        The open store.
    viewer : Member
        Who reads (collection grants and TLP visibility are the TAXII server's).
    api_root : str, default="mamori"
        TAXII API root.
    limit : int, default=5000
        Most objects read per collection.
    query : str, default=""
        Case-insensitive text searched in the id, name, pattern and description.
    types : tuple of str, default=()
        Only these STIX types (empty = all).
    tlp : str, default=""
        Only this TLP level (empty = all).
    collection : str, default=""
        Only this collection id or alias (empty = all readable).

    Returns
    -------
    list of IntelObject
    """
    repo = TaxiiRepository(store)
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for c in list_collections(store, api_root):
        if not viewer.may_read(c.id, c.alias) or (collection and collection not in (c.id, c.alias)):
            continue
        page = repo.page(c, viewer, ObjectQuery(limit=limit, versions=("last",)))
        for _seq, _oid, _version, date_added, body in page.rows:
            rows.append((c.title, date_added, body, json.loads(body)))  # type: ignore[arg-type]
    sightings: dict[str, int] = {}
    for _, _, _, obj in rows:
        if obj.get("type") == "sighting":
            ref = obj.get("sighting_of_ref", "")
            sightings[ref] = sightings.get(ref, 0) + int(obj.get("count", 1))
    needle = query.strip().lower()
    out: list[IntelObject] = []
    for title, date_added, body, obj in rows:
        level = tlp_of(obj) or "amber"
        if types and obj.get("type") not in types:
            continue
        if tlp and level != tlp:
            continue
        if needle and needle not in body.lower():
            continue
        name = obj.get("name") or obj.get("pattern") or obj.get("sighting_of_ref") or obj["id"]
        out.append(IntelObject(title, obj["id"], obj.get("type", ""), str(name), level, date_added,
                               sightings.get(obj["id"], 0), obj))
    out.sort(key=lambda o: o.date_added, reverse=True)
    return out


def stix_bundle(objects: list[IntelObject]) -> dict[str, Any]:
    """A STIX 2.1 bundle of the objects.

    Parameters
    ----------
    objects : list of IntelObject
        What to export.

    Returns
    -------
    dict
    """
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [o.body for o in objects]}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text  # no spreadsheet formulas


def csv_export(objects: list[IntelObject]) -> str:
    """The objects as CSV (id, type, name, tlp, pattern, valid_from, date_added, sightings, collection).

    Parameters
    ----------
    objects : list of IntelObject
        What to export.

    Returns
    -------
    str
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "type", "name", "tlp", "pattern", "valid_from", "date_added", "sightings", "collection"])
    for o in objects:
        writer.writerow([_cell(v) for v in (o.id, o.type, o.name, o.tlp, o.body.get("pattern", ""),
                                            o.body.get("valid_from", ""), o.date_added, o.sightings, o.collection)])
    return buf.getvalue()


def nginx_deny_list(objects: list[IntelObject]) -> str:
    """``deny`` lines for every IP/CIDR indicator (addresses re-validated, so the file is safe to include).

    Parameters
    ----------
    objects : list of IntelObject
        What to export; only ``indicator`` objects with a single ``ipv4-addr``/``ipv6-addr`` equality pattern
        are used.

    Returns
    -------
    str
        An nginx include file.
    """
    nets: set[str] = set()
    for o in objects:
        if o.type != "indicator":
            continue
        m = _IP_PATTERN.match(str(o.body.get("pattern", "")).strip())
        if not m:
            continue
        try:
            nets.add(str(ipaddress.ip_network(m.group(2), strict=False)))
        except ValueError:
            logger.warning("skipping indicator %s: %r is not an IP address or network", o.id, m.group(2))
    lines = ["# mamori deny list: IP indicators from the consortium's TAXII collections", *(
        f"deny {n};" for n in sorted(nets, key=lambda s: (ipaddress.ip_network(s).version, ipaddress.ip_network(s))))]
    return "\n".join(lines) + "\n"


def finite(value: Any) -> float | None:
    """A float, or None for missing / NaN / infinite values (templates print a dash).

    Parameters
    ----------
    value : Any
        A number or anything else.

    Returns
    -------
    float or None
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


#: Audit action of a member's update flagged by the per-round update check (``audit_update_check``).
FLAGGED_ACTION = "federation.update_flagged"


def member_rounds(results: dict[str, Any] | None, viewer: Member) -> dict[str, list[dict[str, Any]]]:
    """Per-member metrics per federated round, from the ``members`` rows of ``results.json``'s rounds.

    The rows are :class:`mamori.federation.MemberRound` s as the comparison runner writes them (member,
    train/evaluate status and examples, ``train_loss``, ``loss`` and ``pr_auc`` of the global model on the
    member's evaluation split). An operator gets every member, a member only its own (name or organisation).

    Parameters
    ----------
    results : dict or None
        ``results.json``.
    viewer : Member
        Who is logged in.

    Returns
    -------
    dict
        Member name to its rows in round order, each with ``round`` added; empty when the results hold no
        per-member rows (e.g. a ``results.json`` written before they were recorded).
    """
    rounds = (results or {}).get("regimes", {}).get("federated", {}).get("rounds", [])
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rounds:
        for m in r.get("members") or []:
            name = str(m.get("member", ""))
            if not name or not (viewer.admin or name in (viewer.name, viewer.organization)):
                continue
            out.setdefault(name, []).append({**m, "round": r.get("round"), "loss": finite(m.get("loss")),
                                             "pr_auc": finite(m.get("pr_auc")),
                                             "train_loss": finite(m.get("train_loss"))})
    return dict(sorted(out.items()))


def rounds_joined(results: dict[str, Any] | None) -> dict[str, int]:
    """Training rounds each member took part in (its update arrived: ``train_status == "ok"``).

    Parameters
    ----------
    results : dict or None
        ``results.json``.

    Returns
    -------
    dict
        Member name to rounds joined; members absent from every round's ``members`` rows are absent here.
    """
    rounds = (results or {}).get("regimes", {}).get("federated", {}).get("rounds", [])
    joined: dict[str, int] = {}
    for r in rounds:
        for m in r.get("members") or []:
            name = str(m.get("member", ""))
            joined[name] = joined.get(name, 0) + (1 if m.get("train_status") == "ok" else 0)
    return joined


@dataclass(frozen=True)
class FlaggedUpdate:
    """A member's update the robust aggregation's update check flagged, as the coordinator audited it.

    Attributes
    ----------
    at : str
        When it was audited (UTC).
    member : str
        Whose update.
    round : int or None
        The training round.
    reasons : tuple of str
        Rules that fired: ``norm_high``, ``norm_low``, ``stale``, ``cosine``.
    norm_ratio, cosine : float or None
        The update's norm over the round's median norm; its cosine to the median update.
    excluded : bool
        True when the update was left out of the aggregate, False when only logged.
    """

    at: str
    member: str
    round: int | None
    reasons: tuple[str, ...]
    norm_ratio: float | None
    cosine: float | None
    excluded: bool


def flagged_updates(store: Store, viewer: Member, *, limit: int = 500) -> list[FlaggedUpdate]:
    """Updates flagged by the per-round update check (``federation.update_flagged`` audit entries), newest first.

    Parameters
    ----------
    store : Store
        The open store (the coordinator writes the entries with
        :func:`mamori.federation.audit_update_check`).
    viewer : Member
        An operator sees every member's flags, a member only those on its own updates.
    limit : int, default=500
        Most entries read.

    Returns
    -------
    list of FlaggedUpdate
    """
    with store.read() as session:
        rows = list(session.execute(select(AuditRow.at, AuditRow.subject, AuditRow.details)
                                    .where(AuditRow.action == FLAGGED_ACTION)
                                    .order_by(AuditRow.id.desc()).limit(limit)))
    out = []
    for at, subject, details in rows:
        member = subject.removeprefix("member:")
        if not (viewer.admin or member in (viewer.name, viewer.organization)):
            continue
        try:
            d = json.loads(details)
        except ValueError:
            logger.warning("audit entry %s at %s: details are not JSON; shown without them", FLAGGED_ACTION, at)
            d = {}
        rnd = d.get("round")
        out.append(FlaggedUpdate(at, member, int(rnd) if isinstance(rnd, int) else None,
                                 tuple(str(x) for x in d.get("reasons") or ()), finite(d.get("norm_ratio")),
                                 finite(d.get("cosine")), bool(d.get("excluded"))))
    return out
