"""Match events against shared STIX indicators (pulled from TAXII) in memory."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mamori.errors import IntelError

__all__ = ["IndicatorIndex", "IndicatorMatch"]

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
