r"""The quarantine: where every line or record that does not parse goes, with the reason.

Nothing a reader cannot parse is dropped silently: it is written to a JSON-lines file (or kept in memory)
and counted by reason. One record per bad line::

    {"source": "gw.log", "line": 1204, "reason": "field_count",
     "detail": "read_nginx: line 1,204 of 'gw.log' has 7 fields, expected at least 9 (combined format)",
     "raw": "...", "raw_bytes": 311, "truncated": false}

``raw`` is the line as text. When the line is not valid UTF-8, ``raw`` has the undecodable bytes as
``\\xNN`` escapes and ``raw_base64`` holds the exact bytes. Lines longer than ``max_raw_bytes`` are cut
(``truncated`` is true; ``raw_bytes`` is the full length).
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import polars as pl

__all__ = ["Quarantine", "REASONS"]

logger = logging.getLogger(__name__)

#: The reason codes a reader gives, with what each means.
REASONS: dict[str, str] = {
    "invalid_utf8": "the line is not valid UTF-8",
    "line_too_long": "the line is longer than the reader's max_line_bytes",
    "field_count": "the line has fewer fields than the format needs",
    "no_match": "the line has enough fields but they do not match the format",
    "bad_request_line": "the request field is not 'METHOD TARGET [HTTP/x.y]'",
    "bad_timestamp": "the timestamp cannot be parsed",
    "bad_value": "a field has a value of the wrong type (e.g. letters in a status code)",
    "bad_json": "the line is not valid JSON",
    "not_object": "the line is JSON but not an object",
    "bad_json_type": "a JSON member has the wrong shape (an object where text is expected, or the reverse)",
    "bad_record": "a multi-line record (CSIC) does not start with a request line",
    "csv_field_count": "a CSV row has a different number of fields than the header",
}


#: Characters that str.splitlines() (and other line readers) treat as line breaks but JSON leaves raw inside a
#: string when ensure_ascii=False; control characters below 0x20 JSON escapes itself.
_LINE_BREAKS_JSON_KEEPS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _one_line_json(record: dict[str, Any]) -> str:
    """``record`` as JSON on one line for any line reader: readable UTF-8, with Unicode line breaks escaped.

    A quarantined log line may hold U+0085 or U+2028 (hostile or corrupt input); written raw, a reader splitting the
    JSONL file with ``str.splitlines()`` would cut that record in two. Inside a JSON string the escape is the same
    character, so ``json.loads`` reads the record back unchanged.
    """
    text = json.dumps(record, ensure_ascii=False)
    for char, escape in _LINE_BREAKS_JSON_KEEPS.items():
        text = text.replace(char, escape)
    return text


class Quarantine:
    """Collects lines that did not parse, writing them as JSON lines and counting them by reason.

    Parameters
    ----------
    path : str or pathlib.Path or None, default=None
        The JSON-lines file to write (created or truncated on first use; parent folders are created).
        ``None`` keeps up to ``keep`` records in :attr:`records` and only counts the rest.
    max_raw_bytes : int, default=65536
        Longer raw lines are truncated in the record (the count and ``raw_bytes`` stay exact).
    keep : int, default=10000
        How many records to hold in memory when ``path`` is ``None``.

    Attributes
    ----------
    counts : collections.Counter
        Records per reason code (see :data:`REASONS`).
    records : list of dict
        The records themselves when ``path`` is ``None`` (at most ``keep``).

    Examples
    --------
    >>> with Quarantine("quarantine.jsonl") as q:  # doctest: +SKIP
    ...     result = read_events("gw.log", quarantine=q)
    """

    def __init__(self, path: str | Path | None = None, *, max_raw_bytes: int = 65536, keep: int = 10_000) -> None:
        self.path = Path(path) if path is not None else None
        self.max_raw_bytes = max_raw_bytes
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self.records: list[dict[str, Any]] = []
        self._fh: IO[str] | None = None
        self._opened = False

    @property
    def total(self) -> int:
        """Number of records quarantined so far."""
        return sum(self.counts.values())

    def _write(self, record: dict[str, Any]) -> None:
        self.counts[record["reason"]] += 1
        if self.path is None:
            if len(self.records) < self.keep:
                self.records.append(record)
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a" if self._opened else "w", encoding="utf-8")
            self._opened = True
        self._fh.write(_one_line_json(record))
        self._fh.write("\n")

    def add(self, source: str, line: int, raw: bytes | str, reason: str, detail: str, *, raw_bytes: int = -1) -> None:
        """Quarantine one line.

        Parameters
        ----------
        source : str
            The file (and member) the line came from.
        line : int
            Its 1-based line number (for multi-line records, the first line).
        raw : bytes or str
            The line as read (bytes when it may not be valid UTF-8).
        reason : str
            A code from :data:`REASONS`.
        detail : str
            A message naming the input and the place, what was expected and what was found.
        raw_bytes : int, default=-1
            The full length of the line when ``raw`` is already cut; -1 means ``len(raw)``.
        """
        record: dict[str, Any] = {"source": source, "line": line, "reason": reason, "detail": detail}
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        full = len(data) if raw_bytes < 0 else raw_bytes
        cut = data[: self.max_raw_bytes]
        try:
            record["raw"] = cut.decode("utf-8")
        except UnicodeDecodeError:
            record["raw"] = cut.decode("utf-8", errors="backslashreplace")
            if isinstance(raw, bytes):
                record["raw_base64"] = base64.b64encode(cut).decode("ascii")
        record["raw_bytes"] = full
        record["truncated"] = full > len(cut)
        self._write(record)
        logger.debug("quarantined %s line %d: %s", source, line, reason)

    def add_frame(self, source: str, bad: pl.DataFrame) -> None:
        """Quarantine every row of a frame with columns ``line_no``, ``text``, ``reason``, ``detail``."""
        for line_no, text, reason, detail in bad.select("line_no", "text", "reason", "detail").iter_rows():
            self.add(source, int(line_no), text if text is not None else "", str(reason), str(detail))

    def close(self) -> None:
        """Flush and close the file; an empty file is created when nothing was quarantined."""
        if self.path is not None and not self._opened:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")
            self._opened = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
