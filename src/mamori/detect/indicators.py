"""Match events against shared STIX indicators (pulled from TAXII) in memory.

Besides attaching matches to alerts, :meth:`IndicatorIndex.campaign_hits` is the hook that closes the cross-bank
loop in live scoring: it computes, from the pulled campaign indicators, the column :data:`CAMPAIGN_FEATURE` that
models trained by :func:`mamori.analytics.evaluate_closed_loop` / :func:`mamori.analytics.add_campaign_feature`
expect as their last feature. A scorer whose model spec ends with that name appends
``index.campaign_hits(events)`` to the extracted matrix before standardising (docs/cross-bank.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mamori.errors import IntelError, SchemaError

__all__ = ["CAMPAIGN_FEATURE", "IndicatorIndex", "IndicatorMatch"]

#: Feature column of "the event's source matches a shared campaign indicator valid at its time"; the same name as
#: ``mamori.analytics.CAMPAIGN_FEATURE`` (pinned by a test; detect does not import analytics).
CAMPAIGN_FEATURE = "campaign.indicator_hit"
_NO_END = 2**62
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
#: exact IP -> [(valid_from, valid_until)] and [(network, valid_from, valid_until)], epoch microseconds
_Rules = tuple[dict[str, list[tuple[int, int]]], list[tuple[_Net, int, int]]]

logger = logging.getLogger(__name__)

# One comparison of a STIX pattern: [object:path = 'value'] (quoted) or a bare number.
_COMPARISON = re.compile(r"([a-z0-9-]+):([A-Za-z0-9_.'\-]+)\s*=\s*('(?:[^'\\]|\\.)*'|\d+)")

#: STIX object path -> canonical event column.
_PATHS: dict[tuple[str, str], str] = {
    ("ipv4-addr", "value"): "source.ip",
    ("ipv6-addr", "value"): "source.ip",
    ("autonomous-system", "number"): "source.as.number",
    ("network-traffic", "extensions.'http-request-ext'.request_header.'User-Agent'"): "user_agent.original",
    ("network-traffic", "extensions.'x-mamori-tls-ext'.ja3"): "tls.client.ja3",
    ("url", "value"): "url.path",
    ("domain-name", "value"): "url.domain",
}

IndicatorMatch = dict[str, Any]


def _epoch_us(value: object, default: int) -> int:
    """STIX timestamp (string or datetime) -> epoch microseconds; ``default`` when absent or unreadable."""
    if value is None:
        return default
    try:
        stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        logger.warning("indicator timestamp %r is not ISO 8601; treated as unbounded", str(value)[:40])
        return default
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1_000_000)


def _unquote(raw: str) -> str:
    if raw.startswith("'"):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


class IndicatorIndex:
    """Exact-match index of shared indicators: IPs and CIDR networks, ASNs, user agents, JA3, URLs, domains.

    Only equality comparisons are indexed (what mamori's own builders emit); an indicator whose pattern joins
    several comparisons with ``OR`` matches when any of them does, and one with ``AND`` is indexed on each
    comparison (a superset: reported as a possible match). Other patterns are counted in :attr:`skipped`.
    """

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], list[IndicatorMatch]] = {}
        self._networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, IndicatorMatch]] = []
        # source.ip indicators with their validity (epoch µs) and labels, for campaign_hits()
        self._ip_validity: list[tuple[str, int, int, tuple[str, ...]]] = []
        # label -> (exact IP -> validities, networks with validity), built on first use, dropped by add()
        self._campaign_rules: dict[str | None, _Rules] = {}
        self.size = 0
        self.skipped = 0

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> IndicatorIndex:
        """Index the ``indicator`` objects among STIX objects (others are ignored).

        Parameters
        ----------
        objects : iterable of mapping
            STIX 2.1 objects as dicts (e.g. from :meth:`mamori.intel.TaxiiClient.pull`).

        Returns
        -------
        IndicatorIndex
        """
        index = cls()
        for obj in objects:
            if obj.get("type") == "indicator" and not obj.get("revoked", False):
                index.add(obj)
        logger.info("indicator index: %d indexed, %d skipped", index.size, index.skipped)
        return index

    @classmethod
    def from_file(cls, path: str | Path) -> IndicatorIndex:
        """Index a STIX bundle or JSON list of objects, or JSON lines of objects.

        Parameters
        ----------
        path : str or pathlib.Path
            The file.

        Returns
        -------
        IndicatorIndex

        Raises
        ------
        IntelError
            If the file cannot be read or is not STIX JSON.
        """
        src = Path(path)
        try:
            text = src.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IntelError(f"IndicatorIndex.from_file: cannot read '{src}': {exc}") from exc
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise IntelError(
                    f"IndicatorIndex.from_file: '{src}' is neither a STIX bundle, a JSON list nor JSON lines "
                    f"(line {exc.lineno}: {exc.msg})."
                ) from exc
        if isinstance(data, dict):
            data = data.get("objects", [data])
        if not isinstance(data, list):
            raise IntelError(f"IndicatorIndex.from_file: '{src}' holds {type(data).__name__}, expected objects.")
        return cls.from_objects(o for o in data if isinstance(o, dict))

    def add(self, obj: Mapping[str, Any]) -> bool:
        """Index one indicator.

        Parameters
        ----------
        obj : mapping
            A STIX indicator with ``pattern_type`` ``stix``.

        Returns
        -------
        bool
            Whether something was indexed.
        """
        if obj.get("pattern_type", "stix") != "stix":
            self.skipped += 1
            return False
        info: IndicatorMatch = {"id": obj.get("id"), "name": obj.get("name"), "pattern": obj.get("pattern")}
        found = False
        for otype, opath, raw in _COMPARISON.findall(str(obj.get("pattern", ""))):
            column = _PATHS.get((otype, opath))
            if column is None:
                continue
            value = _unquote(raw)
            if column == "source.ip":
                self._campaign_rules.clear()
                self._ip_validity.append((value, _epoch_us(obj.get("valid_from"), 0),
                                          _epoch_us(obj.get("valid_until"), _NO_END),
                                          tuple(str(x) for x in obj.get("labels", ()))))
            if column == "source.ip" and "/" in value:
                try:
                    self._networks.append((ipaddress.ip_network(value, strict=False), info))
                    found = True
                except ValueError:
                    continue
                continue
            self._exact.setdefault((column, value), []).append(info)
            found = True
        if found:
            self.size += 1
        else:
            self.skipped += 1
        return found

    def match(self, event: Mapping[str, Any]) -> list[IndicatorMatch]:
        """Indicators that match one event.

        Parameters
        ----------
        event : mapping
            Canonical column -> value (one row).

        Returns
        -------
        list of dict
            ``{"id", "name", "pattern", "field"}`` per matching indicator, each indicator once.
        """
        out: dict[str, IndicatorMatch] = {}
        for column in set(_PATHS.values()):
            value = event.get(column)
            if value is None:
                continue
            for info in self._exact.get((column, str(value)), ()):
                out.setdefault(str(info["id"]), {**info, "field": column})
        ip = event.get("source.ip")
        if ip is not None and self._networks:
            try:
                addr = ipaddress.ip_address(str(ip))
            except ValueError:
                addr = None
            if addr is not None:
                for net, info in self._networks:
                    if addr.version == net.version and addr in net:
                        out.setdefault(str(info["id"]), {**info, "field": "source.ip"})
        return list(out.values())

    def campaign_hits(self, events: pl.DataFrame, *, label: str | None = "cross-bank") -> np.ndarray:
        """Mark events whose source IP matches an indicator (IP or CIDR) valid at the event's time.

        The live counterpart of :func:`mamori.analytics.indicator_hits`: an indicator counts for an event only
        within ``[valid_from, valid_until)``, so replaying old logs against today's indicators gives the same
        column a model was trained with. This is the hook a scorer calls for models whose feature spec ends
        with :data:`CAMPAIGN_FEATURE`.

        Parameters
        ----------
        events : polars.DataFrame
            Canonical events with ``@timestamp`` and ``source.ip``.
        label : str or None, default="cross-bank"
            Only indicators carrying this label (mamori's campaign indicators); None: every IP indicator.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(len(events),)``, 1.0 on a hit, else 0.0.

        Raises
        ------
        SchemaError
            When ``@timestamp`` or ``source.ip`` is missing.
        """
        for col in ("@timestamp", "source.ip"):
            if col not in events.columns:
                raise SchemaError(f"IndicatorIndex.campaign_hits: events lack column {col!r}; pass canonical events")
        out = np.zeros(events.height, dtype=np.float32)
        exact, nets = self._rules(label)
        if not (exact or nets) or events.height == 0:
            return out
        ips = events.get_column("source.ip").cast(pl.String)
        pairs: list[tuple[str, int, int]] = []
        for ip in ips.drop_nulls().unique().to_list():
            pairs += [(ip, a, b) for a, b in exact.get(ip, ())]
            if nets:
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    continue
                pairs += [(ip, a, b) for net, a, b in nets if addr.version == net.version and addr in net]
        if not pairs:
            return out
        table = pl.DataFrame(pairs, schema={"ip": pl.String, "from": pl.Int64, "until": pl.Int64}, orient="row")
        rows = (pl.DataFrame({"ip": ips, "t": events.get_column("@timestamp").dt.epoch("us")})
                .with_row_index("row").join(table, on="ip")
                .filter((pl.col("t") >= pl.col("from")) & (pl.col("t") < pl.col("until")))
                .get_column("row").unique().to_numpy())
        out[rows] = 1.0
        return out

    def campaign_hit_rows(self, rows: Iterable[Mapping[str, Any]], *, label: str | None = "cross-bank") -> np.ndarray:
        """:meth:`campaign_hits` for events given as ``column -> value`` dicts (the incremental scoring path).

        Same rule, same values, without building a DataFrame: a dict look-up per event plus one containment
        test per shared network.

        Parameters
        ----------
        rows : iterable of mapping
            Canonical events; ``@timestamp`` a timezone-aware :class:`datetime.datetime` (naive means UTC), a
            missing ``source.ip`` never hits.
        label : str or None, default="cross-bank"
            Only indicators carrying this label; None: every IP indicator.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(len(rows),)``, 1.0 on a hit, else 0.0.

        Raises
        ------
        SchemaError
            When an event with a source IP has no ``@timestamp``.
        """
        rows = list(rows)
        out = np.zeros(len(rows), dtype=np.float32)
        exact, nets = self._rules(label)
        if not (exact or nets):
            return out
        for i, row in enumerate(rows):
            ip = row.get("source.ip")
            if ip is None:
                continue
            ts = row.get("@timestamp")
            if not isinstance(ts, dt.datetime):
                raise SchemaError(f"IndicatorIndex.campaign_hit_rows: event {i} has no '@timestamp' datetime.")
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=dt.UTC)
            # integer microseconds as polars' dt.epoch("us") computes them (no float rounding at the bounds)
            t = (ts - _EPOCH) // dt.timedelta(microseconds=1)
            ip = str(ip)
            spans = list(exact.get(ip, ()))
            if nets:
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    addr = None
                if addr is not None:
                    spans += [(a, b) for net, a, b in nets if addr.version == net.version and addr in net]
            if any(a <= t < b for a, b in spans):
                out[i] = 1.0
        return out

    def _rules(self, label: str | None) -> _Rules:
        """The source-IP indicators carrying ``label`` (all when None), compiled once per label."""
        cached = self._campaign_rules.get(label)
        if cached is not None:
            return cached
        exact: dict[str, list[tuple[int, int]]] = {}
        nets: list[tuple[_Net, int, int]] = []
        for value, start, end, labels in self._ip_validity:
            if label is not None and label not in labels:
                continue
            if "/" in value:
                try:
                    nets.append((ipaddress.ip_network(value, strict=False), start, end))
                except ValueError:
                    continue
            else:
                exact.setdefault(value, []).append((start, end))
        self._campaign_rules[label] = (exact, nets)
        return exact, nets
