"""Columnar batches of simulated requests, and their rendering into canonical event frames.

Generators (benign sessions and attack campaigns) fill a :class:`Rows` with NumPy arrays of integer codes
(endpoint kind, ASN index, user-agent index, ...) and a few polars string columns; :func:`render_rows` turns
any number of batches into one frame with the canonical schema in a handful of vectorised polars steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from mamori.events import EVENT_SCHEMA
from mamori.simulate import _tables as T

US_PER_S = 1_000_000


@dataclass
class Rows:
    """One batch of simulated requests at one bank (all arrays have the same length).

    ``kind`` indexes the endpoint kinds of :mod:`mamori.simulate._tables`; ``asn`` indexes ``ASNS``; ``ua``
    indexes the bank's user-agent table; ``ja3`` (optional) indexes ``JA3`` and defaults to the TLS stack
    that really sends ``ua``. String columns are polars Series (nullable) or ``None`` for all-null.
    """

    ts: np.ndarray  # int64, microseconds since the epoch, UTC
    kind: np.ndarray  # int
    ip: np.ndarray  # uint32
    asn: np.ndarray  # int
    ua: np.ndarray  # int
    status: np.ndarray  # int
    family: str = "benign"
    campaign_id: str | None = None
    attack_id: pl.Series | None = None
    ja3: np.ndarray | None = None
    user_name: pl.Series | None = None
    user_id: pl.Series | None = None
    session_id: pl.Series | None = None
    device_id: pl.Series | None = None
    obj: pl.Series | None = None  # object id inside the path (account number, asset)
    path: pl.Series | None = None  # full path override (probes)
    query: pl.Series | None = None
    body: pl.Series | None = None
    amount: np.ndarray | None = None  # float, NaN = null
    payee: pl.Series | None = None
    instrument: pl.Series | None = None
    side: pl.Series | None = None  # trade side: buy | sell
    referrer: np.ndarray | None = None  # bool: send the web app's Referer (defaults to browser UAs)

    def __len__(self) -> int:
        return int(self.ts.size)


def hex_ids(rng: np.random.Generator, n: int, nbytes: int = 16) -> pl.Series:
    """Return ``n`` random lowercase hex strings of ``2 * nbytes`` characters (vectorised)."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(nbytes), n, [None, pa.py_buffer(raw.tobytes())])
    return pl.Series(pl.from_arrow(arr)).cast(pl.Binary).bin.encode("hex").cast(pl.String)


def prefixed(prefix: str, numbers: np.ndarray, width: int = 0) -> pl.Series:
    """Return ``prefix`` + zero-padded decimal ``numbers`` as a string Series."""
    s = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String)
    if width:
        s = s.str.zfill(width)
    return pl.select(pl.lit(prefix) + s.alias("s")).to_series()


def lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float, n: int) -> np.ndarray:
    """Draw ``n`` lognormal values with the given median(s) and log-sigma(s)."""
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


def _series(value: pl.Series | None, n: int, name: str) -> pl.Series:
    if value is None:
        return pl.repeat(None, n, dtype=pl.String, eager=True).alias(name)
    if value.len() != n:
        raise ValueError(f"column {name} has {value.len()} values, expected {n}")
    return value.cast(pl.String).alias(name)


def render_rows(
    batches: list[Rows],
    *,
    bank_id: str,
    domain: str,
    ua_table: T.UaTable,
    heads: list[str],
    tails: list[str],
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Render batches of one bank into a canonical event frame sorted by ``@timestamp``.

    Parameters
    ----------
    batches : list of Rows
        Benign and attack batches, in a fixed order (the order breaks timestamp ties).
    bank_id : str
        Written to ``organization.id``.
    domain : str
        The bank's API host, written to ``url.domain``.
    ua_table : UaTable
        The bank's user-agent strings.
    heads, tails : list of str
        Path parts per endpoint kind (the object id goes between them).
    rng : numpy.random.Generator
        Draws ports, byte counts, durations and request ids.

    Returns
    -------
    polars.DataFrame
        Columns and dtypes of :data:`mamori.events.EVENT_SCHEMA`, sorted by ``@timestamp``, with unique
        ``http.request.id``.
    """
    batches = [b for b in batches if len(b)]
    n = sum(len(b) for b in batches)
    cat = np.concatenate
    ts = cat([b.ts.astype(np.int64) for b in batches])
    # sort once, on the integer timestamps (stable: batch order breaks ties), and build every column sorted
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    kind = cat([b.kind.astype(np.int64) for b in batches])[order]
    ip = cat([b.ip.astype(np.uint32) for b in batches])[order]
    asn = cat([b.asn.astype(np.int64) for b in batches])[order]
    ua_raw = cat([b.ua.astype(np.int64) for b in batches])
    ja3 = cat([b.ja3.astype(np.int64) if b.ja3 is not None else ua_table.ja3[b.ua] for b in batches])[order]
    status = cat([b.status.astype(np.int64) for b in batches])[order]
    amount = cat([b.amount if b.amount is not None else np.full(len(b), np.nan) for b in batches])[order]
    is_browser = ua_raw < ua_table.app0
    ref_parts = []
    offset = 0
    for b in batches:
        k = len(b)
        ref_parts.append(b.referrer if b.referrer is not None else is_browser[offset : offset + k])
        offset += k
    ua = ua_raw[order]
    referrer = cat(ref_parts)[order] & (kind != T.HOME) & (kind != T.PROBE)
    batch_of = np.repeat(np.arange(len(batches)), [len(b) for b in batches])[order]
    is_attack = np.array([b.family != "benign" for b in batches], dtype=bool)[batch_of]
    order_s = pl.Series(order)

    def strings(attr: str) -> pl.Series:
        return pl.concat([_series(getattr(b, attr), len(b), attr) for b in batches], rechunk=True).gather(order_s)

    family = pl.Series("f", [b.family for b in batches], dtype=pl.String).gather(batch_of)
    campaign = pl.Series("c", [b.campaign_id for b in batches], dtype=pl.String).gather(batch_of)

    resp_med = np.array([m for m, _ in T.KIND_RESP_BYTES])[kind]
    resp_sig = np.array([s for _, s in T.KIND_RESP_BYTES])[kind]
    resp_bytes = lognormal(rng, resp_med, resp_sig, n)
    err = status >= 400
    resp_bytes = np.where(err, lognormal(rng, 180.0, 0.3, n), resp_bytes)
    resp_bytes = np.where(status == 304, 0, resp_bytes).astype(np.int64)
    dur_med = np.array([m for m, _ in T.KIND_DURATION_MS])[kind]
    dur_sig = np.array([s for _, s in T.KIND_DURATION_MS])[kind]
    duration_ns = (lognormal(rng, dur_med, dur_sig, n) * 1e6).astype(np.int64)
    port = rng.integers(32768, 61000, size=n).astype(np.int32)
    tool = (ja3 >= T.JA3_PYTHON) & (ja3 != T.JA3_HEADLESS)
    version = pl.Series(["2", "1.1"]).gather(tool.astype(np.int64))

    frame = pl.DataFrame(
        {
            "@timestamp": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "source.ip": T.ip_strings(ip),
            "source.port": port,
            "source.as.number": T.ASN_NUMBER.gather(asn),
            "source.as.organization.name": T.ASN_ORG.gather(asn),
            "source.geo.country_iso_code": T.ASN_COUNTRY.gather(asn),
            "_head": pl.Series(heads).gather(kind),
            "_tail": pl.Series(tails).gather(kind),
            "_obj": strings("obj"),
            "_path": strings("path"),
            "url.query": strings("query"),
            "http.request.method": pl.Series(T.KIND_METHOD).gather(kind),
            "http.version": version,
            "_ref": referrer,
            "http.request.body.content": strings("body"),
            "_hdr": lognormal(rng, 610.0, 0.15, n).astype(np.int64),
            "http.response.status_code": status.astype(np.int32),
            "http.response.body.bytes": resp_bytes,
            "event.duration": duration_ns,
            "user_agent.original": ua_table.strings.gather(ua),
            "tls.client.ja3": T.JA3.gather(ja3),
            "user.name": strings("user_name"),
            "user.id": strings("user_id"),
            "session.id": strings("session_id"),
            "device.id": strings("device_id"),
            "event.action": pl.Series(list(T.KIND_ACTION), dtype=pl.String).gather(kind),
            "_err": err,
            "banking.amount": pl.Series(amount).fill_nan(None),
            "banking.payee.id": strings("payee"),
            "banking.instrument": strings("instrument"),
            "labels.is_attack": is_attack,
            "labels.attack_family": family,
            "labels.attack_id": strings("attack_id"),
            "labels.campaign_id": campaign,
            "_kind": kind,
            "_side": strings("side"),
        }
    )
    # default JSON bodies, built only for the rows of kinds that send one
    body_rows = np.flatnonzero(np.isin(kind, _BODY_KINDS))
    needed = ["_kind", "_side", "user.name", "device.id", "banking.amount", "banking.payee.id", "banking.instrument"]
    defaults = frame.select(needed)[body_rows].select(_default_body()).to_series()
    body = pl.repeat(None, n, dtype=pl.String, eager=True).scatter(body_rows, defaults)
    frame = frame.with_columns(
        pl.coalesce(pl.col("http.request.body.content"), body).alias("http.request.body.content")
    )
    frame = frame.with_columns(
        pl.lit(bank_id).alias("organization.id"),
        pl.lit(domain).alias("url.domain"),
        pl.coalesce(
            pl.col("_path"), pl.concat_str([pl.col("_head"), pl.col("_obj").fill_null(""), pl.col("_tail")])
        ).alias("url.path"),
        pl.when(pl.col("_ref")).then(pl.lit(f"https://{domain}/ib/")).otherwise(None).alias("http.request.referrer"),
        (pl.col("_hdr") + pl.col("http.request.body.content").str.len_bytes().fill_null(0)).alias("http.request.bytes"),
        pl.when(pl.col("_err")).then(pl.lit("failure")).otherwise(pl.lit("success")).alias("event.outcome"),
        hex_ids(rng, n).alias("http.request.id"),
    )
    return frame.select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])


_BODY_KINDS = np.array(
    [
        T.LOGIN,
        T.PASSWORD_RESET,
        T.OTP_ISSUE,
        T.OTP_VERIFY,
        T.PAYEE_ADD,
        T.TRANSFER,
        T.TRADE,
        T.DEVICE_REGISTER,
        T.CONTACT_CHANGE,
    ]  # fmt: skip
)


def _default_body() -> pl.Expr:
    """The JSON body a client sends for each POST kind, unless a generator set one."""
    k = pl.col("_kind")

    def s(name: str) -> pl.Expr:
        return pl.col(name).fill_null("")

    amt = pl.col("banking.amount").cast(pl.Int64).cast(pl.String).fill_null("0")
    tmpl = (
        pl.when(k == T.LOGIN)
        .then(pl.concat_str([pl.lit('{"login_id":"'), s("user.name"), pl.lit('","password":"********"}')]))
        .when(k == T.PASSWORD_RESET)
        .then(pl.concat_str([pl.lit('{"login_id":"'), s("user.name"), pl.lit('","channel":"sms"}')]))
        .when(k == T.OTP_ISSUE)
        .then(pl.lit('{"channel":"sms"}'))
        .when(k == T.OTP_VERIFY)
        .then(pl.lit('{"otp":"******"}'))
        .when(k == T.PAYEE_ADD)
        .then(pl.concat_str([pl.lit('{"payee_id":"'), s("banking.payee.id"), pl.lit('","bank_code":"0005"}')]))
        .when(k == T.TRANSFER)
        .then(pl.concat_str([pl.lit('{"payee_id":"'), s("banking.payee.id"), pl.lit('","amount":'), amt, pl.lit("}")]))
        .when(k == T.TRADE)
        .then(
            pl.concat_str(
                [
                    pl.lit('{"symbol":"'),
                    s("banking.instrument"),
                    pl.lit('","side":"'),
                    s("_side"),
                    pl.lit('","amount":'),
                    amt,
                    pl.lit("}"),
                ]  # fmt: skip
            )
        )
        .when(k == T.DEVICE_REGISTER)
        .then(pl.concat_str([pl.lit('{"device_id":"'), s("device.id"), pl.lit('"}')]))
        .when(k == T.CONTACT_CHANGE)
        .then(pl.lit('{"field":"phone","verified_by":"otp"}'))
        .otherwise(None)
    )
    return tmpl
