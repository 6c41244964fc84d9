"""STIX 2.1 builders for what mamori shares, TLP 2.0 markings, validation and deduplication.

Every builder returns a ``stix2`` object. Identifiers are deterministic (UUIDv5 over what makes the object
the same thing), so publishing the same indicator twice names the same object; :func:`merge` then turns
the second publication into a new *version* of it, and sightings of one indicator by one observer
accumulate their ``count`` instead of piling up.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import stix2
from stix2.exceptions import STIXError

from mamori.errors import IntelError
from mamori.intel._validator import certainly_valid

__all__ = [
    "MAMORI_NAMESPACE",
    "OAT_CATALOG",
    "TLP_AMBER",
    "TLP_AMBER_STRICT",
    "TLP_CLEAR",
    "TLP_GREEN",
    "TLP_LEVELS",
    "TLP_MARKINGS",
    "TLP_RED",
    "asn_indicator",
    "attack_pattern",
    "campaign",
    "domain_indicator",
    "identity",
    "indicator",
    "ip_indicator",
    "merge",
    "parse_object",
    "pattern_shape",
    "relationship",
    "serialize",
    "sighting",
    "latest_versions",
    "tlp_of",
    "tls_fingerprint_indicator",
    "to_datetime",
    "url_indicator",
    "user_agent_indicator",
    "validate_object",
    "validate_pattern",
]

logger = logging.getLogger(__name__)

MAMORI_NAMESPACE = uuid.UUID("6d616d6f-7269-5f73-7469-785f6e733031")
"""UUIDv5 namespace of mamori's deterministic STIX identifiers."""

TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# TLP 1.0 markings predefined by STIX 2.1, read as their TLP 2.0 equivalents.
_TLP1_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")
"""TLP 2.0 levels from least to most restrictive."""


def _tlp_marking(level: str) -> stix2.MarkingDefinition:
    return stix2.MarkingDefinition(
        id=_TLP2_IDS[level],
        created="2022-10-01T00:00:00.000Z",
        name=f"TLP:{level.upper()}",
        extensions={TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    )


TLP_CLEAR = _tlp_marking("clear")
TLP_GREEN = _tlp_marking("green")
TLP_AMBER = _tlp_marking("amber")
TLP_AMBER_STRICT = _tlp_marking("amber+strict")
TLP_RED = _tlp_marking("red")
TLP_MARKINGS: dict[str, stix2.MarkingDefinition] = {
    "clear": TLP_CLEAR, "green": TLP_GREEN, "amber": TLP_AMBER, "amber+strict": TLP_AMBER_STRICT, "red": TLP_RED,
}
_ID_TO_TLP = {v: k for k, v in _TLP2_IDS.items()} | _TLP1_IDS

# OWASP Automated Threats to Web Applications used by mamori, with CAPEC entries that describe them.
OAT_CATALOG: dict[str, tuple[str, tuple[str, ...]]] = {
    "OAT-001": ("Carding", ()),
    "OAT-007": ("Credential Cracking", ("CAPEC-49", "CAPEC-16", "CAPEC-565")),
    "OAT-008": ("Credential Stuffing", ("CAPEC-600",)),
    "OAT-011": ("Scraping", ()),
    "OAT-014": ("Vulnerability Scanning", ()),
    "OAT-018": ("Footprinting", ()),
    "OAT-019": ("Account Creation", ()),
}
_OAT_URL = "https://owasp.org/www-project-automated-threats-to-web-applications/"


def _det_id(stix_type: str, *parts: str) -> str:
    return f"{stix_type}--{uuid.uuid5(MAMORI_NAMESPACE, '|'.join((stix_type, *parts)))}"


def _ref(obj: Any) -> str:
    """The id of a stix2 object, a dict or an id string."""
    if isinstance(obj, str):
        return obj
    try:
        return str(obj["id"])
    except (KeyError, TypeError) as exc:
        raise IntelError(f"expected a STIX object or an id string, got {type(obj).__name__}") from exc


def _markings(tlp: str | None) -> list[str] | None:
    if tlp is None:
        return None
    level = tlp.lower().removeprefix("tlp:")
    if level == "white":
        level = "clear"
    if level not in _TLP2_IDS:
        raise IntelError(f"unknown TLP level {tlp!r}; expected one of {', '.join(TLP_LEVELS)}")
    return [_TLP2_IDS[level]]


def _build(cls: type, **kwargs: Any) -> Any:
    """Call a stix2 constructor, dropping None values and translating its errors."""
    confidence = kwargs.get("confidence")
    if confidence is not None and not (isinstance(confidence, int) and 0 <= confidence <= 100):
        raise IntelError(f"cannot build a STIX {cls.__name__}: confidence must be an integer 0-100, got {confidence!r}")
    clean = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return cls(**clean)
    except (STIXError, ValueError, TypeError) as exc:
        raise IntelError(f"cannot build a STIX {cls.__name__}: {exc}") from exc


def tlp_of(obj: Mapping[str, Any] | Any) -> str | None:
    """The TLP 2.0 level an object is marked with (the most restrictive if several), or None.

    Parameters
    ----------
    obj : mapping or stix2 object
        Any STIX object; TLP 1.0 markings count as their TLP 2.0 equivalents (WHITE = CLEAR).

    Returns
    -------
    str or None
        One of :data:`TLP_LEVELS`, or None when unmarked.
    """
    refs = obj.get("object_marking_refs") or []
    levels = [_ID_TO_TLP[r] for r in refs if r in _ID_TO_TLP]
    if not levels:
        return None
    return max(levels, key=TLP_LEVELS.index)


def identity(name: str, *, identity_class: str = "organization", sectors: Sequence[str] = ("financial-services",),
             description: str | None = None, contact_information: str | None = None) -> stix2.Identity:
    """An ``identity`` for a consortium member (one id per name).

    Parameters
    ----------
    name : str
        Member name, e.g. ``"Bank A"``.
    identity_class : str, default="organization"
        STIX identity class.
    sectors : sequence of str, default=("financial-services",)
        Industry sectors (STIX open vocabulary).
    description, contact_information : str or None, default=None
        Free text.

    Returns
    -------
    stix2.Identity
    """
    return _build(stix2.Identity, id=_det_id("identity", name), name=name, identity_class=identity_class,
                  sectors=list(sectors) or None, description=description, contact_information=contact_information,
                  created="2020-01-01T00:00:00.000Z", modified="2020-01-01T00:00:00.000Z")


def indicator(pattern: str, *, name: str, description: str | None = None, created_by: Any = None,
              tlp: str | None = "amber", confidence: int | None = None, valid_from: datetime | str | None = None,
              valid_until: datetime | str | None = None, indicator_types: Sequence[str] = ("malicious-activity",),
              labels: Sequence[str] | None = None, external_references: Sequence[Mapping[str, Any]] | None = None,
              ) -> stix2.Indicator:
    """An ``indicator`` with a STIX pattern; the same pattern from the same author gets the same id.

    Parameters
    ----------
    pattern : str
        STIX 2.1 pattern, e.g. ``"[ipv4-addr:value = '203.0.113.7']"`` (validated by ``stix2``).
    name : str
        Short human-readable name.
    description : str or None, default=None
        Longer explanation (what was seen, why it matters).
    created_by : Identity, str or None, default=None
        The authoring member (its identity or identity id).
    tlp : str or None, default="amber"
        TLP 2.0 level (``clear``, ``green``, ``amber``, ``amber+strict``, ``red``) or None for no marking.
    confidence : int or None, default=None
        0-100.
    valid_from : datetime or str or None, default=None
        Start of validity; now when None.
    valid_until : datetime or str or None, default=None
        When the indicator expires (must be after ``valid_from``).
    indicator_types : sequence of str, default=("malicious-activity",)
        STIX open vocabulary.
    labels : sequence of str or None, default=None
        Free labels.
    external_references : sequence of mapping or None, default=None
        References (OWASP OAT, CAPEC, reports).

    Returns
    -------
    stix2.Indicator

    Raises
    ------
    IntelError
        When the pattern is invalid, ``confidence`` is outside 0-100 or ``valid_until`` is not after
        ``valid_from``.
    """
    author = _ref(created_by) if created_by is not None else None
    return _build(stix2.Indicator, id=_det_id("indicator", author or "", pattern), pattern=pattern,
                  pattern_type="stix", name=name, description=description or name, created_by_ref=author,
                  object_marking_refs=_markings(tlp), confidence=confidence,
                  valid_from=valid_from or datetime.now(UTC), valid_until=valid_until,
                  indicator_types=list(indicator_types), labels=list(labels) if labels else None,
                  external_references=list(external_references) if external_references else None)


def _quote(value: str) -> str:
    """Escape a string for a STIX pattern literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ip_indicator(ip: str, **kwargs: Any) -> stix2.Indicator:
    """An indicator for one IPv4/IPv6 address or network (CIDR).

    Parameters
    ----------
    ip : str
        ``"203.0.113.7"``, ``"2001:db8::1"`` or ``"198.51.100.0/24"``.
    **kwargs
        Passed to :func:`indicator` (``name`` defaults to ``"Malicious IP <ip>"``).

    Returns
    -------
    stix2.Indicator

    Raises
    ------
    IntelError
        When ``ip`` is not an address or network.
    """
    try:
        net = ipaddress.ip_network(ip, strict=False)
    except ValueError as exc:
        raise IntelError(f"ip_indicator: {ip!r} is not an IPv4/IPv6 address or CIDR network") from exc
    text = str(net.network_address) if net.num_addresses == 1 else str(net)
    kind = "ipv4-addr" if net.version == 4 else "ipv6-addr"
    kwargs.setdefault("name", f"Malicious IP {text}")
    return indicator(f"[{kind}:value = {_quote(text)}]", **kwargs)


def asn_indicator(asn: int | str, **kwargs: Any) -> stix2.Indicator:
    """An indicator for an autonomous system (e.g. a proxy or hosting network used by an attack).

    Parameters
    ----------
    asn : int or str
        AS number (``64500`` or ``"AS64500"``).
    **kwargs
        Passed to :func:`indicator`.

    Returns
    -------
    stix2.Indicator
    """
    try:
        number = int(str(asn).upper().removeprefix("AS"))
    except ValueError as exc:
        raise IntelError(f"asn_indicator: {asn!r} is not an AS number") from exc
    if not 0 < number < 2**32:
        raise IntelError(f"asn_indicator: AS number {number} is outside 1..4294967295")
    kwargs.setdefault("name", f"Malicious traffic from AS{number}")
    return indicator(f"[autonomous-system:number = {number}]", **kwargs)


def user_agent_indicator(user_agent: str, **kwargs: Any) -> stix2.Indicator:
    """An indicator for an HTTP ``User-Agent`` string (scripted clients, attack tools).

    Parameters
    ----------
    user_agent : str
        The exact header value.
    **kwargs
        Passed to :func:`indicator`.

    Returns
    -------
    stix2.Indicator
    """
    if not user_agent:
        raise IntelError("user_agent_indicator: the user agent is empty")
    kwargs.setdefault("name", "Malicious user agent")
    pattern = f"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = {_quote(user_agent)}]"
    return indicator(pattern, **kwargs)


def tls_fingerprint_indicator(fingerprint: str, *, kind: str = "ja3", **kwargs: Any) -> stix2.Indicator:
    """An indicator for a TLS client fingerprint (JA3 MD5 or JA4 string).

    STIX has no TLS-fingerprint property, so the pattern uses mamori's custom network-traffic extension
    ``x-mamori-tls-ext`` (``ja3`` / ``ja4``).

    Parameters
    ----------
    fingerprint : str
        The fingerprint.
    kind : {"ja3", "ja4"}, default="ja3"
        Which fingerprint.
    **kwargs
        Passed to :func:`indicator`.

    Returns
    -------
    stix2.Indicator
    """
    if kind not in ("ja3", "ja4"):
        raise IntelError(f"tls_fingerprint_indicator: kind must be 'ja3' or 'ja4', got {kind!r}")
    if not fingerprint:
        raise IntelError("tls_fingerprint_indicator: the fingerprint is empty")
    kwargs.setdefault("name", f"Malicious TLS client ({kind.upper()})")
    return indicator(f"[network-traffic:extensions.'x-mamori-tls-ext'.{kind} = {_quote(fingerprint)}]", **kwargs)


def url_indicator(url: str, **kwargs: Any) -> stix2.Indicator:
    """An indicator for a URL (e.g. a phishing page imitating a bank or brokerage).

    Parameters
    ----------
    url : str
        The full URL.
    **kwargs
        Passed to :func:`indicator` (``indicator_types`` defaults to ``("phishing",)``... via kwargs).

    Returns
    -------
    stix2.Indicator
    """
    if "://" not in url:
        raise IntelError(f"url_indicator: {url!r} is not an absolute URL")
    kwargs.setdefault("name", "Phishing URL")
    kwargs.setdefault("indicator_types", ("malicious-activity", "attribution"))
    return indicator(f"[url:value = {_quote(url)}]", **kwargs)


def domain_indicator(domain: str, **kwargs: Any) -> stix2.Indicator:
    """An indicator for a domain name (e.g. a phishing site's domain).

    Parameters
    ----------
    domain : str
        The domain, e.g. ``"login-secure-bank.example"``.
    **kwargs
        Passed to :func:`indicator`.

    Returns
    -------
    stix2.Indicator
    """
    domain = domain.strip().rstrip(".").lower()
    if not domain or " " in domain or "/" in domain:
        raise IntelError(f"domain_indicator: {domain!r} is not a domain name")
    kwargs.setdefault("name", f"Phishing domain {domain}")
    return indicator(f"[domain-name:value = {_quote(domain)}]", **kwargs)


def sighting(sighting_of: Any, *, observed_by: Any, count: int = 1, first_seen: datetime | str | None = None,
             last_seen: datetime | str | None = None, tlp: str | None = "amber", confidence: int | None = None,
             description: str | None = None) -> stix2.Sighting:
    """A ``sighting`` of an indicator (or attack pattern, campaign) by one member.

    The id depends only on what was sighted and who saw it, so later sightings are merged (see
    :func:`merge`) into new versions whose ``count`` accumulates.

    Parameters
    ----------
    sighting_of : stix2 object or str
        What was seen.
    observed_by : Identity or str
        The member that saw it (``created_by_ref`` and ``where_sighted_refs``).
    count : int, default=1
        How many times.
    first_seen, last_seen : datetime or str or None, default=None
        The window; now when None.
    tlp : str or None, default="amber"
        TLP 2.0 level.
    confidence : int or None, default=None
        0-100.
    description : str or None, default=None
        Free text.

    Returns
    -------
    stix2.Sighting
    """
    target, observer = _ref(sighting_of), _ref(observed_by)
    now = datetime.now(UTC)
    return _build(stix2.Sighting, id=_det_id("sighting", target, observer), sighting_of_ref=target,
                  where_sighted_refs=[observer], created_by_ref=observer, count=count,
                  first_seen=first_seen or now, last_seen=last_seen or first_seen or now,
                  object_marking_refs=_markings(tlp), confidence=confidence, description=description)


def attack_pattern(oat_id: str, *, capec_ids: Sequence[str] | None = None, description: str | None = None,
                   created_by: Any = None, tlp: str | None = "clear") -> stix2.AttackPattern:
    """An ``attack-pattern`` for an OWASP automated threat, with OWASP and CAPEC references.

    Parameters
    ----------
    oat_id : str
        ``"OAT-008"`` etc.; names come from :data:`OAT_CATALOG` (unknown ids need ``description``).
    capec_ids : sequence of str or None, default=None
        CAPEC ids (``"CAPEC-600"``); defaults to the catalog's.
    description : str or None, default=None
        Free text; defaults to the OWASP name.
    created_by : Identity or str or None, default=None
        Author.
    tlp : str or None, default="clear"
        TLP 2.0 level.

    Returns
    -------
    stix2.AttackPattern
    """
    oat_id = oat_id.upper()
    name, default_capec = OAT_CATALOG.get(oat_id, (None, ()))
    if name is None and description is None:
        raise IntelError(f"attack_pattern: {oat_id!r} is not in OAT_CATALOG ({', '.join(OAT_CATALOG)}); "
                         "pass description= for other threats")
    refs: list[dict[str, str]] = [{"source_name": "owasp-automated-threats", "external_id": oat_id,
                                   "url": _OAT_URL}]
    for capec in capec_ids if capec_ids is not None else default_capec:
        number = capec.upper().removeprefix("CAPEC-")
        refs.append({"source_name": "capec", "external_id": f"CAPEC-{number}",
                     "url": f"https://capec.mitre.org/data/definitions/{number}.html"})
    title = f"{oat_id} {name}" if name else oat_id
    return _build(stix2.AttackPattern, id=_det_id("attack-pattern", oat_id), name=title,
                  description=description or f"OWASP automated threat {title}", external_references=refs,
                  created_by_ref=_ref(created_by) if created_by is not None else None,
                  object_marking_refs=_markings(tlp), created="2020-01-01T00:00:00.000Z",
                  modified="2020-01-01T00:00:00.000Z")


def campaign(name: str, *, description: str | None = None, objective: str | None = None,
             first_seen: datetime | str | None = None, last_seen: datetime | str | None = None,
             created_by: Any = None, tlp: str | None = "amber", confidence: int | None = None) -> stix2.Campaign:
    """A ``campaign``: one attack seen across several members (e.g. one credential list, one proxy pool).

    Parameters
    ----------
    name : str
        Campaign name.
    description, objective : str or None, default=None
        Free text.
    first_seen, last_seen : datetime or str or None, default=None
        The window.
    created_by : Identity or str or None, default=None
        Author.
    tlp : str or None, default="amber"
        TLP 2.0 level.
    confidence : int or None, default=None
        0-100.

    Returns
    -------
    stix2.Campaign
    """
    author = _ref(created_by) if created_by is not None else None
    return _build(stix2.Campaign, id=_det_id("campaign", author or "", name), name=name,
                  description=description or name, objective=objective, first_seen=first_seen, last_seen=last_seen,
                  created_by_ref=author, object_marking_refs=_markings(tlp), confidence=confidence)


def relationship(source: Any, relationship_type: str, target: Any, *, created_by: Any = None,
                 tlp: str | None = "amber", description: str | None = None) -> stix2.Relationship:
    """A ``relationship`` (``indicates``, ``uses``, ``attributed-to``, ...) between two objects.

    Parameters
    ----------
    source, target : stix2 object or str
        The two ends.
    relationship_type : str
        STIX relationship type.
    created_by : Identity or str or None, default=None
        Author.
    tlp : str or None, default="amber"
        TLP 2.0 level.
    description : str or None, default=None
        Free text.

    Returns
    -------
    stix2.Relationship
    """
    src, tgt = _ref(source), _ref(target)
    author = _ref(created_by) if created_by is not None else None
    return _build(stix2.Relationship, id=_det_id("relationship", author or "", src, relationship_type, tgt),
                  source_ref=src, relationship_type=relationship_type, target_ref=tgt, created_by_ref=author,
                  object_marking_refs=_markings(tlp), description=description)


def serialize(obj: Any) -> dict[str, Any]:
    """A stix2 object (or a mapping) as a plain JSON dict.

    Parameters
    ----------
    obj : stix2 object or mapping

    Returns
    -------
    dict
    """
    if isinstance(obj, dict):
        return obj
    return json.loads(obj.serialize())


# What stix2's strptime('%Y-%m-%dT%H:%M:%S.%fZ') / ('%Y-%m-%dT%H:%M:%SZ') reads, in the same way.
_PLAIN_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z")


@lru_cache(maxsize=256)
def _timestamp_properties(cls: type) -> frozenset[str]:
    from stix2.properties import TimestampProperty

    return frozenset(name for name, prop in getattr(cls, "_properties", {}).items()
                     if isinstance(prop, TimestampProperty))


def _with_datetimes(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` whose plain timestamps are already the datetimes stix2 would make of them.

    stix2 parses every timestamp with ``strptime`` (a quarter of its parse time). A string matching
    :data:`_PLAIN_TIMESTAMP` that forms a real date and time is exactly one ``strptime`` reads without error,
    into this same (UTC) datetime; anything else is left as text for stix2 to judge and report.
    """
    out = dict(data)
    kind = out.get("type")
    cls = stix2.registry.class_for_type(kind, "2.1", "objects") if isinstance(kind, str) else None
    if cls is None:
        return out
    for name in _timestamp_properties(cls):
        value = out.get(name)
        match = _PLAIN_TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            continue
        *fields, fraction = match.groups()
        try:
            out[name] = datetime(*(int(f) for f in fields), int(fraction.ljust(6, "0")) if fraction else 0,
                                 tzinfo=UTC)
        except ValueError:
            continue
    return out


def parse_object(data: Mapping[str, Any], *, allow_custom: bool = False) -> Any:
    """Parse and check one STIX 2.1 object with the ``stix2`` library (types, required properties, patterns).

    Parameters
    ----------
    data : mapping
        A JSON object.
    allow_custom : bool, default=False
        Accept custom object types and properties.

    Returns
    -------
    stix2 object

    Raises
    ------
    IntelError
        When it is not a valid STIX 2.1 object; the message names its id (or position) and the problem.
    """
    if not isinstance(data, Mapping):
        raise IntelError(f"expected a STIX object (JSON object), got {type(data).__name__}")
    ident = data.get("id", "<no id>")
    if data.get("spec_version") != "2.1" and data.get("type") != "marking-definition":
        raise IntelError(f"{ident}: spec_version must be '2.1', got {data.get('spec_version')!r}")
    try:
        return stix2.parse(_with_datetimes(data), allow_custom=allow_custom, version="2.1")
    except (STIXError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IntelError(f"{ident}: not a valid STIX 2.1 object: {exc}") from exc


# A plain STIX string literal (only \' and \\ escapes) compared with an operator: '= ', 'LIKE ', ...
_VALUE_LITERAL = re.compile(r"((?:!=|<=|>=|=|<|>|\bLIKE|\bMATCHES)\s*)'(?:[^'\\]|\\['\\])*'")
_IN_OPERATOR = re.compile(r"\bIN\b")
_MAX_SHAPES = 4096
_LIBRARY_SHAPES: dict[str, None] = {}
_VALIDATOR_SHAPES: dict[str, None] = {}


def pattern_shape(pattern: str) -> str | None:
    """The pattern with every compared string value replaced by ``'x'``, or None when that is not safe.

    Whether a pattern is valid (grammar, object types, property names) does not depend on the string
    values it compares against, except hash values, which are checked by format. Patterns with hashes or
    ``IN`` lists have no shape (they are always checked in full).

    Parameters
    ----------
    pattern : str
        A STIX pattern.

    Returns
    -------
    str or None
    """
    if "hashes" in pattern or _IN_OPERATOR.search(pattern):
        return None
    return _VALUE_LITERAL.sub(r"\1'x'", pattern)


def _remember(cache: dict[str, None], shape: str | None) -> None:
    if shape is not None and len(cache) < _MAX_SHAPES:
        cache[shape] = None


def validate_pattern(pattern: str) -> None:
    """Check a STIX 2.1 pattern like ``stix2-patterns`` does, once per :func:`pattern_shape`.

    Parameters
    ----------
    pattern : str
        The pattern.

    Raises
    ------
    IntelError
        When the pattern is invalid.
    """
    shape = pattern_shape(pattern)
    if shape is not None and shape in _LIBRARY_SHAPES:
        return
    from stix2patterns.validator import run_validator

    try:
        errors = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # noqa: BLE001 - the ANTLR runtime raises assorted errors on garbage
        raise IntelError(f"invalid STIX pattern: {exc}") from exc
    if errors:
        raise IntelError(f"invalid STIX pattern: {'; '.join(str(e) for e in errors)[:300]}")
    _remember(_LIBRARY_SHAPES, shape)


@lru_cache(maxsize=1)
def _validator_options() -> Any:
    from stix2validator import ValidationOptions

    _install_schema_cache()
    # 'all' switches off the SHOULD checks, which only produce warnings; the MUST checks and the JSON
    # schemas (the errors) are unaffected, as tests/intel/test_stix.py checks against the default options.
    return ValidationOptions(version="2.1", disabled=["all"])


def _install_schema_cache() -> None:
    """Make stix2-validator reuse its JSON-schema validators with a pre-crawled schema registry.

    stix2-validator 3.3 builds a new validator per object, and ``referencing`` re-crawls the schema
    registry on every ``$ref`` lookup; that is most of its cost. The same schemas are used, so results are
    unchanged (``tests/intel/test_stix.py`` compares both ways). Falls back silently if the library changes.
    """
    try:
        import stix2validator.validator as sv
    except ImportError:  # pragma: no cover
        return
    original = getattr(sv, "load_validator", None)
    if original is None or getattr(original, "_mamori_cached", False):
        return
    cache: dict[tuple[str, str | None], tuple[int, Any]] = {}

    def load_validator(schema_path: str, schema: Any, schema_dir: str | None) -> Any:
        known = len(sv._FILE_SCHEMAS) + len(sv._HTTP_SCHEMAS)
        hit = cache.get((schema_path, schema_dir))
        if hit is not None and hit[0] == known:
            return hit[1]
        validator = original(schema_path, schema, schema_dir)
        try:
            registry = validator._registry
            for uri, resource in [*sv._FILE_SCHEMAS.items(), *sv._HTTP_SCHEMAS.items()]:
                if uri not in registry:
                    registry = registry.with_resource(uri, resource)
            validator = sv.STIXValidator(validator.schema, registry=registry.crawl(),
                                         format_checker=validator.format_checker)
        except Exception:  # noqa: BLE001 - any surprise: keep the library's own validator
            logger.debug("stix2-validator schema cache unavailable", exc_info=True)
            return validator
        cache[(schema_path, schema_dir)] = (known, validator)
        return validator

    load_validator._mamori_cached = True  # type: ignore[attr-defined]
    load_validator._mamori_original = original  # type: ignore[attr-defined]
    sv.load_validator = load_validator


def _pattern_errors(obj: dict[str, Any]) -> list[str]:
    """stix2-validator's pattern checks (syntax, object types, property names, hashes), once per shape."""
    from stix2validator.v21 import musts

    shape = pattern_shape(obj["pattern"])
    if shape is not None and shape in _VALIDATOR_SHAPES:
        return []
    errors = [str(e) for e in musts.patterns(obj, _validator_options())]
    if not errors:
        _remember(_VALIDATOR_SHAPES, shape)
    return errors


def validate_object(data: Mapping[str, Any] | Any) -> list[str]:
    """Run ``stix2-validator`` (the OASIS validator) on one object.

    Same verdict as ``stix2validator.validate_instance`` with STIX 2.1 options, faster: the pattern of an
    indicator is checked once per :func:`pattern_shape`; a valid object is recognised with the validator's
    own JSON schemas compiled by ``jsonschema_rs`` and its MUST checks (see ``mamori.intel._validator``);
    anything else, and every error message, comes from ``validate_instance`` itself (with its schemas
    resolved once, see :func:`_install_schema_cache`).

    Parameters
    ----------
    data : mapping or stix2 object

    Returns
    -------
    list of str
        The errors; empty when the object is valid (warnings are not errors).
    """
    from stix2validator import ValidationError, validate_instance

    obj = serialize(data)
    options = _validator_options()
    errors: list[str] = []
    try:
        if obj.get("type") == "indicator" and obj.get("pattern_type") == "stix" and isinstance(obj.get("pattern"),
                                                                                                str):
            errors += _pattern_errors(obj)
            obj = {**obj, "pattern_type": "stix-pattern-checked"}  # the validator skips what we just checked
        if not errors and certainly_valid(obj):
            return []
        result = validate_instance(obj, options)
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        return [str(exc)]
    return errors + [str(e) for e in result.errors]


def to_datetime(value: datetime | str) -> datetime:
    """Parse a STIX/TAXII timestamp (``...Z``, any fraction) into an aware datetime.

    Parameters
    ----------
    value : datetime or str

    Returns
    -------
    datetime
        In UTC.

    Raises
    ------
    IntelError
        When the string is not an RFC 3339 timestamp.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise IntelError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2026-05-01T00:00:00.000Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _after(previous: Any) -> datetime:
    """A ``modified`` strictly later than ``previous`` (1 ms resolution, as stix2 serialises)."""
    prev = to_datetime(previous)
    now = datetime.now(UTC)
    return max(now, prev + timedelta(milliseconds=1))


_VERSION_PROPS = {"modified", "created", "id", "type", "spec_version"}


def merge(existing: Any | None, incoming: Any) -> Any | None:
    """Deduplicate: what to publish given the latest known version of the same object.

    Parameters
    ----------
    existing : stix2 object, mapping or None
        The latest version already published under ``incoming``'s id, or None.
    incoming : stix2 object or mapping
        The freshly built object.

    Returns
    -------
    stix2 object or None
        ``incoming`` when nothing is known; None when it says nothing new; otherwise a new version of
        ``existing`` (same id and ``created``, later ``modified``) carrying the new properties. For
        sightings, ``count`` adds up and the ``first_seen``/``last_seen`` window widens.

    Raises
    ------
    IntelError
        When the two objects have different ids.
    """
    if existing is None:
        return incoming
    old, new = serialize(existing), serialize(incoming)
    if old.get("id") != new.get("id"):
        raise IntelError(f"merge: ids differ ({old.get('id')} vs {new.get('id')})")
    changes = {k: v for k, v in new.items() if k not in _VERSION_PROPS and old.get(k) != v}
    if new.get("type") == "sighting":
        changes["count"] = int(old.get("count", 1)) + int(new.get("count", 1))
        firsts = [t for t in (old.get("first_seen"), new.get("first_seen")) if t]
        lasts = [t for t in (old.get("last_seen"), new.get("last_seen")) if t]
        if firsts:
            changes["first_seen"] = min(firsts, key=to_datetime)
        if lasts:
            changes["last_seen"] = max(lasts, key=to_datetime)
    elif new.get("type") == "indicator":
        changes.pop("valid_from", None)  # validity starts at the first publication
        if not changes:
            return None
    elif not changes:
        return None
    old_obj = parse_object(old, allow_custom=True)
    try:
        return old_obj.new_version(modified=_after(old["modified"]), **changes)
    except (STIXError, ValueError, TypeError) as exc:
        raise IntelError(f"merge: cannot make a new version of {old['id']}: {exc}") from exc


def latest_versions(objects: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map id → latest version (by ``modified``) among ``objects``.

    Parameters
    ----------
    objects : iterable of mapping

    Returns
    -------
    dict
    """
    out: dict[str, dict[str, Any]] = {}
    for obj in objects:
        cur = out.get(obj["id"])
        if cur is None or str(obj.get("modified", "")) > str(cur.get("modified", "")):
            out[obj["id"]] = dict(obj)
    return out
