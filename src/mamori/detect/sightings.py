"""Turn confirmed alerts into STIX 2.1 sightings for the consortium (``--emit-stix``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mamori.detect.alerts import Alert
from mamori.errors import IntelError
from mamori.intel import identity, ip_indicator, serialize, sighting

__all__ = ["alerts_to_stix"]

logger = logging.getLogger(__name__)


def alerts_to_stix(alerts: Iterable[Alert], member: str, *, tlp: str = "amber",
                   min_score: float | None = None) -> list[dict[str, Any]]:
    """STIX objects for confirmed alerts: a sighting of each matched shared indicator, and of the source IP.

    Parameters
    ----------
    alerts : iterable of Alert
        Confirmed alerts.
    member : str
        The member bank that saw them (its ``identity``).
    tlp : str, default="amber"
        TLP 2.0 level of the indicators and sightings.
    min_score : float or None, default=None
        Only alerts whose score exceeds this (None: all).

    Returns
    -------
    list of dict
        Serialised STIX objects: the member identity, one indicator per alerting source IP (deterministic id:
        the same IP seen by several members gives the same indicator), and one sighting per (indicator,
        member), its ``count`` the number of events, ``first_seen``/``last_seen`` the alert times. No customer
        identifier (user, session) ever enters these objects.

    Raises
    ------
    IntelError
        If an object cannot be built.
    """
    me = identity(member)
    objects: dict[str, Any] = {me.id: me}
    seen: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        if min_score is not None and alert.score <= min_score:
            continue
        targets: list[str] = [str(m["id"]) for m in alert.indicators if m.get("id")]
        ip = alert.entity.get("source.ip")
        if ip:
            try:
                ind = ip_indicator(str(ip), name=f"Source of {alert.family or 'attack'} traffic", tlp=tlp)
            except IntelError:
                logger.debug("alert %s: source is not an IP; no indicator", alert.id)
            else:
                objects.setdefault(ind.id, ind)
                targets.append(ind.id)
        for target in targets:
            entry = seen.setdefault(target, {"count": 0, "first": alert.timestamp, "last": alert.timestamp})
            entry["count"] += alert.count
            entry["first"] = min(entry["first"], alert.timestamp)
            entry["last"] = max(entry["last"], alert.timestamp)
    for target, entry in seen.items():
        s = sighting(target, observed_by=me, count=entry["count"], first_seen=entry["first"],
                     last_seen=entry["last"], tlp=tlp)
        objects[s.id] = s
    return [serialize(o) for o in objects.values()]
