"""Batch parsers: a frame of lines in, canonical columns plus a reason for each bad line out.

Each parser takes a frame ``line_no`` (Int64), ``text`` (String) of non-blank lines and returns a frame with
``line_no``, ``text``, ``reason`` (null when the line parsed), ``field`` (the offending column for
``bad_value``) and canonical columns. :func:`finalize` converts text to canonical dtypes and marks lines
whose values do not convert. Everything is vectorised; Python only touches the (rare) bad lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

import polars as pl

from mamori.events._source import _UNIT_SEPARATOR, looks_compressed
from mamori.events._text import (
    dash_null,
    parse_bool,
    parse_iso_timestamp,
    seconds_to_ns,
    target_exprs,
    unescape_series,
)
from mamori.events.schema import EVENT_SCHEMA

Parser = Callable[[pl.DataFrame], pl.DataFrame]

_Q_FAST = r'[^"]*'
_Q_SLOW = r'(?:[^"\\]|\\.)*'

# -------------------------------------------------------------------------------------------- shared steps


def _extract(df: pl.DataFrame, template: str) -> pl.DataFrame:
    """Apply a regex template (``{q}`` = quoted-field body) fast first, then escape-aware on misses."""
    fast = df.select(pl.col("text").str.extract_groups(template.format(q=_Q_FAST)).alias("_g")).unnest("_g")
    first = fast.columns[0]
    missed = fast.get_column(first).is_null()
    if missed.any():
        idx = missed.arg_true()
        slow = (
            df.select(pl.col("text").gather(idx).str.extract_groups(template.format(q=_Q_SLOW)).alias("_g"))
            .unnest("_g")
            .select(fast.columns)
        )
        recovered = slow.get_column(first).is_not_null()
        if recovered.any():
            fast = fast.with_row_index("_i").update(
                slow.with_columns(_i=idx.cast(pl.UInt32)).filter(recovered), on="_i", include_nulls=True
            )
            fast = fast.drop("_i")
    return fast


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|\[[^\]]*\]?|\S+')


def count_fields(text: str) -> int:
    """Count space-separated fields, a quoted string or a [bracketed] time counting as one."""
    return len(_TOKEN.findall(text))


def _unescape_cols(frame: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
    """Decode log escapes (backslash-x-HH, backslash-quote, backslash-backslash) in the named columns."""
    return frame.with_columns([unescape_series(frame.get_column(n)).alias(n) for n in names if n in frame.columns])


_REQUEST_RE = r"^(?P<method>\S+) (?P<target>\S.*?)(?: HTTP/(?P<version>\d+(?:\.\d+)?))?$"


def request_exprs(expr: pl.Expr) -> dict[str, pl.Expr]:
    """Expressions splitting 'METHOD TARGET HTTP/x.y' into canonical columns; ``_req_ok`` flags a match."""
    parts = expr.str.extract_groups(_REQUEST_RE)
    target = target_exprs(parts.struct.field("target"))
    return {
        "http.request.method": parts.struct.field("method"),
        "http.version": parts.struct.field("version"),
        **target,
        "_req_ok": parts.struct.field("method").is_not_null(),
    }


def _reason(prior: pl.Expr, cond: pl.Expr, code: str) -> pl.Expr:
    """Keep the first reason: ``code`` where there is none yet and ``cond`` holds."""
    return pl.when(prior.is_null() & cond.fill_null(False)).then(pl.lit(code)).otherwise(prior)


def _groups(df: pl.DataFrame, template: str, first: str) -> pl.DataFrame:
    """line_no, text, the regex groups, and reason 'field_count' where the line did not match."""
    g = pl.concat([df.select("line_no", "text"), _extract(df, template)], how="horizontal")
    return g.with_columns(
        pl.when(pl.col(first).is_null()).then(pl.lit("field_count")).otherwise(None).cast(pl.String).alias("reason")
    )


def _check(frame: pl.DataFrame, raw: str, parsed: str, code: str) -> pl.DataFrame:
    """Mark lines where ``raw`` is present but ``parsed`` came out null."""
    return frame.with_columns(_reason(pl.col("reason"), pl.col(raw).is_not_null() & pl.col(parsed).is_null(), code))


_CANONICAL_OUT = ("line_no", "text", "reason")


def finalize(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert canonical columns given as text to their dtypes; mark lines whose values do not convert.

    ``frame`` has ``line_no``, ``text``, ``reason`` and any canonical columns (text or already typed).
    Returns ``line_no``, ``text``, ``reason``, ``field`` and canonical columns in canonical dtypes.
    """
    converted: list[pl.Expr] = []
    failed: list[tuple[str, pl.Expr, str]] = []
    for name, dtype in EVENT_SCHEMA.items():
        if name not in frame.columns:
            continue
        col = pl.col(name)
        current = frame.schema[name]
        if current == dtype or (dtype == pl.String and current == pl.String):
            converted.append(col)
            continue
        if current == pl.Null:
            converted.append(col.cast(dtype))
            continue
        if current != pl.String:
            conv = col.cast(dtype, strict=False)
            reason = "bad_value"
        elif isinstance(dtype, pl.Datetime):
            conv = parse_iso_timestamp(col)
            reason = "bad_timestamp"
        elif dtype == pl.Boolean:
            conv = parse_bool(col)
            reason = "bad_value"
        else:
            conv = col.str.strip_chars().cast(dtype, strict=False)
            reason = "bad_value"
        converted.append(conv.alias(name))
        failed.append((name, col.is_not_null() & conv.is_null(), reason))
    reason_expr: pl.Expr = pl.col("reason")
    field_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, cond, code in reversed(failed):
        hit = pl.col("reason").is_null() & cond
        reason_expr = pl.when(hit).then(pl.lit(code)).otherwise(reason_expr)
        field_expr = pl.when(hit).then(pl.lit(name)).otherwise(field_expr)
    return frame.select(
        pl.col("line_no"),
        pl.col("text"),
        reason_expr.cast(pl.String).alias("reason"),
        field_expr.cast(pl.String).alias("field"),
        *converted,
    )


# ------------------------------------------------------------------------------------------------- nginx

NGINX_MIN_FIELDS = 9
_NGINX = (
    r'^(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]*)\] "(?P<request>{q})" (?P<status>\d{{3}}|-) '
    r'(?P<bytes>\d+|-)(?: "(?P<ref>{q})" "(?P<ua>{q})"(?P<tail>\s.*)?)?$'
)
#: Trailing ``key=value`` fields the nginx reader understands, with the aliases it accepts.
NGINX_TRAILING_KEYS: dict[str, tuple[str, ...]] = {
    "request_time": ("request_time", "rt"),
    "request_length": ("request_length", "rl"),
    "remote_port": ("remote_port",),
    "host": ("host", "http_host"),
    "request_id": ("request_id", "req_id", "rid", "x_request_id"),
    "ja3": ("ja3", "ssl_ja3", "http_ssl_ja3", "ja3_hash"),
    "msec": ("msec",),
}


def _tail_expr(keys: tuple[str, ...]) -> pl.Expr:
    alts = "|".join(re.escape(k) for k in keys)
    pattern = rf'(?:^|\s)(?:{alts})=(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<u>[^\s"]*))'
    groups = pl.col("tail").str.extract_groups(pattern)
    return pl.coalesce(groups.struct.field("q"), groups.struct.field("u"))


_NGINX_KEYS = tuple(f"_{key}" for key in NGINX_TRAILING_KEYS)
_NGINX_FIELDS = ("ip", "user", "time", "request", "status", "bytes", "ref", "ua", "tail")


def _layout_splits() -> list[pl.Expr]:
    """The space-separated pieces between the quotes, materialised once (see :func:`_layout_fields`)."""
    f = [pl.col("_p").struct.field(f"field_{i}") for i in (0, 2, 6)]
    return [
        f[0].str.split_exact(" ", 5).alias("_head"),
        f[1].str.split_exact(" ", 3).alias("_mid"),
        f[2].str.split_exact(" ", 4).alias("_tail"),
    ]


def _layout_fields() -> tuple[pl.Expr, dict[str, pl.Expr]]:
    """The fast path: cut the line at its double quotes, for exactly the layout the nginx writer uses.

    Each piece outside the quotes is checked with a short anchored pattern; together the checks are
    equivalent to matching the whole layout, so ``ok`` lines need no capturing regex.
    """
    f = [pl.col("_p").struct.field(f"field_{i}") for i in range(15)]
    head, mid, tail = pl.col("_head"), pl.col("_mid"), pl.col("_tail")
    ok = (
        f[0].str.contains(r"^\S+ \S+ \S+ \[\S+ \S+\] $")
        & f[2].str.contains(r"^ (?:\d{3}|-) (?:\d+|-) $")
        & (f[4] == " ")
        & f[6].str.contains(r"^ request_time=\S* request_length=\S* remote_port=\S* host=$")
        & (f[8] == " request_id=")
        & (f[10] == " ja3=")
        & f[12].str.contains(r"^ msec=\S*$")
        & f[13].is_null()
    ).fill_null(False)
    time = pl.concat_str([head.struct.field("field_3"), pl.lit(" "), head.struct.field("field_4")])
    fields = {
        "ip": head.struct.field("field_0"),
        "user": head.struct.field("field_2"),
        "time": time.str.strip_chars_start("[").str.strip_chars_end("]"),
        "request": f[1],
        "status": mid.struct.field("field_1"),
        "bytes": mid.struct.field("field_2"),
        "ref": f[3],
        "ua": f[5],
        "tail": pl.lit(None, dtype=pl.String),
        "_request_time": tail.struct.field("field_1").str.strip_prefix("request_time="),
        "_request_length": tail.struct.field("field_2").str.strip_prefix("request_length="),
        "_remote_port": tail.struct.field("field_3").str.strip_prefix("remote_port="),
        "_host": f[7],
        "_request_id": f[9],
        "_ja3": f[11],
        "_msec": f[12].str.strip_prefix(" msec="),
    }
    return ok, fields


_ORIGIN_FORM = r"^[/*]"
_VERSION_RE = r"^HTTP/\d+(?:\.\d+)?$"


def request_split_columns(expr: pl.Expr) -> list[pl.Expr]:
    """Materialise the splits :func:`request_exprs_fast` reads (``_rq`` and ``_rt``)."""
    return [expr.str.splitn(" ", 3).alias("_rq")]


def request_exprs_fast(expr: pl.Expr) -> dict[str, pl.Expr]:
    """Like :func:`request_exprs`, splitting 'GET /path?q HTTP/1.1' without captures; regex only for the rest.

    Absolute-form targets, targets with spaces and requests without a version take the regex path, which
    runs only on those rows (the others are masked to null first).
    """
    parts = pl.col("_rq")
    method, target, version = (parts.struct.field(f"field_{i}") for i in range(3))
    fast = (
        version.str.contains(_VERSION_RE) & target.str.contains(_ORIGIN_FORM) & (method.str.len_bytes() > 0)
    ).fill_null(False)
    slow = request_exprs(pl.when(~fast).then(expr))
    split = target.str.splitn("?", 2)
    return {
        "http.request.method": pl.when(fast).then(method).otherwise(slow["http.request.method"]),
        "http.version": pl.when(fast).then(version.str.strip_prefix("HTTP/")).otherwise(slow["http.version"]),
        "url.domain": pl.when(fast).then(pl.lit(None, dtype=pl.String)).otherwise(slow["url.domain"]),
        "url.path": pl.when(fast).then(split.struct.field("field_0")).otherwise(slow["url.path"]),
        "url.query": pl.when(fast).then(split.struct.field("field_1")).otherwise(slow["url.query"]),
        "_req_ok": fast | slow["_req_ok"].fill_null(False),
    }


_NGINX_UNESCAPE = (
    "http.request.method",
    "url.domain",
    "url.path",
    "url.query",
    "http.request.referrer",
    "user_agent.original",
    "http.request.id",
    "tls.client.ja3",
    "user.name",
)


def _dash_int(expr: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr]:
    """(value, valid): '-' is null; anything else must cast to ``dtype``."""
    # A non-strict cast already turns '-' into null: no when/then pass over the column.
    value = expr.cast(dtype, strict=False)
    return value, value.is_not_null() | (expr == "-")


def _millis(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(integer milliseconds, valid) of 'S.mmm' text with exactly three decimals, as nginx writes them."""
    value = expr.str.replace(".", "", literal=True).cast(pl.Int64, strict=False)
    valid = (expr.str.slice(-4, 1) == ".") & (expr.str.len_bytes() >= 5) & (value >= 0)
    return value, valid


def _nginx_layout_select(
    lf: pl.LazyFrame, max_line_bytes: int | None = None, *, whole_chunk: bool = False
) -> pl.LazyFrame:
    """The writer's layout from the quote-separated pieces ``field_0`` ... ``field_14`` of each line.

    String splits and prefix checks only, no regex; values come out in their canonical dtypes. Adds ``_ok``
    (the line is exactly in the layout and every value converts). ``@timestamp`` comes from ``msec=`` (the
    ``[time_local]`` field is not re-read).
    """
    f = [pl.col(f"field_{i}") for i in range(15)]
    head = [pl.col("_h").struct.field(f"field_{i}") for i in range(4)]
    mid = [pl.col("_m").struct.field(f"field_{i}") for i in range(4)]
    tail = [pl.col("_t").struct.field(f"field_{i}") for i in range(5)]
    req = [pl.col("_r").struct.field(f"field_{i}") for i in range(3)]
    url = [pl.col("_u").struct.field(f"field_{i}") for i in range(2)]
    lf = lf.with_columns(
        # Each split keeps its last piece unsplit (checked whole): split pieces are the bulk of the parse.
        # ip, ident, user and the rest: the '[time zone] ' pieces are only checked, never read.
        f[0].str.splitn(" ", 4).alias("_h"),
        f[2].str.splitn(" ", 4).alias("_m"),
        f[6].str.splitn(" ", 5).alias("_t"),
        f[1].str.splitn(" ", 3).alias("_r"),
    ).with_columns(
        req[1].str.splitn("?", 2).alias("_u"),
        tail[1].str.strip_prefix("request_time=").alias("_rt"),
        f[12].str.strip_prefix(" msec=").alias("_msec"),
    )
    rt = pl.col("_rt")
    rt_ms, rt_ok = _millis(rt)
    msec, msec_ok = _millis(pl.col("_msec"))
    status, status_ok = _dash_int(mid[1], pl.Int32())
    size, size_ok = _dash_int(mid[2], pl.Int64())
    req_len, req_len_ok = _dash_int(tail[2].str.strip_prefix("request_length="), pl.Int64())
    port, port_ok = _dash_int(tail[3].str.strip_prefix("remote_port="), pl.Int32())
    ok = (
        # '[time zone] ': the same lines as splitting it at spaces into '[time', 'zone]', '' and nothing more
        head[3].str.starts_with("[")
        & head[3].str.ends_with("] ")
        & (head[3].str.count_matches(" ", literal=True) == 2)
        & (mid[0] == "")
        & (mid[3] == "")  # nothing after the size's space
        & (f[4] == " ")
        & (tail[0] == "")
        & tail[1].str.starts_with("request_time=")
        & tail[2].str.starts_with("request_length=")
        & tail[3].str.starts_with("remote_port=")
        & (tail[4] == "host=")  # the whole rest of the piece
        & (f[8] == " request_id=")
        & (f[10] == " ja3=")
        & f[12].str.starts_with(" msec=")
        & (pl.lit(True) if whole_chunk else f[13].is_null())  # whole chunks: the length check in the caller
        & (req[0].str.len_bytes() > 0)
        & req[1].str.starts_with("/")
        & req[2].str.starts_with("HTTP/")
        & ~req[2].str.contains(" ", literal=True)
        & msec_ok
        & ((rt == "-") | rt_ok)
        & status_ok
        & size_ok
        & req_len_ok
        & port_ok
    )
    length = pl.sum_horizontal([c.str.len_bytes().fill_null(0) for c in f[:13]]) + 12
    if max_line_bytes is not None:
        ok = ok & (length <= max_line_bytes)
    return lf.select(
        "line_no",
        "text",
        ok.fill_null(False).alias("_ok"),
        length.cast(pl.Int64).alias("_len"),
        pl.lit(None, dtype=pl.String).alias("reason"),
        pl.from_epoch(msec * 1000, time_unit="us").dt.replace_time_zone("UTC").alias("@timestamp"),
        dash_null(head[0]).alias("source.ip"),
        dash_null(head[2]).alias("user.name"),
        req[0].alias("http.request.method"),
        req[2].str.strip_prefix("HTTP/").alias("http.version"),
        dash_null(f[7]).alias("url.domain"),
        url[0].alias("url.path"),
        url[1].alias("url.query"),
        status.alias("http.response.status_code"),
        size.alias("http.response.body.bytes"),
        dash_null(f[3]).alias("http.request.referrer"),
        dash_null(f[5]).alias("user_agent.original"),
        pl.when(rt == "-").then(None).otherwise(rt_ms * 1_000_000).alias("event.duration"),
        req_len.alias("http.request.bytes"),
        port.alias("source.port"),
        dash_null(f[9]).alias("http.request.id"),
        dash_null(f[11]).alias("tls.client.ja3"),
    )


def _nginx_fast(df: pl.DataFrame) -> pl.DataFrame:
    """The fast path for lines in exactly the writer's layout (see :func:`_nginx_layout_select`).

    Returns the :func:`finalize` columns plus ``_ok``; rows with ``_ok`` false must be re-parsed by
    :func:`_nginx_general`.
    """
    lf = df.lazy().with_columns(pl.col("text").str.splitn('"', 15).alias("_p")).unnest("_p")
    out = _nginx_layout_select(lf).collect()
    if bool(df.get_column("text").str.contains("\\", literal=True).any()):
        out = _unescape_cols(out, _NGINX_UNESCAPE)
    ok_col = out.get_column("_ok")
    return finalize(out.drop("_ok", "_len")).with_columns(ok_col)


_QUOTE_SPLIT_SCHEMA = {f"field_{i}": pl.String for i in range(16)}

_COMBINED_HEAD = r"^\S+ \S+ \S+ \[[^\]]*\] $"  # the general pattern's ip ident user [time], up to the quote
_COMBINED_MID = r"^ (?:\d{3}|-) (?:\d+|-) $"
_NGINX_TIME = "%d/%b/%Y:%H:%M:%S %z"


def _nginx_combined_select(lf: pl.LazyFrame, max_line_bytes: int | None) -> pl.LazyFrame:
    """Plain combined lines (``main`` too: trailing fields without ``key=``) from quote-separated pieces.

    The whole-chunk twin of :func:`_nginx_general` for lines its first (unescaped-quote) pattern matches
    with no recognised trailing key: the same checks on the pieces ``field_0`` ... ``field_15``, the same
    values, no capturing regex. ``_line_len`` (each line's length in bytes) gives the number of quotes in
    the line, so a missing piece is told from an empty one and a line with more than 15 quotes (pieces cut
    off) is refused. ``_ok`` is false for anything else (the caller then parses line by line).
    """
    f = [pl.col(f"field_{i}") for i in range(16)]
    head, mid, rest = f[0], f[2], f[6:]
    lf = lf.with_columns(
        head.str.find(" ", literal=True).alias("_s0"),
        head.str.find(" [", literal=True).alias("_lb"),
        f[1].str.splitn(" ", 3).alias("_r"),
        mid.str.splitn(" ", 4).alias("_m"),
    )
    s0, lb = pl.col("_s0"), pl.col("_lb")
    req = [pl.col("_r").struct.field(f"field_{i}") for i in range(3)]
    lf = lf.with_columns(
        head.str.slice(lb + 2, head.str.len_bytes() - lb - 4).alias("_time"),
        req[1].str.splitn("?", 2).alias("_u"),
    )
    url = [pl.col("_u").struct.field(f"field_{i}") for i in range(2)]
    mid_parts = [pl.col("_m").struct.field(f"field_{i}") for i in range(3)]
    ts = pl.col("_time").str.strptime(pl.Datetime("us", "UTC"), _NGINX_TIME, strict=False)
    status, status_ok = _dash_int(mid_parts[1], pl.Int32())
    size, size_ok = _dash_int(mid_parts[2], pl.Int64())
    # ident and user are '-' in almost every log: only other lines pay for the capturing pattern.
    dashes = head.str.slice(s0, 6) == " - - ["
    user = pl.when(~dashes).then(head).str.extract(r"^\S+ \S+ (\S+) ", 1)
    quotes = pl.col("_line_len").cast(pl.Int64) - pl.sum_horizontal([c.str.len_bytes().fill_null(0) for c in f])
    # what follows the user agent's closing quote: nothing, or whitespace then anything without a key=value
    no_key = ~pl.any_horizontal([c.str.contains("=", literal=True).fill_null(False) for c in rest])
    tail_ok = ((rest[0] == "") & (quotes == 6)) | (rest[0].str.contains(r"^\s") & no_key)
    ok = (
        head.str.contains(_COMBINED_HEAD)
        & mid.str.contains(_COMBINED_MID)
        & (f[4] == " ")
        & f[5].is_not_null()
        & tail_ok
        & req[2].str.contains(_VERSION_RE)
        & req[1].str.contains(_ORIGIN_FORM)
        & (req[0].str.len_bytes() > 0)
        & ts.is_not_null()
        & status_ok
        & size_ok
    )
    length = pl.col("_line_len").cast(pl.Int64)
    ok = ok & quotes.is_between(6, 15)
    if max_line_bytes is not None:
        ok = ok & (length <= max_line_bytes)
    none = pl.lit(None, dtype=pl.String)
    return lf.select(
        "line_no",
        "text",
        ok.fill_null(False).alias("_ok"),
        length.cast(pl.Int64).alias("_len"),
        none.alias("reason"),
        ts.alias("@timestamp"),
        dash_null(head.str.head(s0)).alias("source.ip"),
        pl.when(~dashes).then(dash_null(user)).alias("user.name"),
        req[0].alias("http.request.method"),
        req[2].str.strip_prefix("HTTP/").alias("http.version"),
        none.alias("url.domain"),
        url[0].alias("url.path"),
        url[1].alias("url.query"),
        status.alias("http.response.status_code"),
        size.alias("http.response.body.bytes"),
        dash_null(f[3]).alias("http.request.referrer"),
        dash_null(f[5]).alias("user_agent.original"),
    )


def parse_nginx_chunk(raw: bytes, first_line: int, max_line_bytes: int) -> pl.DataFrame | None:
    """Parse a whole chunk of lines in one layout straight from bytes, or return None.

    polars' CSV reader with ``"`` as the separator and no quoting cuts every line at its quotes (in Rust,
    in parallel); the pieces go through :func:`_nginx_layout_select` (the writer's layout) or
    :func:`_nginx_combined_select` (plain combined, or combined with trailing fields that hold no
    ``key=value``), chosen by the chunk's first line. Returns canonical events only when every line is in
    that layout and every value converts; otherwise None, and the caller parses the chunk line by line
    (quarantining what does not parse). ``raw`` must hold complete lines, no final newline.
    """
    if not raw or raw.endswith(b"\n") or b"\r" in raw or looks_compressed(raw):
        return None
    try:
        pieces = pl.read_csv(
            raw,
            has_header=False,
            separator='"',
            quote_char=None,
            schema=_QUOTE_SPLIT_SCHEMA,
            truncate_ragged_lines=True,
            missing_columns="insert",
            empty_string_is_null=False,
        )
    except (pl.exceptions.PolarsError, OSError):
        return None  # e.g. invalid UTF-8: the line path finds and quarantines the line
    n = pieces.height
    lf = pieces.lazy().with_columns(
        pl.int_range(first_line, first_line + n, dtype=pl.Int64).alias("line_no"),
        pl.lit(None, dtype=pl.String).alias("text"),
    )
    # The layout of the chunk's first line picks the select; any line in another layout sends the chunk
    # to the line-by-line path.
    first_tail = pieces.item(0, "field_12") if n else None
    if isinstance(first_tail, str) and first_tail.startswith(" msec="):
        out = _nginx_layout_select(lf, max_line_bytes, whole_chunk=True).collect()
    else:
        if _UNIT_SEPARATOR in raw:
            return None
        lines = pl.read_csv(raw, has_header=False, separator="\x1f", quote_char=None, schema={"_line": pl.String})
        if lines.height != n:
            return None
        lf = lf.with_columns(pl.lit(lines.get_column("_line").str.len_bytes()).alias("_line_len"))
        out = _nginx_combined_select(lf, max_line_bytes).collect()
    if not bool(out.get_column("_ok").all()):
        return None
    # ``_len`` counts each line's pieces plus the quotes between them (12 in the writer's layout, which
    # ``_ok`` requires); if that and the newlines add up to the chunk, no line had more quotes than the
    # 15 the reader keeps apart (empty trailing pieces included), so no piece was cut off.
    if int(out.get_column("_len").sum()) + n - 1 != len(raw):
        return None
    if b"\\" in raw:
        out = _unescape_cols(out, _NGINX_UNESCAPE)
    return out.drop("line_no", "text", "reason", "_ok", "_len")


def parse_nginx(df: pl.DataFrame) -> pl.DataFrame:
    """Parse nginx/Apache combined (or common) lines with optional trailing ``key=value`` fields.

    Lines in exactly the writer's layout take :func:`_nginx_fast`; the others go through
    :func:`_nginx_general` (capturing regexes), and the two are merged back in line order.
    """
    fast = _nginx_fast(df)
    ok = fast.get_column("_ok")
    if bool(ok.all()):
        return fast.drop("_ok")
    slow = _nginx_general(df.filter(~ok))
    if not bool(ok.any()):
        return slow
    return pl.concat([fast.filter(ok).drop("_ok"), slow], how="vertical").sort("line_no")


def _nginx_general(df: pl.DataFrame) -> pl.DataFrame:
    """Parse any combined/common line (trailing key=value fields in any order) with capturing regexes.

    One lazy polars query: the writer's own layout is cut at its quotes; any other line goes through a
    capturing regex, which runs only on those rows.
    """
    ok, fields = _layout_fields()
    masked = pl.when(~pl.col("_ok")).then(pl.col("text"))
    gen_fast = masked.str.extract_groups(_NGINX.format(q=_Q_FAST))
    gen_slow = (
        pl.when(~pl.col("_ok") & pl.col("_gf").struct.field("ip").is_null())
        .then(pl.col("text"))
        .str.extract_groups(_NGINX.format(q=_Q_SLOW))
    )
    lf = (
        df.lazy()
        .with_columns(pl.col("text").str.splitn('"', 15).alias("_p"))
        .with_columns(_layout_splits())
        .with_columns(ok.alias("_ok"))
        .with_columns(gen_fast.alias("_gf"))
        .with_columns(gen_slow.alias("_gs"))
    )
    picked: list[pl.Expr] = []
    for name in _NGINX_FIELDS:
        picked.append(
            pl.coalesce(
                pl.when(pl.col("_ok")).then(fields[name]),
                pl.col("_gf").struct.field(name),
                pl.col("_gs").struct.field(name),
            ).alias(name)
        )
    matched = (
        pl.col("_ok") | pl.col("_gf").struct.field("ip").is_not_null() | pl.col("_gs").struct.field("ip").is_not_null()
    )
    lf = lf.with_columns(
        *picked,
        pl.when(matched).then(pl.lit(None, dtype=pl.String)).otherwise(pl.lit("field_count")).alias("reason"),
    )
    tail_keys = [
        pl.when(pl.col("_ok")).then(fields[f"_{key}"]).otherwise(_tail_expr(aliases)).alias(f"_{key}")
        for key, aliases in NGINX_TRAILING_KEYS.items()
    ]
    lf = lf.with_columns(tail_keys).with_columns([dash_null(pl.col(k)).alias(k) for k in _NGINX_KEYS])
    req = request_exprs_fast(pl.col("request"))
    lf = lf.with_columns(request_split_columns(pl.col("request")))
    lf = lf.with_columns(
        *[e.alias(n) for n, e in req.items()],
        pl.col("time").str.strptime(pl.Datetime("us", "UTC"), "%d/%b/%Y:%H:%M:%S %z", strict=False).alias("_ts"),
        pl.from_epoch(seconds_to_ns(pl.col("_msec")) // 1000, time_unit="us")
        .dt.replace_time_zone("UTC")
        .alias("_msec_ts"),
        seconds_to_ns(pl.col("_request_time")).alias("event.duration"),
    )
    reason = pl.col("reason")
    reason = _reason(reason, ~pl.col("_req_ok"), "bad_request_line")
    reason = _reason(reason, pl.col("time").is_not_null() & pl.col("_ts").is_null(), "bad_timestamp")
    reason = _reason(reason, pl.col("_msec").is_not_null() & pl.col("_msec_ts").is_null(), "bad_timestamp")
    bad_rt = pl.col("_request_time").is_not_null() & pl.col("event.duration").is_null()
    reason = _reason(reason, bad_rt, "bad_value")
    out = lf.select(
        "line_no",
        "text",
        reason.alias("reason"),
        pl.when(bad_rt).then(pl.lit("event.duration")).alias("_field"),
        pl.coalesce("_msec_ts", "_ts").alias("@timestamp"),
        dash_null(pl.col("ip")).alias("source.ip"),
        dash_null(pl.col("user")).alias("user.name"),
        "http.request.method",
        "http.version",
        pl.coalesce("url.domain", "_host").alias("url.domain"),
        "url.path",
        "url.query",
        dash_null(pl.col("status")).alias("http.response.status_code"),
        dash_null(pl.col("bytes")).alias("http.response.body.bytes"),
        dash_null(pl.col("ref")).alias("http.request.referrer"),
        dash_null(pl.col("ua")).alias("user_agent.original"),
        "event.duration",
        pl.col("_request_length").alias("http.request.bytes"),
        pl.col("_remote_port").alias("source.port"),
        pl.col("_request_id").alias("http.request.id"),
        pl.col("_ja3").alias("tls.client.ja3"),
    ).collect()
    if bool(df.get_column("text").str.contains("\\", literal=True).any()):
        out = _unescape_cols(out, _NGINX_UNESCAPE)
    result = finalize(out.drop("_field"))
    return result.with_columns(pl.coalesce(pl.col("field"), pl.lit(out.get_column("_field"))).alias("field"))


# --------------------------------------------------------------------------------------------------- ALB

ALB_MIN_FIELDS = 19
_ALB = (
    r"^(?P<type>\S+) (?P<time>\S+) (?P<elb>\S+) (?P<client>\S+) (?P<target>\S+) (?P<rpt>\S+) (?P<tpt>\S+) "
    r"(?P<rspt>\S+) (?P<status>\d{{3}}|-) (?P<tstatus>\S+) (?P<received>\S+) (?P<sent>\S+) "
    r'"(?P<request>{q})" "(?P<ua>{q})" (?P<cipher>\S+) (?P<protocol>\S+) (?P<tg>\S+)'
    r' "(?P<trace>{q})" "(?P<domain>{q})"(?P<tail>(?:\s.*)?)$'
)


def _alb_seconds(name: str) -> pl.Expr:
    """ALB processing time: seconds, '-1' when the request never reached that stage."""
    return pl.when(pl.col(name).is_in(["-1", "-"])).then(None).otherwise(seconds_to_ns(pl.col(name)))


def parse_alb(df: pl.DataFrame) -> pl.DataFrame:
    """Parse AWS Application Load Balancer access-log lines (fields AWS appends later are ignored)."""
    g = _unescape_cols(_groups(df, _ALB, "type"), ("request", "ua", "trace", "domain"))
    client = pl.col("client").str.extract_groups(r"^\[?(?P<ip>.*?)\]?:(?P<port>\d+|-)$")
    req = request_exprs(pl.col("request"))
    times = [_alb_seconds(n) for n in ("rpt", "tpt", "rspt")]
    g = g.with_columns(
        parse_iso_timestamp(pl.col("time")).alias("@timestamp"),
        dash_null(pl.coalesce(client.struct.field("ip"), pl.col("client"))).alias("source.ip"),
        dash_null(client.struct.field("port")).alias("source.port"),
        (times[0] + times[1] + times[2]).alias("event.duration"),
        *[e.alias(n) for n, e in req.items()],
    )
    g = g.with_columns(_reason(pl.col("reason"), ~pl.col("_req_ok"), "bad_request_line"))
    g = _check(g, "time", "@timestamp", "bad_timestamp")
    out = g.select(
        *_CANONICAL_OUT,
        "@timestamp",
        "source.ip",
        "source.port",
        "http.request.method",
        "http.version",
        pl.coalesce(dash_null(pl.col("url.domain")), dash_null(pl.col("domain"))).alias("url.domain"),
        "url.path",
        "url.query",
        dash_null(pl.col("status")).alias("http.response.status_code"),
        dash_null(pl.col("received")).alias("http.request.bytes"),
        dash_null(pl.col("sent")).alias("http.response.body.bytes"),
        dash_null(pl.col("ua")).alias("user_agent.original"),
        dash_null(pl.col("trace")).alias("http.request.id"),
        "event.duration",
    )
    return finalize(out)


# ------------------------------------------------------------------------------------------------- Envoy

ENVOY_MIN_FIELDS = 13
_ENVOY = (
    r'^\[(?P<time>[^\]]*)\] "(?P<request>{q})" (?P<code>\S+) (?P<flags>\S+) (?P<received>\S+) (?P<sent>\S+) '
    r'(?P<duration>\S+) (?P<ust>\S+) "(?P<xff>{q})" "(?P<ua>{q})" "(?P<rid>{q})" "(?P<authority>{q})" '
    r'"(?P<upstream>{q})"(?P<tail>(?:\s.*)?)$'
)


def first_hop(expr: pl.Expr) -> pl.Expr:
    """The first address of an X-Forwarded-For list; '-' is null."""
    return dash_null(expr.str.split(",").list.first().str.strip_chars())


def parse_envoy(df: pl.DataFrame) -> pl.DataFrame:
    """Parse Envoy's default text access-log lines (fields appended after the default ones are ignored)."""
    g = _unescape_cols(_groups(df, _ENVOY, "time"), ("request", "xff", "ua", "rid", "authority"))
    req = request_exprs(pl.col("request"))
    g = g.with_columns(
        parse_iso_timestamp(pl.col("time")).alias("@timestamp"),
        dash_null(pl.col("duration")).alias("_dur"),
        *[e.alias(n) for n, e in req.items()],
    )
    g = g.with_columns((pl.col("_dur").cast(pl.Int64, strict=False) * 1_000_000).alias("event.duration"))
    g = g.with_columns(_reason(pl.col("reason"), ~pl.col("_req_ok"), "bad_request_line"))
    g = _check(g, "time", "@timestamp", "bad_timestamp")
    g = _check(g, "_dur", "event.duration", "bad_value")
    out = g.select(
        *_CANONICAL_OUT,
        "@timestamp",
        first_hop(pl.col("xff")).alias("source.ip"),
        "http.request.method",
        "http.version",
        pl.coalesce("url.domain", dash_null(pl.col("authority")).str.replace(r":\d+$", "")).alias("url.domain"),
        "url.path",
        "url.query",
        dash_null(pl.col("code")).alias("http.response.status_code"),
        dash_null(pl.col("received")).alias("http.request.bytes"),
        dash_null(pl.col("sent")).alias("http.response.body.bytes"),
        dash_null(pl.col("ua")).alias("user_agent.original"),
        dash_null(pl.col("rid")).alias("http.request.id"),
        "event.duration",
    )
    return finalize(out)


# -------------------------------------------------------------------------------------------------- JSON


def _json_dtype(paths: list[str]) -> pl.Struct:
    """A Struct dtype holding every path both as a dotted top-level key and as nested objects."""
    tree: dict[str, object] = {}
    for path in paths:
        tree[path] = None  # dotted (or plain) top-level key
        parts = path.split(".")
        if len(parts) > 1:
            node = tree.setdefault(parts[0], {})
            if not isinstance(node, dict):
                continue
            ok = True
            for part in parts[1:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    ok = False
                    break
                node = child
            if ok and parts[-1] not in node:
                node[parts[-1]] = None

    def build(node: Mapping[str, object]) -> pl.Struct:
        return pl.Struct({k: (pl.String if v is None else build(v)) for k, v in node.items()})  # type: ignore[arg-type]

    return build(tree)


def _get_path(struct: pl.Expr, path: str) -> list[pl.Expr]:
    """Expressions reading ``path`` as a dotted key and as a nested path (where the dtype has both)."""
    exprs = [struct.struct.field(path)]
    parts = path.split(".")
    if len(parts) > 1:
        nested = struct
        for part in parts:
            nested = nested.struct.field(part)
        exprs.append(nested)
    return exprs


def _classify_json(text: str) -> str:
    """Why one line failed to decode: bad_json, not_object or bad_json_type."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "bad_json"
    return "bad_json_type" if isinstance(value, dict) else "not_object"


def decode_json_lines(texts: pl.Series, dtype: pl.Struct) -> tuple[pl.Series, dict[int, str]]:
    """Decode JSON objects into ``dtype``; return the struct Series and ``{row: reason}`` for rows that failed.

    Fast path: one vectorised decode. When it fails, each line is checked with ``json.loads`` and lines that
    are valid JSON but of the wrong shape are found by bisection.
    """
    bad: dict[int, str] = {}
    n = texts.len()
    stripped = texts.str.strip_chars()
    not_obj = ~stripped.str.starts_with("{").fill_null(False)
    for i in not_obj.arg_true().to_list():
        bad[i] = _classify_json(texts[i])

    def try_decode(values: pl.Series) -> pl.Series | None:
        try:
            return values.str.json_decode(dtype)
        except pl.exceptions.PolarsError:
            return None

    work = pl.select(pl.when(pl.lit(not_obj)).then(pl.lit("{}")).otherwise(pl.lit(texts))).to_series()
    decoded = try_decode(work)
    if decoded is None:
        for i, text in enumerate(work.to_list()):
            if i not in bad:
                try:
                    value = json.loads(text)
                except (ValueError, RecursionError):
                    bad[i] = "bad_json"
                    continue
                if not isinstance(value, dict):
                    bad[i] = "not_object"
        if bad:
            idx = pl.Series(sorted(bad), dtype=pl.UInt32)
            work = work.scatter(idx, "{}")
        decoded = try_decode(work)
        if decoded is None:

            def bisect(lo: int, hi: int) -> None:
                if try_decode(work.slice(lo, hi - lo)) is not None:
                    return
                if hi - lo == 1:
                    bad[lo] = "bad_json_type"
                    return
                mid = (lo + hi) // 2
                bisect(lo, mid)
                bisect(mid, hi)

            bisect(0, n)
            idx = pl.Series(sorted(bad), dtype=pl.UInt32)
            work = work.scatter(idx, "{}")
            decoded = work.str.json_decode(dtype)
    return decoded, bad


def _json_parser(sources: Mapping[str, tuple[str, ...]], post: Callable[[pl.DataFrame], pl.DataFrame]) -> Parser:
    paths = sorted({p for ps in sources.values() for p in ps})
    dtype = _json_dtype(paths)

    def parse(df: pl.DataFrame) -> pl.DataFrame:
        decoded, bad = decode_json_lines(df.get_column("text"), dtype)
        reasons = [None] * df.height
        for i, why in bad.items():
            reasons[i] = why  # type: ignore[call-overload]
        base = pl.DataFrame(
            {"line_no": df.get_column("line_no"), "text": df.get_column("text"), "reason": reasons},
            schema={"line_no": pl.Int64, "text": pl.String, "reason": pl.String},
        )
        j = pl.DataFrame({"j": decoded})
        cols = j.select(
            [
                pl.coalesce([e for p in ps for e in _get_path(pl.col("j"), p)]).alias(name)
                for name, ps in sources.items()
            ]
        )
        return post(pl.concat([base, cols], how="horizontal"))

    return parse


# ECS (and OpenTelemetry HTTP semantic-convention) names, canonical column -> names read, first wins.
ECS_SOURCES: dict[str, tuple[str, ...]] = {name: (name,) for name in EVENT_SCHEMA}
ECS_SOURCES["@timestamp"] = ("@timestamp", "timestamp", "time")
ECS_SOURCES["source.ip"] = ("source.ip", "source.address", "client.address", "client.ip")
ECS_SOURCES["source.port"] = ("source.port", "client.port")
ECS_SOURCES["url.domain"] = ("url.domain", "server.address", "http.host")
ECS_SOURCES["http.request.method"] = ("http.request.method", "http.method")
ECS_SOURCES["http.version"] = ("http.version", "network.protocol.version", "http.flavor")
ECS_SOURCES["http.request.bytes"] = ("http.request.bytes", "http.request.size")
ECS_SOURCES["http.response.status_code"] = ("http.response.status_code", "http.status_code")
ECS_SOURCES["http.response.body.bytes"] = ("http.response.body.bytes", "http.response.body.size")
ECS_SOURCES["user_agent.original"] = ("user_agent.original", "http.user_agent")
ECS_SOURCES["user.id"] = ("user.id", "enduser.id")
ECS_SOURCES["_url.original"] = ("url.original", "url.full", "http.url", "http.target")


def _ecs_post(frame: pl.DataFrame) -> pl.DataFrame:
    target = target_exprs(pl.col("_url.original"))
    frame = frame.with_columns([pl.coalesce(pl.col(n), e).alias(n) for n, e in target.items()])
    return finalize(frame.drop("_url.original"))


parse_ecs = _json_parser(ECS_SOURCES, _ecs_post)

ENVOY_JSON_SOURCES: dict[str, tuple[str, ...]] = {
    "start_time": ("start_time", "@timestamp", "timestamp"),
    "method": ("method",),
    "path": ("path", "x_envoy_original_path"),
    "protocol": ("protocol",),
    "response_code": ("response_code",),
    "bytes_received": ("bytes_received",),
    "bytes_sent": ("bytes_sent",),
    "duration": ("duration",),
    "x_forwarded_for": ("x_forwarded_for",),
    "user_agent": ("user_agent",),
    "request_id": ("request_id", "x_request_id"),
    "authority": ("authority",),
    "downstream_remote_address": ("downstream_remote_address",),
    "referer": ("referer", "referrer"),
    "ja3_fingerprint": ("ja3_fingerprint", "tls_ja3_fingerprint"),
}

#: Keys that mark a JSON line as an Envoy access log rather than ECS.
ENVOY_JSON_MARKERS = ("start_time", "response_code", "response_flags", "upstream_host", "downstream_remote_address")


def _envoy_json_post(frame: pl.DataFrame) -> pl.DataFrame:
    target = target_exprs(pl.col("path"))
    remote = pl.col("downstream_remote_address").str.extract_groups(
        r"^(?:\[(?P<ip6>[^\]]*)\](?::(?P<p6>\d+))?|(?P<ip4>[^:\[\]]*)(?::(?P<p4>\d+))?)$"
    )
    remote_ip = pl.coalesce(remote.struct.field("ip6"), remote.struct.field("ip4"))
    remote_port = pl.coalesce(remote.struct.field("p6"), remote.struct.field("p4"))
    g = frame.with_columns(
        first_hop(pl.col("x_forwarded_for")).alias("_xff"),
        dash_null(pl.col("duration")).alias("_dur"),
        *[e.alias(n) for n, e in target.items()],
    )
    g = g.with_columns((pl.col("_dur").cast(pl.Int64, strict=False) * 1_000_000).alias("event.duration"))
    g = _check(g, "_dur", "event.duration", "bad_value")
    out = g.select(
        *_CANONICAL_OUT,
        pl.col("start_time").alias("@timestamp"),
        pl.coalesce("_xff", pl.when(remote_ip.str.len_bytes() > 0).then(remote_ip)).alias("source.ip"),
        pl.when(pl.col("_xff").is_null()).then(remote_port).alias("source.port"),
        pl.coalesce("url.domain", dash_null(pl.col("authority")).str.replace(r":\d+$", "")).alias("url.domain"),
        "url.path",
        "url.query",
        dash_null(pl.col("method")).alias("http.request.method"),
        pl.col("protocol").str.extract(r"^HTTP/(\d+(?:\.\d+)?)$").alias("http.version"),
        dash_null(pl.col("request_id")).alias("http.request.id"),
        dash_null(pl.col("referer")).alias("http.request.referrer"),
        dash_null(pl.col("bytes_received")).alias("http.request.bytes"),
        dash_null(pl.col("response_code")).alias("http.response.status_code"),
        dash_null(pl.col("bytes_sent")).alias("http.response.body.bytes"),
        "event.duration",
        dash_null(pl.col("user_agent")).alias("user_agent.original"),
        dash_null(pl.col("ja3_fingerprint")).alias("tls.client.ja3"),
    )
    return finalize(out)


parse_envoy_json = _json_parser(ENVOY_JSON_SOURCES, _envoy_json_post)

#: Line parsers by format name.
LINE_PARSERS: dict[str, Parser] = {
    "nginx": parse_nginx,
    "alb": parse_alb,
    "envoy": parse_envoy,
    "envoy-json": parse_envoy_json,
    "ecs": parse_ecs,
}

#: Minimum field counts of the text formats, for messages.
MIN_FIELDS: dict[str, int] = {"nginx": NGINX_MIN_FIELDS, "alb": ALB_MIN_FIELDS, "envoy": ENVOY_MIN_FIELDS}

#: What each format is called in messages.
FORMAT_DESCRIPTIONS: dict[str, str] = {
    "nginx": "nginx/Apache combined format",
    "alb": "AWS ALB access-log format",
    "envoy": "Envoy default access-log format",
    "envoy-json": "Envoy JSON access log",
    "ecs": "ECS JSON lines",
}
