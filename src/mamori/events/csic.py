"""Read the HTTP DATASET CSIC 2010: raw HTTP/1.1 requests, one after another, bodies included.

A request is a request line (``GET http://localhost:8080/tienda1/index.jsp HTTP/1.1``), header lines, a blank
line and, for POST/PUT, the body; requests follow each other separated by blank lines. The reader accepts a
``.txt``, a ``.txt.gz`` or the whole ``csic_dataset.zip``; requests from a file whose name contains
``anomalous`` get ``labels.is_attack = True``, from one containing ``normal`` ``False``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import polars as pl

from mamori.events._source import KEEP_BYTES, MAX_LINE_BYTES, ProgressCallback, iter_streams
from mamori.events._text import target_exprs
from mamori.events.quarantine import Quarantine
from mamori.events.schema import conform, empty_events

if TYPE_CHECKING:
    from mamori.events.readers import ReadResult, ReadSummary

__all__ = ["read_csic", "read_csic_files"]

logger = logging.getLogger(__name__)

_REQUEST = re.compile(rb"^([A-Z]+) (\S+) HTTP/(\d+\.\d+)$")
_HEADER = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*)$")
_SESSION = re.compile(r"(?:^|;\s*)(?:JSESSIONID|PHPSESSID|ASP\.NET_SessionId|session|sid)=([^;\s]+)", re.IGNORECASE)


def label_for(source: str) -> bool | None:
    """Ground truth from the CSIC file name: anomalous -> True, normal -> False, else None."""
    name = source.lower()
    if "anomalous" in name:
        return True
    if "normal" in name:
        return False
    return None


@dataclass
class _Record:
    start: int
    lines: list[bytes] = field(default_factory=list)
    problem: tuple[str, str] | None = None


@dataclass
class _Columns:
    method: list[str] = field(default_factory=list)
    target: list[str] = field(default_factory=list)
    version: list[str] = field(default_factory=list)
    host: list[str | None] = field(default_factory=list)
    user_agent: list[str | None] = field(default_factory=list)
    referrer: list[str | None] = field(default_factory=list)
    session: list[str | None] = field(default_factory=list)
    body: list[str | None] = field(default_factory=list)
    size: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.method)

    def frame(self, label: bool | None) -> pl.DataFrame:
        raw = pl.DataFrame(
            {
                "target": self.target,
                "http.request.method": self.method,
                "http.version": self.version,
                "_host": self.host,
                "user_agent.original": self.user_agent,
                "http.request.referrer": self.referrer,
                "session.id": self.session,
                "http.request.body.content": self.body,
                "http.request.bytes": self.size,
            },
            schema_overrides={
                "_host": pl.String,
                "user_agent.original": pl.String,
                "http.request.referrer": pl.String,
                "session.id": pl.String,
                "http.request.body.content": pl.String,
                "http.request.bytes": pl.Int64,
            },
        )
        target = target_exprs(pl.col("target"))
        host = pl.col("_host").str.replace(r":\d+$", "").str.strip_chars("[]")
        out = raw.with_columns(
            pl.coalesce(target["url.domain"], host).alias("url.domain"),
            target["url.path"].alias("url.path"),
            target["url.query"].alias("url.query"),
            pl.lit(label, dtype=pl.Boolean).alias("labels.is_attack"),
        ).drop("target", "_host")
        return conform(out, source="read_csic")


def _read_lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Yield (line without its line end, too_long) without ever holding more than MAX_LINE_BYTES of a line."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            head = line[:KEEP_BYTES]
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE_BYTES + 1)
            yield head, True
            continue
        yield line.rstrip(b"\n").rstrip(b"\r"), False


def _parse_record(rec: _Record, source: str, cols: _Columns) -> tuple[str, str] | None:
    """Append one request to ``cols``; return (reason, detail) instead if it does not parse."""
    where = f"read_csic: request at line {rec.start:,} of '{source}'"
    if rec.problem is not None:
        return rec.problem
    lines = rec.lines
    while len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    try:
        text = [ln.decode("utf-8") for ln in lines]
    except UnicodeDecodeError:
        return "invalid_utf8", f"{where} is not valid UTF-8; CSIC files are ASCII."
    m = _REQUEST.match(lines[0])
    if m is None:  # pragma: no cover - records only start at request lines
        return "bad_record", f"{where} does not start with 'METHOD URL HTTP/x.y'."
    headers: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i] != b"":
        h = _HEADER.match(lines[i])
        if h is None:
            return (
                "bad_record",
                f"{where}: line {rec.start + i:,} is neither a header ('Name: value') nor the blank line "
                "that ends the headers.",
            )
        headers[h.group(1).decode("ascii").lower()] = text[i][len(h.group(1)) + 1 :].strip()
        i += 1
    body_lines = text[i + 1 :] if i < len(lines) else []
    body = "\n".join(body_lines) if body_lines else None
    cookie = headers.get("cookie")
    session = None
    if cookie:
        s = _SESSION.search(cookie)
        session = s.group(1) if s else None
    cols.method.append(m.group(1).decode("ascii"))
    cols.target.append(m.group(2).decode("utf-8"))
    cols.version.append(m.group(3).decode("ascii"))
    cols.host.append(headers.get("host"))
    cols.user_agent.append(headers.get("user-agent"))
    cols.referrer.append(headers.get("referer"))
    cols.session.append(session)
    cols.body.append(body)
    cols.size.append(sum(len(ln) + 2 for ln in lines) + (2 if body is None else 0))
    return None


def _iter_csic_stream(
    source: str,
    stream: IO[bytes],
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    summary: ReadSummary,
    progress: ProgressCallback | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield canonical frames of the CSIC requests in one stream, at most ``batch_lines`` each."""
    label = label_for(source)
    cols = _Columns()
    rec: _Record | None = None
    line_no = 0
    read_bytes = 0

    def reject(reason: str, detail: str, start: int, raw: bytes) -> None:
        summary.add_reasons({reason: 1})
        summary.lines += 1
        if quarantine is not None:
            quarantine.add(source, start, raw, reason, detail)

    def finish(r: _Record) -> None:
        problem = _parse_record(r, source, cols)
        if problem is not None:
            reject(problem[0], problem[1], r.start, b"\n".join(r.lines))
        else:
            summary.lines += 1

    for line, too_long in _read_lines(stream):
        line_no += 1
        read_bytes += len(line) + 1
        if too_long:
            detail = f"read_csic: line {line_no:,} of '{source}' is longer than max_line_bytes ({MAX_LINE_BYTES:,})."
            if rec is not None:
                rec.problem = rec.problem or ("line_too_long", detail)
                rec.lines.append(line)
            else:
                reject("line_too_long", detail, line_no, line)
            continue
        if _REQUEST.match(line):
            if rec is not None:
                finish(rec)
            rec = _Record(start=line_no, lines=[line])
        elif rec is not None:
            rec.lines.append(line)
        elif line.strip():
            reject(
                "bad_record",
                f"read_csic: line {line_no:,} of '{source}' is outside any request (expected a request line "
                "'METHOD URL HTTP/1.1' first).",
                line_no,
                line,
            )
        else:
            summary.blank += 1
        if len(cols) >= batch_lines:
            frame = cols.frame(label)
            summary.parsed += frame.height
            if progress is not None:
                progress(read_bytes)
                read_bytes = 0
            yield frame
            cols = _Columns()
    if rec is not None:
        finish(rec)
    if len(cols):
        frame = cols.frame(label)
        summary.parsed += frame.height
        yield frame
    if progress is not None and read_bytes:
        progress(read_bytes)
    logger.info("read_csic: '%s' done, %d requests so far", source, summary.parsed)


def _iter_csic(
    path: Path,
    *,
    quarantine: Quarantine | None,
    batch_lines: int,
    summary: ReadSummary,
    progress: ProgressCallback | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield canonical frames of CSIC requests, member by member of a zip (or from one file)."""
    for source, stream in iter_streams(path):
        yield from _iter_csic_stream(
            source, stream, quarantine=quarantine, batch_lines=batch_lines, summary=summary, progress=progress
        )


def read_csic(path: str | Path, *, quarantine: Quarantine | None = None) -> ReadResult:
    """Read CSIC 2010 requests (a ``.txt``, ``.txt.gz`` or the whole ``csic_dataset.zip``).

    Parameters
    ----------
    path : str or pathlib.Path
        The file or archive.
    quarantine : Quarantine or None, default=None
        Where requests that do not parse go.

    Returns
    -------
    ReadResult
        ``frame`` with http.request.method, url.domain/path/query, http.version, user_agent.original,
        http.request.referrer, session.id (from JSESSIONID), http.request.body.content, http.request.bytes
        and labels.is_attack; ``summary`` with counts (``lines`` counts requests). CSIC has no timestamps, so
        ``@timestamp`` is null.

    Raises
    ------
    SchemaError
        If the file does not exist or is not a valid zip.
    """
    from mamori.events.readers import read_events

    return read_events(path, "csic", quarantine=quarantine)


def read_csic_files(
    path: str | Path, *, quarantine: Quarantine | None = None
) -> dict[str, tuple[pl.DataFrame, ReadSummary]]:
    """Read each CSIC file of the archive separately (for train/test splits that follow the files).

    Parameters
    ----------
    path : str or pathlib.Path
        ``csic_dataset.zip`` (or a single CSIC file).
    quarantine : Quarantine or None, default=None
        Where requests that do not parse go.

    Returns
    -------
    dict of str to (polars.DataFrame, ReadSummary)
        Keyed by file stem: ``normalTrafficTraining``, ``normalTrafficTest``, ``anomalousTrafficTest``.

    Raises
    ------
    SchemaError
        If the file does not exist or is not a valid zip.
    """
    from mamori.events.readers import ReadSummary

    src = Path(path)
    out: dict[str, tuple[pl.DataFrame, ReadSummary]] = {}
    for source, stream in iter_streams(src):
        stem = Path(source.split(":")[-1]).name.split(".")[0]
        summary = ReadSummary(source=source, format="csic")
        frames = list(_iter_csic_stream(source, stream, quarantine=quarantine, batch_lines=1_000_000, summary=summary))
        out[stem] = (pl.concat(frames) if frames else empty_events(), summary)
    return out
