r"""Read any CSV log with a column mapping given in TOML.

Example ``map.toml``::

    delimiter = ","            # one character; "\\t" for TSV
    header = true              # the first row names the columns
    timestamp_format = ""      # "" = ISO-8601; a chrono format such as "%d/%m/%Y %H:%M:%S";
                               # or "epoch_s", "epoch_ms", "epoch_us", "epoch_ns"
    timezone = "UTC"           # for timestamps without an offset
    duration_unit = "ms"       # unit of the column mapped to event.duration: ns, us, ms or s

    [columns]                  # canonical column = CSV column (header name, or 1-based index if header = false)
    "@timestamp" = "time"
    "source.ip" = "client_ip"
    "http.request.method" = "method"
    "url.path" = "path"
    "http.response.status_code" = "status"
    "labels.is_attack" = "label"

    [constants]                # canonical column = the same value on every row
    "organization.id" = "bank-a"

    [values."labels.is_attack"]   # raw value -> value before conversion, per column
    normal = "false"
    attack = "true"
"""

from __future__ import annotations

import csv
import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from mamori.errors import ConfigError, SchemaError
from mamori.events._parsers import finalize
from mamori.events._source import KEEP_BYTES, MAX_LINE_BYTES, ProgressCallback, iter_streams
from mamori.events.quarantine import Quarantine
from mamori.events.schema import EVENT_SCHEMA, conform

if TYPE_CHECKING:
    from mamori.events.readers import ReadResult, ReadSummary

__all__ = ["CsvMappingConfig", "load_mapping", "read_csv_mapped"]

logger = logging.getLogger(__name__)

_EPOCH_UNITS = {"epoch_s": 1_000_000, "epoch_ms": 1_000, "epoch_us": 1, "epoch_ns": None}
_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class CsvMappingConfig(BaseModel):
    """How to turn a CSV file into canonical events (loaded from TOML by :func:`load_mapping`).

    Parameters
    ----------
    columns : dict of str to str or int
        Canonical column -> CSV column name (or 1-based index when ``header`` is false).
    constants : dict of str to str, int, float or bool, default={}
        Canonical column -> a value for every row.
    values : dict of str to dict of str to str, default={}
        Canonical column -> {raw value: replacement} applied before conversion.
    delimiter : str, default=","
        One character.
    header : bool, default=True
        Whether the first row names the columns.
    timestamp_format : str, default=""
        ``""`` for ISO-8601, a chrono/strftime format, or ``epoch_s`` / ``epoch_ms`` / ``epoch_us`` /
        ``epoch_ns``.
    timezone : str, default="UTC"
        Time zone of timestamps that carry no offset.
    duration_unit : {"ns", "us", "ms", "s"}, default="ns"
        Unit of the CSV column mapped to ``event.duration`` (stored as nanoseconds).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: dict[str, str | int]
    constants: dict[str, str | int | float | bool] = {}
    values: dict[str, dict[str, str]] = {}
    delimiter: str = ","
    header: bool = True
    timestamp_format: str = ""
    timezone: str = "UTC"
    duration_unit: Literal["ns", "us", "ms", "s"] = "ns"

    @field_validator("columns", "constants", "values")
    @classmethod
    def _canonical_names(cls, value: dict[str, object]) -> dict[str, object]:
        unknown = [k for k in value if k not in EVENT_SCHEMA]
        if unknown:
            raise ValueError(f"{unknown} are not canonical event columns (see mamori.events.EVENT_SCHEMA)")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"delimiter must be one character, got {value!r}")
        return value


def load_mapping(mapping: str | Path | CsvMappingConfig) -> CsvMappingConfig:
    """Load and validate a CSV column mapping from a TOML file.

    Parameters
    ----------
    mapping : str or pathlib.Path or CsvMappingConfig
        The TOML file (see the module docstring), or an already built config (returned unchanged).

    Returns
    -------
    CsvMappingConfig
        The validated mapping.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or has unknown keys or non-canonical column names.
    """
    if isinstance(mapping, CsvMappingConfig):
        return mapping
    path = Path(mapping)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"CSV mapping '{path}' does not exist.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"CSV mapping '{path.name}' is not valid TOML: {exc}.") from exc
    try:
        return CsvMappingConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"CSV mapping '{path.name}' is invalid: {problems}. See docs/events.md.") from exc


def _decoded_lines(
    stream: object, source: str, bad: list[tuple[int, bytes, str, str]], pos: list[int]
) -> Iterator[str]:
    """Yield decoded lines for csv.reader, recording (in ``pos``) the physical number of the last one."""
    line_no = 0
    readline = stream.readline  # type: ignore[attr-defined]
    while True:
        raw: bytes = readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_no += 1
        pos[0] = line_no
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            head = raw[:KEEP_BYTES]
            while raw and not raw.endswith(b"\n"):
                raw = readline(MAX_LINE_BYTES + 1)
            bad.append((line_no, head, "line_too_long", f"line {line_no:,} is longer than {MAX_LINE_BYTES:,} bytes"))
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((line_no, raw.rstrip(b"\r\n"), "invalid_utf8", f"line {line_no:,} is not valid UTF-8"))


def _convert(raw: pl.DataFrame, cfg: CsvMappingConfig) -> pl.DataFrame:
    """Apply value maps, timestamp format, duration unit and constants; finalize to canonical dtypes."""
    exprs: list[pl.Expr] = []
    for name in cfg.values:
        if name in raw.columns:
            exprs.append(pl.col(name).replace(cfg.values[name]).alias(name))
    frame = raw.with_columns(exprs) if exprs else raw
    if "@timestamp" in frame.columns and cfg.timestamp_format:
        col = pl.col("@timestamp").str.strip_chars()
        fmt = cfg.timestamp_format
        if fmt in _EPOCH_UNITS:
            num = col.cast(pl.Int64, strict=False)
            unit = _EPOCH_UNITS[fmt]
            us = num // 1000 if unit is None else num * unit
            parsed = pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")
        elif "%z" in fmt or "%:z" in fmt:
            parsed = col.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False)
        else:
            parsed = (
                col.str.strptime(pl.Datetime("us"), fmt, strict=False)
                .dt.replace_time_zone(cfg.timezone, ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )
        frame = frame.with_columns(parsed.alias("_ts"))
        frame = (
            frame.with_columns(
                pl.when(pl.col("reason").is_null() & pl.col("@timestamp").is_not_null() & pl.col("_ts").is_null())
                .then(pl.lit("bad_timestamp"))
                .otherwise(pl.col("reason"))
                .alias("reason")
            )
            .with_columns(pl.col("_ts").alias("@timestamp"))
            .drop("_ts")
        )
    if "event.duration" in frame.columns:
        dur = pl.col("event.duration").str.strip_chars().cast(pl.Float64, strict=False)
        frame = (
            frame.with_columns(dur.alias("_dur"))
            .with_columns(
                pl.when(pl.col("reason").is_null() & pl.col("event.duration").is_not_null() & pl.col("_dur").is_null())
                .then(pl.lit("bad_value"))
                .otherwise(pl.col("reason"))
                .alias("reason"),
                (pl.col("_dur") * _NS_PER[cfg.duration_unit])
                .round(0)
                .cast(pl.Int64, strict=False)
                .alias("event.duration"),
            )
            .drop("_dur")
        )
    if cfg.constants:
        frame = frame.with_columns([pl.lit(v).alias(k) for k, v in cfg.constants.items() if k not in cfg.columns])
    return finalize(frame)


def _iter_csv(
    path: Path,
    cfg: CsvMappingConfig,
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    summary: ReadSummary,
    progress: ProgressCallback | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield canonical frames of at most ``batch_lines`` CSV rows."""
    for source, stream in iter_streams(path):
        yield from _iter_csv_stream(
            source, stream, cfg, quarantine=quarantine, batch_lines=batch_lines, summary=summary
        )


def _iter_csv_stream(
    source: str,
    stream: object,
    cfg: CsvMappingConfig,
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    summary: ReadSummary,
) -> Iterator[pl.DataFrame]:
    """Rows of one CSV stream, batch by batch."""
    bad: list[tuple[int, bytes, str, str]] = []
    pos = [0]
    reader = csv.reader(_decoded_lines(stream, source, bad, pos), delimiter=cfg.delimiter)
    where = f"read_csv_mapped: '{source}'"
    header: list[str] | None = None
    width: int | None = None
    if cfg.header:
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SchemaError(f"{where}: the header row cannot be read as CSV ({exc}).") from exc
        width = len(header)
    index: dict[str, int] = {}
    for name, ref in cfg.columns.items():
        if isinstance(ref, int):
            index[name] = ref - 1
        elif header is not None and ref in header:
            index[name] = header.index(ref)
        else:
            raise SchemaError(
                f"{where}: the mapping names CSV column {ref!r} for '{name}', but the header has "
                f"{header if header is not None else 'no names (header = false)'}; fix the mapping."
            )
    needed = max(index.values(), default=-1) + 1
    rows: dict[str, list[str | None]] = {name: [] for name in index}
    line_nos: list[int] = []
    texts: list[str] = []
    prev_end = pos[0]

    def flush_bad() -> None:
        for line_no, raw, reason, detail in bad:
            summary.lines += 1
            summary.add_reasons({reason: 1})
            if quarantine is not None:
                quarantine.add(source, line_no, raw, reason, f"{where}: {detail}.")
        bad.clear()

    def emit() -> pl.DataFrame | None:
        if not line_nos:
            return None
        raw = pl.DataFrame(
            {"line_no": line_nos, "text": texts, "reason": [None] * len(line_nos), **rows},
            schema={"line_no": pl.Int64, "text": pl.String, "reason": pl.String, **{k: pl.String for k in rows}},
        )
        parsed = _convert(raw, cfg)
        ok = parsed.get_column("reason").is_null()
        from mamori.events.readers import line_detail

        for line_no, text, reason, column in (
            parsed.filter(~ok).select("line_no", "text", "reason", "field").iter_rows()
        ):
            summary.add_reasons({reason: 1})
            if quarantine is not None:
                quarantine.add(source, line_no, text, reason, line_detail("csv", source, line_no, text, reason, column))
        good = parsed.filter(ok).drop("line_no", "text", "reason", "field")
        summary.parsed += good.height
        for v in rows.values():
            v.clear()
        line_nos.clear()
        texts.clear()
        return conform(good, source="read_csv_mapped")

    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            summary.lines += 1
            summary.add_reasons({"csv_field_count": 1})
            if quarantine is not None:
                quarantine.add(
                    source, pos[0], "", "csv_field_count", f"{where}: line {pos[0]:,} is not valid CSV ({exc})."
                )
            prev_end = pos[0]
            continue
        start = max([prev_end + 1, *(b[0] + 1 for b in bad)])
        prev_end = pos[0]
        flush_bad()
        if not row or (len(row) == 1 and not row[0].strip()):
            summary.lines += 1
            summary.blank += 1
            continue
        summary.lines += 1
        text = cfg.delimiter.join(row)
        if (width is not None and len(row) != width) or len(row) < needed:
            expected = width if width is not None else needed
            summary.add_reasons({"csv_field_count": 1})
            if quarantine is not None:
                quarantine.add(
                    source,
                    start,
                    text,
                    "csv_field_count",
                    f"{where}: line {start:,} has {len(row)} fields, expected {expected} (as the header). Quarantined.",
                )
            continue
        line_nos.append(start)
        texts.append(text)
        for name, i in index.items():
            value = row[i]
            rows[name].append(value if value != "" else None)
        if len(line_nos) >= batch_lines:
            frame = emit()
            if frame is not None and frame.height:
                yield frame
    flush_bad()
    frame = emit()
    if frame is not None and frame.height:
        yield frame


def read_csv_mapped(
    path: str | Path, mapping_toml: str | Path | CsvMappingConfig, *, quarantine: Quarantine | None = None
) -> ReadResult:
    """Read a CSV log into canonical events using a TOML column mapping.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file (plain or gzip).
    mapping_toml : str or pathlib.Path or CsvMappingConfig
        The mapping (see the module docstring and docs/events.md).
    quarantine : Quarantine or None, default=None
        Where rows that do not parse go (wrong field count, invalid UTF-8, values that do not convert).

    Returns
    -------
    ReadResult
        The canonical frame and the summary.

    Raises
    ------
    ConfigError
        If the mapping is invalid.
    SchemaError
        If the file is missing or its header lacks a mapped column.
    """
    from mamori.events.readers import ReadResult, ReadSummary

    src = Path(path)
    cfg = load_mapping(mapping_toml)
    summary = ReadSummary(source=src.name, format="csv")
    frames = list(_iter_csv(src, cfg, quarantine=quarantine, batch_lines=200_000, summary=summary))
    from mamori.events.schema import empty_events

    frame = pl.concat(frames, how="vertical") if frames else empty_events()
    return ReadResult(frame=frame, summary=summary)
