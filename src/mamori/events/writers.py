"""Render canonical events as log lines (nginx, AWS ALB, Envoy text/JSON, ECS JSON) and join them back.

Everything is vectorised with polars string expressions: no Python loop runs per row, so the simulator can
write millions of lines. See ``docs/events.md`` for an example line of each format.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO

import polars as pl

from mamori.errors import SchemaError
from mamori.events._text import (
    escape_text,
    format_iso_timestamp,
    ns_to_seconds_text,
    text_or_dash,
)
from mamori.events.formats import _check_format
from mamori.events.schema import EVENT_SCHEMA, conform

__all__ = ["join_on_request_id", "render_lines", "write_events"]

logger = logging.getLogger(__name__)

#: Rows rendered per slab by :func:`write_events` (bounds memory for very large frames).
WRITE_SLAB_ROWS = 250_000

#: Fixed values the ALB and Envoy writers put in fields the canonical table has no column for.
ALB_LOAD_BALANCER = "app/mamori-gateway/50dc6c495c0c9188"
ALB_TARGET = "10.0.0.1:8080"
ALB_TARGET_GROUP = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
ALB_CERT = "arn:aws:acm:ap-northeast-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
ENVOY_UPSTREAM = "10.0.0.1:8080"


def _q(name: str) -> pl.Expr:
    """An escaped string column for a quoted field; null as '-'."""
    return escape_text(pl.col(name)).fill_null("-")


def _request_target(with_host: bool = False) -> pl.Expr:
    """Path plus '?query' when the query is not null; absolute-form 'https://host:443/path' if asked."""
    target = pl.concat_str(
        [
            pl.col("url.path").fill_null(""),
            pl.when(pl.col("url.query").is_not_null())
            .then(pl.concat_str([pl.lit("?"), pl.col("url.query")]))
            .otherwise(pl.lit("")),
        ]
    )
    if with_host:
        target = pl.concat_str([pl.lit("https://"), pl.col("url.domain").fill_null("-"), pl.lit(":443"), target])
    return escape_text(target)


def _request_line(with_host: bool = False) -> pl.Expr:
    """'METHOD TARGET HTTP/x.y' (the version part omitted when ``http.version`` is null)."""
    version = pl.when(pl.col("http.version").is_not_null()).then(
        pl.concat_str([pl.lit(" HTTP/"), escape_text(pl.col("http.version"))])
    )
    return pl.concat_str(
        [escape_text(pl.col("http.request.method")), pl.lit(" "), _request_target(with_host), version.fill_null("")]
    )


def _nginx(frame: pl.DataFrame) -> pl.Series:
    ts = pl.col("@timestamp").dt.convert_time_zone("UTC")
    ms = ts.dt.epoch("ms")
    msec = pl.concat_str([(ms // 1000).cast(pl.String), pl.lit("."), (ms % 1000).cast(pl.String).str.zfill(3)])
    return frame.select(
        pl.concat_str(
            [
                text_or_dash(pl.col("source.ip")),
                pl.lit(" - - ["),
                ts.dt.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                pl.lit('] "'),
                _request_line(),
                pl.lit('" '),
                text_or_dash(pl.col("http.response.status_code")),
                pl.lit(" "),
                text_or_dash(pl.col("http.response.body.bytes")),
                pl.lit(' "'),
                _q("http.request.referrer"),
                pl.lit('" "'),
                _q("user_agent.original"),
                pl.lit('" request_time='),
                ns_to_seconds_text(pl.col("event.duration"), 3),
                pl.lit(" request_length="),
                text_or_dash(pl.col("http.request.bytes")),
                pl.lit(" remote_port="),
                text_or_dash(pl.col("source.port")),
                pl.lit(' host="'),
                _q("url.domain"),
                pl.lit('" request_id="'),
                _q("http.request.id"),
                pl.lit('" ja3="'),
                _q("tls.client.ja3"),
                pl.lit('" msec='),
                msec,
            ]
        ).alias("line")
    ).to_series()


def _alb(frame: pl.DataFrame) -> pl.Series:
    client = (
        pl.when(pl.col("source.ip").is_null() & pl.col("source.port").is_null())
        .then(pl.lit("-"))
        .otherwise(pl.concat_str([text_or_dash(pl.col("source.ip")), pl.lit(":"), text_or_dash(pl.col("source.port"))]))
    )
    ts = format_iso_timestamp(pl.col("@timestamp"), 6)
    status = text_or_dash(pl.col("http.response.status_code"))
    return frame.select(
        pl.concat_str(
            [
                pl.lit("https "),
                ts,
                pl.lit(f" {ALB_LOAD_BALANCER} "),
                client,
                pl.lit(f" {ALB_TARGET} 0.000 "),
                ns_to_seconds_text(pl.col("event.duration"), 3),
                pl.lit(" 0.000 "),
                status,
                pl.lit(" "),
                status,
                pl.lit(" "),
                text_or_dash(pl.col("http.request.bytes")),
                pl.lit(" "),
                text_or_dash(pl.col("http.response.body.bytes")),
                pl.lit(' "'),
                _request_line(with_host=True),
                pl.lit('" "'),
                _q("user_agent.original"),
                pl.lit(f'" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 {ALB_TARGET_GROUP} "'),
                _q("http.request.id"),
                pl.lit('" "'),
                _q("url.domain"),
                pl.lit(f'" "{ALB_CERT}" 0 '),
                ts,
                pl.lit(f' "forward" "-" "-" "{ALB_TARGET}" "'),
                status,
                pl.lit('" "-" "-" TID_'),
                pl.int_range(pl.len()).cast(pl.String),
            ]
        ).alias("line")
    ).to_series()


def _envoy(frame: pl.DataFrame) -> pl.Series:
    protocol = pl.concat_str([pl.lit(" HTTP/"), escape_text(pl.col("http.version"))]).fill_null("")
    return frame.select(
        pl.concat_str(
            [
                pl.lit("["),
                format_iso_timestamp(pl.col("@timestamp"), 3),
                pl.lit('] "'),
                escape_text(pl.col("http.request.method")),
                pl.lit(" "),
                _request_target(),
                protocol,
                pl.lit('" '),
                text_or_dash(pl.col("http.response.status_code")),
                pl.lit(" - "),
                text_or_dash(pl.col("http.request.bytes")),
                pl.lit(" "),
                text_or_dash(pl.col("http.response.body.bytes")),
                pl.lit(" "),
                text_or_dash(pl.col("event.duration") // 1_000_000),
                pl.lit(" "),
                text_or_dash(pl.col("event.duration") // 1_000_000),
                pl.lit(' "'),
                _q("source.ip"),
                pl.lit('" "'),
                _q("user_agent.original"),
                pl.lit('" "'),
                _q("http.request.id"),
                pl.lit('" "'),
                _q("url.domain"),
                pl.lit(f'" "{ENVOY_UPSTREAM}"'),
            ]
        ).alias("line")
    ).to_series()


def _envoy_json(frame: pl.DataFrame) -> pl.Series:
    target = pl.concat_str(
        [
            pl.col("url.path").fill_null(""),
            pl.when(pl.col("url.query").is_not_null())
            .then(pl.concat_str([pl.lit("?"), pl.col("url.query")]))
            .otherwise(pl.lit("")),
        ]
    )
    ip = pl.col("source.ip")
    host = pl.when(ip.str.contains(":")).then(pl.concat_str([pl.lit("["), ip, pl.lit("]")])).otherwise(ip)
    port = pl.concat_str([pl.lit(":"), pl.col("source.port").cast(pl.String)])
    remote = (
        pl.when(ip.is_null() & pl.col("source.port").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.concat_str([host.fill_null(""), port.fill_null("")]))
    )
    fields = [
        format_iso_timestamp(pl.col("@timestamp"), 3).alias("start_time"),
        pl.col("http.request.method").alias("method"),
        target.alias("path"),
        pl.concat_str([pl.lit("HTTP/"), pl.col("http.version")]).alias("protocol"),
        pl.col("http.response.status_code").alias("response_code"),
        pl.lit("-").alias("response_flags"),
        pl.col("http.request.bytes").alias("bytes_received"),
        pl.col("http.response.body.bytes").alias("bytes_sent"),
        (pl.col("event.duration") // 1_000_000).alias("duration"),
        (pl.col("event.duration") // 1_000_000).alias("upstream_service_time"),
        pl.lit(None, dtype=pl.String).alias("x_forwarded_for"),
        pl.col("user_agent.original").alias("user_agent"),
        pl.col("http.request.id").alias("request_id"),
        pl.col("url.domain").alias("authority"),
        pl.lit(ENVOY_UPSTREAM).alias("upstream_host"),
        remote.alias("downstream_remote_address"),
        pl.col("http.request.referrer").alias("referer"),
        pl.col("tls.client.ja3").alias("ja3_fingerprint"),
    ]
    return frame.select(pl.struct(fields).struct.json_encode().alias("line")).to_series()


def _ecs(frame: pl.DataFrame) -> pl.Series:
    present = [c for c in EVENT_SCHEMA if frame.get_column(c).null_count() < frame.height]
    exprs = [format_iso_timestamp(pl.col(c), 6).alias(c) if c == "@timestamp" else pl.col(c) for c in present]
    if not exprs:
        return pl.Series("line", ["{}"] * frame.height, dtype=pl.String)
    return frame.select(pl.struct(exprs).struct.json_encode().alias("line")).to_series()


_RENDERERS: dict[str, Callable[[pl.DataFrame], pl.Series]] = {
    "nginx": _nginx,
    "alb": _alb,
    "envoy": _envoy,
    "envoy-json": _envoy_json,
    "ecs": _ecs,
}

_REQUIRED_TEXT = ("@timestamp", "http.request.method")


def _check_required(events: pl.DataFrame, fmt: str) -> None:
    """Gateway formats need a timestamp and a method on every row; raise SchemaError naming the first gap."""
    if fmt == "ecs":
        return
    for name in _REQUIRED_TEXT:
        nulls = events.get_column(name).is_null()
        if nulls.any():
            first = int(nulls.arg_true()[0])
            raise SchemaError(
                f"render_lines: {int(nulls.sum()):,} rows have no '{name}' (first: row {first:,}); the {fmt} "
                f"format cannot express that. Fill the column or write those rows with fmt='ecs'."
            )


def render_lines(frame: pl.DataFrame, fmt: str) -> pl.Series:
    """Render canonical events as log lines of one format.

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical events (any subset of :data:`~mamori.events.EVENT_SCHEMA`; missing columns are null).
    fmt : str
        One of :data:`~mamori.events.FORMATS`: ``"nginx"``, ``"alb"``, ``"envoy"``, ``"envoy-json"``,
        ``"ecs"``.

    Returns
    -------
    polars.Series
        String series ``line``, one line per row, without the trailing newline. Only the columns in
        ``FORMAT_COLUMNS[fmt]`` are written; timestamps and durations at the format's precision.

    Raises
    ------
    SchemaError
        If ``fmt`` is unknown, ``frame`` does not conform, or a gateway format is asked to write a row
        without ``@timestamp`` or ``http.request.method``.
    """
    _check_format(fmt)
    events = conform(frame, source="render_lines")
    _check_required(events, fmt)
    if events.height == 0:
        return pl.Series("line", [], dtype=pl.String)
    return _RENDERERS[fmt](events).alias("line")


def _open_for_write(path: Path, append: bool) -> IO[bytes]:
    mode = "ab" if append else "wb"
    if path.suffix == ".gz":
        return gzip.open(path, mode, compresslevel=6)  # type: ignore[return-value]
    return path.open(mode)


def write_events(frame: pl.DataFrame, path: str | Path, fmt: str, *, append: bool = False) -> int:
    """Write canonical events to a log file, one line per event.

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical events.
    path : str or pathlib.Path
        Output file; a ``.gz`` suffix writes gzip.
    fmt : str
        One of :data:`~mamori.events.FORMATS`.
    append : bool, default=False
        Append to an existing file instead of replacing it.

    Returns
    -------
    int
        Lines written.

    Raises
    ------
    SchemaError
        As :func:`render_lines`.
    """
    _check_format(fmt)
    out = Path(path)
    written = 0
    with _open_for_write(out, append) as fh:
        for start in range(0, max(frame.height, 1), WRITE_SLAB_ROWS):
            slab = frame.slice(start, WRITE_SLAB_ROWS)
            if slab.height == 0:
                break
            lines = render_lines(slab, fmt)
            text = lines.str.join("\n").item()
            fh.write(text.encode("utf-8"))
            fh.write(b"\n")
            written += lines.len()
    logger.info("write_events: %d %s lines to %s", written, fmt, out)
    return written


def join_on_request_id(gateway: pl.DataFrame, app_events: pl.DataFrame, *, keep_unmatched: bool = True) -> pl.DataFrame:
    """Reassemble gateway requests with the application/auth events that carry the same ``http.request.id``.

    Parameters
    ----------
    gateway : polars.DataFrame
        Canonical events read from a gateway log (nginx, ALB, Envoy).
    app_events : polars.DataFrame
        Canonical events from the application's ECS JSON lines, keyed by ``http.request.id``.
    keep_unmatched : bool, default=True
        Append application events whose request id is null or not in ``gateway`` as rows of their own;
        when false they are dropped (and the count is logged).

    Returns
    -------
    polars.DataFrame
        Canonical schema, one row per gateway row (in gateway order), then the unmatched application
        events. Gateway values win; application values fill the gateway's nulls (``user.id``, ``labels.*``, ...).

    Raises
    ------
    SchemaError
        If either frame does not conform to the canonical schema.

    Notes
    -----
    When several application events share a request id, the first one fills the gateway row and the
    others are treated as unmatched.
    """
    gw = conform(gateway, source="join_on_request_id(gateway)")
    app = conform(app_events, source="join_on_request_id(app_events)")
    key = "http.request.id"
    app = app.with_row_index("_app_row")
    keyed = app.filter(pl.col(key).is_not_null())
    first = keyed.unique(subset=[key], keep="first", maintain_order=True)
    gw_keys = gw.select(pl.col(key).drop_nulls().unique()).to_series()
    matched_rows = first.filter(pl.col(key).is_in(gw_keys.implode())).get_column("_app_row")
    renamed = first.drop("_app_row").rename({c: f"_app.{c}" for c in EVENT_SCHEMA if c != key})
    joined = gw.join(renamed, on=key, how="left", maintain_order="left", nulls_equal=False)
    merged = joined.select(
        [pl.col(c) if c == key else pl.coalesce(pl.col(c), pl.col(f"_app.{c}")).alias(c) for c in EVENT_SCHEMA]
    )
    unmatched = app.filter(~pl.col("_app_row").is_in(matched_rows.implode())).drop("_app_row")
    if unmatched.height:
        if keep_unmatched:
            merged = pl.concat([merged, unmatched], how="vertical")
        else:
            logger.info("join_on_request_id: dropped %d application events with no gateway row", unmatched.height)
    return merged
