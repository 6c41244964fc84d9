"""The log formats mamori reads and writes, and which canonical columns each one carries.

A *format* is a way a gateway or application writes one request per line. Writers render the canonical
event table (:data:`~mamori.events.EVENT_SCHEMA`) into a format; readers turn lines of the format back into
canonical rows. A format only carries some columns (an nginx line has no ``user.id``), and some at a
coarser precision (``$msec`` is milliseconds), so a round trip gives back :func:`project_to_format` of the
original frame, not the frame itself.
"""

from __future__ import annotations

import polars as pl

from mamori.errors import SchemaError
from mamori.events.schema import EVENT_SCHEMA, conform

__all__ = [
    "DURATION_PRECISION",
    "FORMATS",
    "FORMAT_COLUMNS",
    "READ_FORMATS",
    "TIMESTAMP_PRECISION",
    "project_to_format",
]

#: Formats that mamori can both write and read (one event per line).
FORMATS: tuple[str, ...] = ("nginx", "alb", "envoy", "envoy-json", "ecs")

#: Every ``fmt`` a reader accepts: the writable formats plus read-only ones.
READ_FORMATS: tuple[str, ...] = (*FORMATS, "csic", "csv")

_GATEWAY_COMMON: tuple[str, ...] = (
    "@timestamp",
    "source.ip",
    "url.domain",
    "url.path",
    "url.query",
    "http.request.method",
    "http.version",
    "http.request.id",
    "http.request.bytes",
    "http.response.status_code",
    "http.response.body.bytes",
    "event.duration",
    "user_agent.original",
)

#: The canonical columns each format carries: what its writer writes and its reader gives back.
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "nginx": (
        *_GATEWAY_COMMON,
        "source.port",
        "http.request.referrer",
        "tls.client.ja3",
    ),
    "alb": (*_GATEWAY_COMMON, "source.port"),
    "envoy": _GATEWAY_COMMON,
    "envoy-json": (*_GATEWAY_COMMON, "source.port", "http.request.referrer", "tls.client.ja3"),
    "ecs": tuple(EVENT_SCHEMA),
}

#: Resolution of ``@timestamp`` per format (``"s"``, ``"ms"`` or ``"us"``). nginx is ``"ms"`` because the
#: writer appends ``msec=$msec``; an nginx line without it falls back to ``$time_local``, whole seconds.
TIMESTAMP_PRECISION: dict[str, str] = {
    "nginx": "ms",
    "alb": "us",
    "envoy": "ms",
    "envoy-json": "ms",
    "ecs": "us",
}

#: Resolution of ``event.duration`` per format: nginx ``$request_time``, ALB processing times and Envoy
#: ``%DURATION%`` are milliseconds; ECS ``event.duration`` is nanoseconds.
DURATION_PRECISION: dict[str, str] = {
    "nginx": "ms",
    "alb": "ms",
    "envoy": "ms",
    "envoy-json": "ms",
    "ecs": "ns",
}

_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> None:
    """Raise SchemaError if ``fmt`` is not one of ``allowed``."""
    if fmt not in allowed:
        raise SchemaError(f"unknown log format {fmt!r}; expected one of {', '.join(allowed)}.")


def project_to_format(frame: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """Return what ``fmt`` keeps of ``frame``: its columns, at its precision, the rest null.

    Reading back the lines :func:`~mamori.events.render_lines` wrote gives exactly this frame, which is
    what the round-trip tests assert.

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical events (any subset of :data:`~mamori.events.EVENT_SCHEMA`).
    fmt : str
        One of :data:`FORMATS`.

    Returns
    -------
    polars.DataFrame
        Canonical schema; columns not in ``FORMAT_COLUMNS[fmt]`` are null, ``@timestamp`` is truncated to
        ``TIMESTAMP_PRECISION[fmt]`` and ``event.duration`` to ``DURATION_PRECISION[fmt]``.

    Raises
    ------
    SchemaError
        If ``fmt`` is unknown or ``frame`` cannot be conformed.
    """
    _check_format(fmt)
    events = conform(frame, source="project_to_format")
    keep = set(FORMAT_COLUMNS[fmt])
    exprs: list[pl.Expr] = []
    for name, dtype in EVENT_SCHEMA.items():
        if name not in keep:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "@timestamp":
            exprs.append(pl.col(name).dt.truncate("1" + TIMESTAMP_PRECISION[fmt]).alias(name))
        elif name == "event.duration":
            step = _NS_PER[DURATION_PRECISION[fmt]]
            exprs.append(((pl.col(name) // step) * step).alias(name))
        else:
            exprs.append(pl.col(name))
    return events.select(exprs)
