"""Turn findings into STIX campaign indicators and publish them to the consortium's TAXII collection."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from mamori.analytics.config import AnalyticsConfig
from mamori.analytics.engine import Finding
from mamori.analytics.keys import ConsortiumKey
from mamori.intel import (
    PushResult,
    TaxiiClient,
    asn_indicator,
    campaign,
    identity,
    ip_indicator,
    relationship,
    tls_fingerprint_indicator,
    user_agent_indicator,
)

__all__ = ["campaign_objects", "confidence_of", "publish_campaign"]

logger = logging.getLogger(__name__)

_BUILDERS = {
    "ip": ip_indicator,
    "net24": ip_indicator,
    "asn": asn_indicator,
    "user_agent": user_agent_indicator,
    "ja3": tls_fingerprint_indicator,
}


def confidence_of(banks: int, members: int) -> int:
    """STIX confidence (0-100) from the number of banks that saw an item.

    Parameters
    ----------
    banks : int
        Estimated banks.
    members : int
        Consortium size.

    Returns
    -------
    int
        50 at 2 banks, rising to 95 when every member saw it.
    """
    share = min(1.0, max(0.0, (banks - 2) / max(1, members - 2)))
    return int(round(50 + 45 * share))


def campaign_objects(findings: Iterable[Finding], *, name: str, members: int, config: AnalyticsConfig | None = None,
                     key: ConsortiumKey | None = None, author: str = "mamori cross-bank analytics",
                     now: dt.datetime | None = None) -> list[Any]:
    """Build the STIX objects of one cross-bank campaign: indicators, the campaign, ``indicates`` relationships.

    Every object is TLP:AMBER. Indicators are valid from their flag time for ``config.valid_hours``. Usernames
    and payees are never published in clear: with ``key`` the campaign description lists how many there are
    and their keyed-hash tokens (members re-hash their own values to match).

    Parameters
    ----------
    findings : iterable of Finding
        What the members resolved.
    name : str
        Campaign name.
    members : int
        Consortium size (for confidence).
    config : AnalyticsConfig or None, default=None
        Settings (indicator kinds, validity).
    key : ConsortiumKey or None, default=None
        To tokenise usernames and payees.
    author : str, default="mamori cross-bank analytics"
        Name of the authoring identity. A mamori TAXII server accepts only objects created by the publishing
        member's own organisation, so pass that organisation's name when publishing.
    now : datetime or None, default=None
        Creation time of the campaign (for reproducible output).

    Returns
    -------
    list
        stix2 objects: the identity, the campaign, indicators, relationships.
    """
    config = config or AnalyticsConfig()
    findings = list(findings)
    me = identity(author)
    if not findings:
        return []
    first = min(f.first_seen for f in findings)
    last = max(f.last_seen for f in findings)
    banks = max(f.banks for f in findings)
    tokens = [key.token(f.kind, f.value) for f in findings if key and f.kind in ("username", "payee")]
    description = (f"Seen at {banks} member banks by secure-summed keyed-hash sketches; {len(findings)} items "
                   f"flagged ({sum(f.kind == 'ip' for f in findings)} source IPs).")
    context = [f"{f.kind}={f.value}" for f in findings
               if f.kind in ("asn", "user_agent", "ja3", "net24") and f.kind not in config.indicator_kinds]
    if context:
        description += f" Also common to the campaign (context, not indicators): {'; '.join(context[:50])}."
    if tokens:
        description += f" Keyed-hash tokens of targeted usernames/payees: {', '.join(tokens[:200])}"
    camp = campaign(name, description=description, first_seen=first, last_seen=max(last, first),
                    created_by=me, tlp="amber", confidence=confidence_of(banks, members))
    objects: list[Any] = [me, camp]
    for f in findings:
        build = _BUILDERS.get(f.kind)
        if build is None or f.kind not in config.indicator_kinds:
            continue
        valid_from = f.flagged_at
        ind = build(f.value, created_by=me, tlp="amber", confidence=confidence_of(f.banks, members),
                    valid_from=valid_from, valid_until=valid_from + dt.timedelta(hours=config.valid_hours),
                    labels=["cross-bank", f"banks:{f.banks}", f"kind:{f.kind}"],
                    description=(f"{f.kind} seen failing logins at {f.banks} member banks between "
                                 f"{f.first_seen.isoformat()} and {f.last_seen.isoformat()}"))
        objects.append(ind)
        objects.append(relationship(ind, "indicates", camp, created_by=me, tlp="amber"))
    logger.info("campaign %r: %d objects", name, len(objects))
    return objects


def publish_campaign(client: TaxiiClient, collection: str, objects: Iterable[Any]) -> PushResult:
    """Push campaign objects to the consortium collection.

    Parameters
    ----------
    client : TaxiiClient
        A member's client (write access to ``collection``).
    collection : str
        Collection id or alias (e.g. ``shared``).
    objects : iterable
        From :func:`campaign_objects`.

    Returns
    -------
    PushResult
    """
    return client.push(collection, list(objects))
