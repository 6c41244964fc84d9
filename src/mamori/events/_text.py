"""Vectorised text helpers shared by readers and writers: escaping, request lines, timestamps, numbers."""

from __future__ import annotations

import re

import polars as pl

# ---------------------------------------------------------------------------------------------- escaping
# Writers escape the way nginx's ``escape=default`` does: '"' -> \x22, '\' -> \x5C, control characters
# -> \xHH. Text outside ASCII is written as UTF-8 unchanged (nginx would write \xHH for each byte; readers
# accept both). Readers also accept backslash escapes \" and \\ (Envoy, hand-written logs).

_ESCAPES: dict[str, str] = {"\\": "\\x5C", '"': "\\x22"}
_ESCAPES.update({chr(c): f"\\x{c:02X}" for c in [*range(0x20), 0x7F]})

_UNESCAPES: dict[str, str] = {'\\"': '"', "\\\\": "\\"}
for _c in range(0x80):
    _UNESCAPES[f"\\x{_c:02X}"] = chr(_c)
    _UNESCAPES[f"\\x{_c:02x}"] = chr(_c)

_HIGH_ESCAPE = r"\\x[89a-fA-F][0-9a-fA-F]"
_PY_UNESCAPE = re.compile(rb'\\(?:x([0-9a-fA-F]{2})|(["\\]))')


def escape_text(expr: pl.Expr) -> pl.Expr:
    r"""Escape '"', '\\' and control characters as ``\\xHH`` so the value fits in a quoted log field."""
    return expr.str.replace_many(_ESCAPES, leftmost=True)


def _py_unescape(value: str | None) -> str | None:
    r"""Decode ``\\xHH``, ``\\"`` and ``\\\\`` of one value byte-wise (slow path for non-ASCII bytes)."""
    if value is None:
        return None

    def repl(m: re.Match[bytes]) -> bytes:
        return bytes([int(m.group(1), 16)]) if m.group(1) else m.group(2)

    return _PY_UNESCAPE.sub(repl, value.encode("utf-8")).decode("utf-8", errors="replace")


def unescape_series(series: pl.Series) -> pl.Series:
    r"""Decode escapes in a string Series: vectorised for ASCII escapes, per value for ``\\x80``-``\\xFF``."""
    if series.len() == 0:
        return series
    has_escape = series.str.contains("\\", literal=True).fill_null(False)
    if not has_escape.any():
        return series
    high = series.str.contains(_HIGH_ESCAPE).fill_null(False)
    out = series.str.replace_many(_UNESCAPES, leftmost=True)
    if high.any():
        idx = high.arg_true()
        fixed = [_py_unescape(v) for v in series.gather(idx).to_list()]
        out = out.scatter(idx, pl.Series(fixed, dtype=pl.String))
    return out


# ---------------------------------------------------------------------------------------------- requests

_TARGET_RE = r"^(?:([A-Za-z][A-Za-z0-9+.-]*)://([^/?#\s]*))?([^?]*)(?:\?(.*))?$"


def target_exprs(expr: pl.Expr) -> dict[str, pl.Expr]:
    """Expressions splitting a request target (origin- or absolute-form) into url.domain, url.path, url.query.

    The host loses any user-info, port and IPv6 brackets; an empty host is null.
    """
    parts = expr.str.extract_groups(_TARGET_RE)
    host = parts.struct.field("2").str.replace(r"^.*@", "").str.replace(r":\d*$", "").str.strip_chars("[]")
    return {
        "url.domain": pl.when(host.str.len_bytes() > 0).then(host).otherwise(None),
        "url.path": parts.struct.field("3"),
        "url.query": parts.struct.field("4"),
    }


def split_target(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Split ``column`` of ``frame`` into a frame of url.domain, url.path and url.query (see target_exprs)."""
    return frame.select([e.alias(n) for n, e in target_exprs(pl.col(column)).items()])


# ---------------------------------------------------------------------------------------------- numbers


def dash_null(expr: pl.Expr) -> pl.Expr:
    """Map the log placeholder '-' to null."""
    return pl.when(expr == "-").then(None).otherwise(expr)


def seconds_to_ns(expr: pl.Expr) -> pl.Expr:
    """Parse decimal seconds ('0.123', '12') to integer nanoseconds without float rounding; else null."""
    parts = expr.str.splitn(".", 2)
    whole_text = parts.struct.field("field_0")
    whole = whole_text.cast(pl.Int64, strict=False)
    frac_text = parts.struct.field("field_1")
    frac = (
        pl.when(frac_text.is_null())
        .then(pl.lit(0, dtype=pl.Int64))
        .when(frac_text.str.len_bytes().is_between(1, 9))
        .then(frac_text.str.pad_end(9, "0").cast(pl.Int64, strict=False))
    )
    ok = (whole >= 0) & (frac >= 0) & whole_text.str.starts_with("+").not_()
    return pl.when(ok).then(whole * 1_000_000_000 + frac)


def ns_to_seconds_text(expr: pl.Expr, decimals: int = 3) -> pl.Expr:
    """Render integer nanoseconds as decimal seconds with ``decimals`` places; null as '-'."""
    unit = 10 ** (9 - decimals)
    scaled = expr // unit
    whole = (scaled // 10**decimals).cast(pl.String)
    frac = (scaled % 10**decimals).cast(pl.String).str.zfill(decimals)
    return pl.concat_str([whole, pl.lit("."), frac]).fill_null("-")


def text_or_dash(expr: pl.Expr) -> pl.Expr:
    """Cast to text, null as '-'."""
    return expr.cast(pl.String).fill_null("-")


# ---------------------------------------------------------------------------------------------- timestamps

_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
_TS = pl.Datetime("us", "UTC")


def parse_iso_timestamp(expr: pl.Expr) -> pl.Expr:
    """Parse ISO-8601 text ('Z', an offset, or naive meaning UTC; any fraction) to Datetime(us, UTC)."""
    attempts: list[pl.Expr] = []
    for fmt in _ISO_FORMATS:
        if "z" in fmt.lower():
            attempts.append(expr.str.strptime(_TS, fmt, strict=False))
        else:
            attempts.append(expr.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.replace_time_zone("UTC"))
    return pl.coalesce(attempts)


def format_iso_timestamp(expr: pl.Expr, decimals: int = 6) -> pl.Expr:
    """Render a UTC datetime as ISO-8601 with ``decimals`` fractional digits (3 or 6) and 'Z'."""
    frac = "%.3f" if decimals == 3 else "%.6f"
    return expr.dt.convert_time_zone("UTC").dt.strftime(f"%Y-%m-%dT%H:%M:%S{frac}Z")


def parse_bool(expr: pl.Expr) -> pl.Expr:
    """Parse 'true'/'false'/'1'/'0' (any case) to Boolean; anything else is null."""
    low = expr.str.to_lowercase().str.strip_chars()
    return (
        pl.when(low.is_in(["true", "1", "t", "yes", "y"]))
        .then(True)
        .when(low.is_in(["false", "0", "f", "no", "n"]))
        .then(False)
        .otherwise(None)
    )
