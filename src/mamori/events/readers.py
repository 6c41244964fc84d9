"""Read log files into the canonical event table, batch by batch, quarantining what does not parse.

The readers never hold a whole file: bytes are read in chunks, cut into lines, and each batch of lines is
parsed at once with polars regular expressions (:mod:`mamori.events._parsers`). A bad line costs a little
Python; a good one none.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mamori.errors import MamoriError, SchemaError, TruncatedInputError
from mamori.events._parsers import (
    FORMAT_DESCRIPTIONS,
    LINE_PARSERS,
    MIN_FIELDS,
    count_fields,
    parse_nginx_chunk,
)
from mamori.events._source import MAX_LINE_BYTES, LineBatch, ProgressCallback, iter_path_batches
from mamori.events.formats import READ_FORMATS
from mamori.events.quarantine import Quarantine
from mamori.events.schema import EVENT_SCHEMA, conform, empty_events

__all__ = [
    "DEFAULT_BATCH_LINES",
    "ReadResult",
    "ReadSummary",
    "iter_event_batches",
    "parse_lines",
    "read_events",
    "read_event_parquet",
]

logger = logging.getLogger(__name__)

#: Batches parsed at the same time (on threads; polars releases the GIL).
PARSE_THREADS = 2

#: Lines parsed per batch (a batch of 200,000 nginx lines is about 60 MB of polars memory).
DEFAULT_BATCH_LINES = 200_000


@dataclass
class ReadSummary:
    """What a reader did with its input.

    Attributes
    ----------
    source : str
        The file read (name only).
    format : str
        The format it was read as (after ``auto`` detection).
    lines : int
        Physical lines (or, for CSIC, requests; for CSV, rows) seen, blank ones included.
    parsed : int
        Events produced.
    quarantined : int
        Lines or records sent to the quarantine.
    blank : int
        Empty lines skipped (not events, not errors).
    by_reason : dict of str to int
        Quarantined count per reason code (see :data:`mamori.events.REASONS`).

    Notes
    -----
    ``parsed + quarantined + blank == lines`` for line formats: nothing is dropped silently.
    """

    source: str
    format: str
    lines: int = 0
    parsed: int = 0
    quarantined: int = 0
    blank: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def add_reasons(self, counts: Counter[str] | dict[str, int]) -> None:
        """Add quarantined counts by reason."""
        for reason, n in counts.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
            self.quarantined += n


@dataclass(frozen=True)
class ReadResult:
    """A whole file read into memory: the canonical ``frame`` and the reader's ``summary``."""

    frame: pl.DataFrame
    summary: ReadSummary


_READER_NAMES = {
    "nginx": "read_nginx",
    "alb": "read_alb",
    "envoy": "read_envoy",
    "envoy-json": "read_envoy_json",
    "ecs": "read_ecs",
    "csic": "read_csic",
    "csv": "read_csv_mapped",
}

_TIME_FORMATS = {
    "nginx": "'[01/May/2026:09:00:00 +0900]' and, if present, msec=1777593600.123",
    "alb": "ISO-8601 such as 2026-05-01T00:00:00.123456Z",
    "envoy": "ISO-8601 such as 2026-05-01T00:00:00.123Z",
    "envoy-json": "ISO-8601 such as 2026-05-01T00:00:00.123Z in start_time",
    "ecs": "ISO-8601 such as 2026-05-01T00:00:00.123456Z in @timestamp",
}


def line_detail(fmt: str, source: str, line_no: int, text: str, reason: str, column: str | None) -> str:
    """The message for one quarantined line, in the style of STYLE.md (names input and place, never values)."""
    reader = _READER_NAMES.get(fmt, f"read_{fmt}")
    where = f"{reader}: line {line_no:,} of '{source}'"
    desc = FORMAT_DESCRIPTIONS.get(fmt, fmt)
    if reason in ("field_count", "no_match"):
        n = count_fields(text)
        need = MIN_FIELDS.get(fmt, 0)
        if fmt == "nginx" and n < need:
            return (
                f"{where} has {n} fields, expected 7 (common format) or at least {need} (combined format). "
                "Quarantined; pass --format auto?"
            )
        if n < need:
            return f"{where} has {n} fields, expected at least {need} ({desc}). Quarantined; pass --format auto?"
        return (
            f"{where} has {n} fields but they do not match the {desc} (check the status code, the quoting "
            "and the [time] field). Quarantined; pass --format auto?"
        )
    if reason == "bad_request_line":
        return f"{where}: the request field is not 'METHOD TARGET HTTP/x.y' (a scanner or a TLS handshake?)."
    if reason == "bad_timestamp":
        return f"{where}: the timestamp cannot be parsed; expected {_TIME_FORMATS.get(fmt, 'ISO-8601')}."
    if reason == "bad_value":
        dtype = EVENT_SCHEMA.get(column or "", pl.String())
        return f"{where}: field '{column}' is not a valid {dtype} value."
    if reason == "bad_json":
        return f"{where} is not valid JSON ({desc} needs one JSON object per line)."
    if reason == "not_object":
        return f"{where} is JSON but not an object ({desc} needs one JSON object per line)."
    if reason == "bad_json_type":
        return (
            f"{where} has a member of the wrong shape (an object where text is expected, or the reverse, "
            'e.g. "url": "..." instead of "url": {...}).'
        )
    return f"{where} was quarantined ({reason})."


def _parse_line_batch(
    fmt: str,
    batch_lines: pl.Series,
    first_line: int,
    bad_lines: set[int],
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Parse one batch; return (canonical good rows, bad rows with reasons, blank count)."""
    n = batch_lines.len()
    df = pl.DataFrame(
        {"line_no": pl.int_range(first_line, first_line + n, dtype=pl.Int64, eager=True), "text": batch_lines}
    )
    blank = df.get_column("text").str.contains(r"^\s*$")  # anchored: stops at the first non-space
    if bad_lines:
        is_bad = df.get_column("line_no").is_in(pl.Series(sorted(bad_lines), dtype=pl.Int64).implode())
        blank_count = int((blank & ~is_bad).sum())
    else:
        blank_count = int(blank.sum())
    if blank.any():
        df = df.filter(~blank)
    if df.height == 0:
        return empty_events(), pl.DataFrame(schema={"line_no": pl.Int64, "text": pl.String}), blank_count
    parsed = LINE_PARSERS[fmt](df)
    ok = parsed.get_column("reason").is_null()
    if bool(ok.all()):
        good = parsed.drop("line_no", "text", "reason", "field")
        bad = parsed.clear().select("line_no", "text", "reason", "field")
    else:
        good = parsed.filter(ok).drop("line_no", "text", "reason", "field")
        bad = parsed.filter(~ok).select("line_no", "text", "reason", "field")
    return conform(good, source=_READER_NAMES[fmt]), bad, blank_count


def _parse_batch(fmt: str, batch: LineBatch) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Parse one batch (on a worker thread): the nginx whole-chunk fast path if it applies, else line by line."""
    if fmt == "nginx" and batch.lines is None and batch.raw is not None:
        fast = parse_nginx_chunk(batch.raw, batch.first_line, batch.max_line_bytes)
        if fast is not None:
            return conform(fast, source="read_nginx"), _NO_BAD, 0
    lines = batch.materialize()
    return _parse_line_batch(fmt, lines, batch.first_line, {b[0] for b in batch.bad})


_NO_BAD = pl.DataFrame(schema={"line_no": pl.Int64, "text": pl.String, "reason": pl.String, "field": pl.String})


def parse_lines(
    lines: Sequence[str] | pl.Series, fmt: str, *, source: str = "lines", first_line: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse lines already in memory (a tailed log, an HTTP request body) with a line format's reader.

    Parameters
    ----------
    lines : sequence of str or polars.Series
        The lines, without their newlines.
    fmt : str
        One of :data:`~mamori.events.FORMATS` (``nginx``, ``alb``, ``envoy``, ``envoy-json``, ``ecs``).
    source : str, default="lines"
        Names the input in the rejection messages.
    first_line : int, default=1
        The line number of ``lines[0]``.

    Returns
    -------
    events : polars.DataFrame
        Canonical events of the lines that parsed, in order.
    rejected : polars.DataFrame
        ``line_no`` (Int64), ``text``, ``reason`` (a code from :data:`~mamori.events.REASONS`) and ``detail``
        (the message) of the lines that did not; blank lines are in neither.

    Raises
    ------
    SchemaError
        If ``fmt`` is not a line format.
    """
    if fmt not in LINE_PARSERS:
        raise SchemaError(f"parse_lines: {fmt!r} is not a line format; expected one of {', '.join(LINE_PARSERS)}.")
    series = lines if isinstance(lines, pl.Series) else pl.Series("text", list(lines), dtype=pl.String)
    good, bad, _blank = _parse_line_batch(fmt, series.alias("text"), first_line, set())
    details = [line_detail(fmt, source, n, t, r, c) for n, t, r, c in bad.iter_rows()]
    rejected = bad.select("line_no", "text", "reason").with_columns(pl.Series("detail", details, dtype=pl.String))
    return good, rejected


def _resolve_format(path: Path, fmt: str) -> str:
    if fmt == "auto":
        from mamori.events.detect import detect_format

        return detect_format(path)
    if fmt not in READ_FORMATS:
        raise SchemaError(
            f"unknown log format {fmt!r} for '{path.name}'; expected auto or one of {', '.join(READ_FORMATS)}."
        )
    return fmt


def iter_event_batches(
    path: str | Path,
    fmt: str = "auto",
    *,
    quarantine: Quarantine | None = None,
    batch_lines: int = DEFAULT_BATCH_LINES,
    mapping: str | Path | None = None,
    organization_id: str | None = None,
    summary: ReadSummary | None = None,
    progress: ProgressCallback | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    errors: list[MamoriError] | None = None,
) -> Iterator[pl.DataFrame]:
    """Read a log file batch by batch into canonical event frames.

    Parameters
    ----------
    path : str or pathlib.Path
        The log file; gzip is decompressed transparently, and for ``csic`` a zip of ``.txt``/``.txt.gz``
        members is read member by member.
    fmt : str, default="auto"
        ``"auto"`` (see :func:`~mamori.events.detect_format`) or one of
        :data:`~mamori.events.READ_FORMATS`: ``nginx``, ``alb``, ``envoy``, ``envoy-json``, ``ecs``, ``csic``,
        ``csv`` (needs ``mapping``).
    quarantine : Quarantine or None, default=None
        Where lines that do not parse go. ``None`` counts them (in ``summary``) and logs a warning per batch.
    batch_lines : int, default=200000
        At most this many lines (CSIC: requests; CSV: rows) per batch.
    mapping : str or pathlib.Path or None, default=None
        The TOML column mapping, required for ``fmt="csv"`` (see :func:`~mamori.events.read_csv_mapped`).
    organization_id : str or None, default=None
        Fills ``organization.id`` where the input does not carry it (the member bank the log came from).
    summary : ReadSummary or None, default=None
        Updated in place as batches are read (pass one to see counts while iterating).
    progress : callable or None, default=None
        Called with the number of (compressed-side) bytes read after each chunk, for progress bars.
    max_line_bytes : int, default=1048576
        Longer lines are quarantined as ``line_too_long`` without being held in memory whole.
    errors : list or None, default=None
        For callers that go on with other files (``mamori ingest``, batch scoring): an error reading this file
        (it breaks off, cannot be recognised, cannot be read) ends its batches after those read before it and is
        appended here instead of raised. None: it is raised.

    Yields
    ------
    polars.DataFrame
        Canonical events (:data:`~mamori.events.EVENT_SCHEMA`), one frame per batch, in file order.

    Raises
    ------
    SchemaError
        If the file does not exist, ``fmt`` is unknown, ``auto`` cannot recognise the file, or ``csv`` is
        asked for without a valid mapping (unless ``errors`` is given).
    """
    batches = _iter_event_batches(path, fmt, quarantine=quarantine, batch_lines=batch_lines, mapping=mapping,
                                  organization_id=organization_id, summary=summary, progress=progress,
                                  max_line_bytes=max_line_bytes)
    if errors is None:
        yield from batches
        return
    try:
        yield from batches
    except MamoriError as exc:
        errors.append(exc)
    except OSError as exc:
        errors.append(SchemaError(f"cannot read '{path}': {exc}"))


def _iter_event_batches(
    path: str | Path,
    fmt: str,
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    mapping: str | Path | None,
    organization_id: str | None,
    summary: ReadSummary | None,
    progress: ProgressCallback | None,
    max_line_bytes: int,
) -> Iterator[pl.DataFrame]:
    src = Path(path)
    fmt = _resolve_format(src, fmt)
    if summary is None:
        summary = ReadSummary(source=src.name, format=fmt)
    summary.format = fmt
    if fmt == "csic":
        from mamori.events.csic import _iter_csic

        batches = _iter_csic(src, quarantine=quarantine, batch_lines=batch_lines, summary=summary, progress=progress)
    elif fmt == "csv":
        if mapping is None:
            raise SchemaError(
                f"read_csv_mapped: '{src.name}' is CSV but no column mapping was given; pass --mapping map.toml "
                "(see docs/events.md)."
            )
        from mamori.events.csv_mapped import _iter_csv, load_mapping

        batches = _iter_csv(
            src,
            load_mapping(mapping),
            quarantine=quarantine,
            batch_lines=batch_lines,
            summary=summary,
            progress=progress,
        )
    else:
        batches = _iter_lines(
            src,
            fmt,
            quarantine=quarantine,
            batch_lines=batch_lines,
            summary=summary,
            progress=progress,
            max_line_bytes=max_line_bytes,
        )
    for frame in batches:
        if organization_id is not None:
            frame = frame.with_columns(pl.col("organization.id").fill_null(pl.lit(organization_id)))
        yield frame


def _iter_lines(
    src: Path,
    fmt: str,
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    summary: ReadSummary,
    progress: ProgressCallback | None,
    max_line_bytes: int,
) -> Iterator[pl.DataFrame]:
    reader = _READER_NAMES[fmt]

    def finish(batch: LineBatch, parsed: tuple[pl.DataFrame, pl.DataFrame, int]) -> pl.DataFrame:
        good, bad, blank = parsed
        source = batch.source
        reasons: Counter[str] = Counter()
        rejected: list[tuple[int, bytes | str, str, str, int]] = [
            (line_no, raw, reason, f"{reader}: {detail}", full) for line_no, raw, reason, detail, full in batch.bad
        ]
        for line_no, text, reason, column in bad.iter_rows():
            rejected.append((line_no, text, reason, line_detail(fmt, source, line_no, text, reason, column), -1))
        rejected.sort(key=lambda r: r[0])
        for line_no, raw, reason, detail, full in rejected:
            reasons[reason] += 1
            if quarantine is not None:
                quarantine.add(source, line_no, raw, reason, detail, raw_bytes=full)
        summary.lines += batch.n_lines
        summary.blank += blank
        summary.parsed += good.height
        summary.add_reasons(reasons)
        if reasons:
            where = f"; see {quarantine.path}" if quarantine is not None and quarantine.path else ""
            logger.warning(
                "%s: %d lines of '%s' quarantined in lines %d-%d (first: %s)%s",
                reader,
                sum(reasons.values()),
                source,
                batch.first_line,
                batch.first_line + batch.n_lines - 1,
                rejected[0][3],
                where,
            )
        logger.info("%s: %d events from '%s' up to line %d", reader, good.height, source, summary.lines)
        return good

    # Two batches are parsed at once on worker threads (polars releases the GIL), so both cores work while
    # the next chunk is read; results are handed out strictly in file order.
    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="mamori-parse") as pool:
        pending: deque[tuple[LineBatch, Future[tuple[pl.DataFrame, pl.DataFrame, int]]]] = deque()
        batches = iter_path_batches(src, batch_lines=batch_lines, progress=progress, max_line_bytes=max_line_bytes)
        stopped: TruncatedInputError | None = None
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except TruncatedInputError as exc:  # hand out the batches read before the damage first, then say so
                stopped = exc
                break
            future = pool.submit(_parse_batch, fmt, batch)
            pending.append((batch, future))
            while len(pending) > PARSE_THREADS:
                done_batch, done = pending.popleft()
                good = finish(done_batch, done.result())
                if good.height:
                    yield good
        while pending:
            done_batch, done = pending.popleft()
            good = finish(done_batch, done.result())
            if good.height:
                yield good
        if stopped is not None:
            raise stopped


def read_events(
    path: str | Path,
    fmt: str = "auto",
    *,
    quarantine: Quarantine | None = None,
    mapping: str | Path | None = None,
    organization_id: str | None = None,
    batch_lines: int = DEFAULT_BATCH_LINES,
) -> ReadResult:
    """Read a whole log file into one canonical frame.

    Parameters
    ----------
    path : str or pathlib.Path
        The log file (plain or gzip; zip for CSIC).
    fmt : str, default="auto"
        As :func:`iter_event_batches`.
    quarantine : Quarantine or None, default=None
        Where bad lines go; ``None`` only counts them (see :attr:`ReadResult.summary`).
    mapping : str or pathlib.Path or None, default=None
        The TOML column mapping, for ``fmt="csv"``.
    organization_id : str or None, default=None
        Fills ``organization.id`` where the input does not carry it.
    batch_lines : int, default=200000
        Lines parsed per batch.

    Returns
    -------
    ReadResult
        ``frame`` (canonical schema, file order) and ``summary`` (parsed / quarantined / by reason).

    Raises
    ------
    SchemaError
        As :func:`iter_event_batches`.
    """
    src = Path(path)
    summary = ReadSummary(source=src.name, format=fmt)
    frames = list(
        iter_event_batches(
            src,
            fmt,
            quarantine=quarantine,
            mapping=mapping,
            organization_id=organization_id,
            summary=summary,
            batch_lines=batch_lines,
        )
    )
    frame = pl.concat(frames, how="vertical") if frames else empty_events()
    return ReadResult(frame=frame, summary=summary)


def read_event_parquet(paths: Sequence[str | Path], *, where: str) -> pl.DataFrame:
    """Read event tables that ``mamori ingest`` (or ``write_events``) wrote as Parquet, as one frame.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        The Parquet files, concatenated in this order (columns missing from some files are filled with nulls).
    where : str
        Names the caller in error messages (``"--data"``, ``"load_member_matrices"``).

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    SchemaError
        Naming the file, if one is not a readable Parquet file (another format, truncated in a copy or an upload).
    """
    frames = []
    for path in paths:
        try:
            frames.append(pl.read_parquet(path))
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SchemaError(f"{where}: cannot read '{path}' as a Parquet table of events ({exc}); write it "
                              "again with `mamori ingest`.") from exc
    if not frames:
        raise SchemaError(f"{where}: no Parquet file given.")
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
