"""Open log files (plain, gzip, zip) and cut them into batches of lines without holding the whole file."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import polars as pl

from mamori.errors import SchemaError, TruncatedInputError

#: Bytes read per chunk.
CHUNK_BYTES = 16 * 1024 * 1024
#: Lines longer than this are quarantined as ``line_too_long`` without being held in memory whole.
MAX_LINE_BYTES = 1024 * 1024
#: Bytes of an over-long line kept for the quarantine record.
KEEP_BYTES = 65536
#: Bytes at the end of a chunk searched for its last newline before the chunk is read (plain files).
PROBE_BYTES = 65536

ProgressCallback = Callable[[int], None]


@dataclass
class LineBatch:
    r"""Consecutive physical lines of one source.

    ``lines`` holds every line (without its newline and trailing '\r'), starting at line number
    ``first_line``; lines already rejected at byte level are empty strings there and listed in ``bad``
    as ``(line_no, raw bytes, reason, detail, full length)``. A batch may arrive *unsplit*: ``lines`` is
    None and ``raw`` holds the bytes (so a fast parser can read them directly); :meth:`materialize` splits it.
    """

    source: str
    first_line: int
    lines: pl.Series | None
    bad: list[tuple[int, bytes, str, str, int]] = field(default_factory=list)
    raw: bytes | None = None
    n_lines: int = 0
    max_line_bytes: int = MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.lines is not None:
            self.n_lines = self.lines.len()

    def materialize(self) -> pl.Series:
        """Split ``raw`` into ``lines`` (and ``bad``) if not done yet; return ``lines``."""
        if self.lines is None:
            assert self.raw is not None
            split = _split_complete(self.raw, self.source, self.first_line, self.max_line_bytes)
            self.lines, self.bad = split.lines, split.bad
        assert self.lines is not None
        return self.lines


def display_name(path: Path) -> str:
    """The name used in messages: the file name, not the full path."""
    return path.name


class _SafeStream:
    """A binary stream whose decompression errors become :class:`TruncatedInputError` naming the file and offset.

    Reads go to the decompressor a bounded piece at a time: a buffered ``read(16 MiB)`` that meets the end of a
    truncated gzip raises and drops everything it had decompressed in that call, so a cut file under 16 MiB gave
    no line at all. Here the pieces decompressed before the damage are returned first, and the error is raised
    on the next read, with the exact number of bytes that could be read.
    """

    piece_bytes = 1024 * 1024

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self._name = name
        self._done = 0
        self._failed: BaseException | None = None

    def _error(self, exc: BaseException) -> TruncatedInputError:
        return TruncatedInputError(
            f"cannot read '{self._name}' after {self._done:,} decompressed bytes: corrupt or truncated compressed "
            f"data ({exc}). The lines before that point were read.",
            source=self._name, offset=self._done,
        )

    def _pieces(self, size: int, line: bool) -> bytes:
        if self._failed is not None:
            raise self._error(self._failed) from self._failed
        reader = getattr(self._raw, "read1", self._raw.read)
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            step = self.piece_bytes if size < 0 else min(self.piece_bytes, size - got)
            try:
                data = self._raw.readline(step) if line else reader(step)
            except (OSError, EOFError, zlib.error) as exc:
                if not parts:
                    raise self._error(exc) from exc
                self._failed = exc  # hand over what was decompressed; raise on the next read
                break
            if not data:
                break
            parts.append(data)
            got += len(data)
            self._done += len(data)
            if line and data.endswith(b"\n"):
                break
        return b"".join(parts)

    def read(self, size: int = -1) -> bytes:
        return self._pieces(size, line=False)

    def readline(self, size: int = -1) -> bytes:
        return self._pieces(size, line=True)


def _is_gzip(path: Path) -> bool:
    """True if ``path`` starts with the gzip magic and its header decodes."""
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            return False
    try:
        with gzip.open(path, "rb") as fh:
            fh.read(1)
    except (OSError, EOFError, zlib.error):
        return False
    return True


@contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    """Open a file for reading, decompressing gzip transparently (by magic bytes and a valid header)."""
    if _is_gzip(path):
        with gzip.open(path, "rb") as fh:
            yield _SafeStream(fh, path.name)  # type: ignore[misc]
    else:
        with path.open("rb") as fh:
            yield fh


def is_zip(path: Path) -> bool:
    """True if ``path`` is a zip archive."""
    with path.open("rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            return False
    return zipfile.is_zipfile(path)


@contextmanager
def open_member(archive: zipfile.ZipFile, name: str) -> Iterator[IO[bytes]]:
    """Open one zip member, decompressing a ``.gz`` member transparently."""
    with archive.open(name) as member:
        if name.endswith(".gz"):
            with gzip.open(member, "rb") as fh:
                yield _SafeStream(fh, name)  # type: ignore[misc]
        else:
            yield _SafeStream(member, name)  # type: ignore[misc]


def iter_streams(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(source name, binary stream)`` for a file, or for each file member of a zip archive."""
    if not path.exists():
        raise SchemaError(f"cannot read '{path}': no such file.")
    if is_zip(path):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise SchemaError(f"cannot read '{path.name}': not a valid zip archive ({exc}).") from exc
        with archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or Path(info.filename).name.startswith("."):
                    continue
                with open_member(archive, info.filename) as fh:
                    yield f"{path.name}:{info.filename}", fh
        return
    with _open_binary(path) as fh:
        yield display_name(path), fh


def _fast_lines(data: bytes) -> pl.Series:
    """Cut bytes into lines in Rust, validating UTF-8; raise PolarsError on invalid UTF-8."""
    if data and _UNIT_SEPARATOR not in data and not data.endswith(b"\n") and not looks_compressed(data):
        # polars' CSV reader with a separator that does not occur and no quoting is a fast, parallel line
        # splitter; blank lines come back as nulls, so line numbers stay exact.
        frame = pl.read_csv(data, has_header=False, separator="\x1f", quote_char=None, schema={"text": pl.String})
        return frame.get_column("text").fill_null("")
    # polars validates UTF-8 in Rust, faster than bytes.decode and without a Python str copy
    return pl.Series("text", [data], dtype=pl.Binary).cast(pl.String).str.split("\n").explode()


_UNIT_SEPARATOR = b"\x1f"
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def looks_compressed(data: bytes) -> bool:
    """True if ``data`` starts like gzip, zstd or zlib, which polars' CSV reader would try to decompress."""
    return data[:4].startswith(_COMPRESSED_MAGIC)


def _split_complete(data: bytes, source: str, first_line: int, max_line_bytes: int) -> LineBatch:
    """Turn bytes holding complete lines (no final newline) into a LineBatch."""
    bad: list[tuple[int, bytes, str, str, int]] = []
    try:
        lines = _fast_lines(data)
    except (pl.exceptions.PolarsError, OSError):
        parts = data.split(b"\n")
        decoded: list[str] = []
        for i, part in enumerate(parts):
            try:
                decoded.append(part.decode("utf-8"))
            except UnicodeDecodeError as exc:
                line_no = first_line + i
                bad.append(
                    (
                        line_no,
                        part[:KEEP_BYTES],
                        "invalid_utf8",
                        f"line {line_no:,} of '{source}' is not valid UTF-8 (byte {exc.start:,}); "
                        "logs must be UTF-8 (nginx escapes other bytes as \\xNN).",
                        len(part),
                    )
                )
                decoded.append("")
        lines = pl.Series("text", decoded, dtype=pl.String)
    if b"\r" in data:
        lines = lines.str.strip_suffix("\r")
    too_long = lines.str.len_bytes() > max_line_bytes
    if too_long.any():
        idx = too_long.arg_true().to_list()
        for i in idx:
            value = lines[i]
            raw = value.encode("utf-8")
            line_no = first_line + i
            bad.append(
                (line_no, raw[:KEEP_BYTES], "line_too_long", _too_long_detail(source, line_no, len(raw)), len(raw))
            )
        lines = lines.scatter(idx, "")
    return LineBatch(source=source, first_line=first_line, lines=lines, bad=bad)


def _too_long_detail(source: str, line_no: int, length: int) -> str:
    return (
        f"line {line_no:,} of '{source}' is {length:,} bytes, longer than max_line_bytes; "
        "a log line that long is corrupt or hostile. Raise max_line_bytes if it is genuine."
    )


def iter_line_batches(
    stream: IO[bytes],
    source: str,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    batch_lines: int = 200_000,
    progress: ProgressCallback | None = None,
    first_line: int = 1,
) -> Iterator[LineBatch]:
    """Read ``stream`` in chunks and yield batches of at most ``batch_lines`` complete lines.

    Memory stays bounded by ``chunk_bytes`` plus ``max_line_bytes``: a line longer than ``max_line_bytes`` is
    skipped to its end (its first ``KEEP_BYTES`` bytes kept for the quarantine), never held whole.
    """
    carry = b""
    line_no = first_line
    # When inside an over-long line: (its line number, first bytes, length so far)
    skipping: tuple[int, bytes, int] | None = None

    def emit(data: bytes, start: int) -> Iterator[LineBatch]:
        return _emit(data, start, source, batch_lines, max_line_bytes)

    def skipped(state: tuple[int, bytes, int]) -> LineBatch:
        no, head, length = state
        return LineBatch(
            source=source,
            first_line=no,
            lines=pl.Series("text", [""], dtype=pl.String),
            bad=[(no, head, "line_too_long", _too_long_detail(source, no, length), length)],
        )

    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        if progress is not None:
            progress(len(chunk))
        if skipping is not None:
            nl = chunk.find(b"\n")
            no, head, length = skipping
            if nl < 0:
                skipping = (no, head, length + len(chunk))
                continue
            yield skipped((no, head, length + nl))
            skipping = None
            line_no = no + 1
            chunk = chunk[nl + 1 :]
        data = carry + chunk if carry else chunk
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            carry = data
        else:
            complete, carry = data[:last_nl], data[last_nl + 1 :]
            for batch in emit(complete, line_no):
                line_no = batch.first_line + batch.n_lines
                yield batch
        if len(carry) > max_line_bytes:
            skipping = (line_no, carry[:KEEP_BYTES], len(carry))
            carry = b""
    if skipping is not None:
        yield skipped(skipping)
    elif carry:
        yield from emit(carry, line_no)


def _emit(data: bytes, start: int, source: str, batch_lines: int, max_line_bytes: int) -> Iterator[LineBatch]:
    """Batches of the complete lines in ``data`` (no final newline), the first being line ``start``."""
    n = data.count(b"\n") + 1
    if n <= batch_lines:
        yield LineBatch(source, start, None, raw=data, n_lines=n, max_line_bytes=max_line_bytes)
        return
    batch = _split_complete(data, source, start, max_line_bytes)
    lines = batch.materialize()
    for off in range(0, n, batch_lines):
        lo, hi = start + off, start + off + batch_lines
        yield LineBatch(
            source=source,
            first_line=lo,
            lines=lines.slice(off, batch_lines),
            bad=[b for b in batch.bad if lo <= b[0] < hi],
        )


def _iter_plain_batches(
    path: Path,
    source: str,
    *,
    chunk_bytes: int,
    max_line_bytes: int,
    batch_lines: int,
    progress: ProgressCallback | None,
) -> Iterator[LineBatch]:
    """:func:`iter_line_batches` for a plain file, reading each chunk exactly up to its last newline.

    The end of the chunk is probed first (its last 64 KiB), so each chunk is read once, straight into the
    bytes handed to the parser: no carry-over to join and no second copy to cut it. Positional reads, not a
    memory map, so a file truncated while it is read (logrotate's copytruncate) cannot crash the process.
    Anything unusual (a line longer than the probe at a chunk boundary, a file that shrinks) hands the rest
    of the file to :func:`iter_line_batches`.
    """
    probe_bytes = min(chunk_bytes, PROBE_BYTES)
    with path.open("rb", buffering=0) as fh:
        pos, line_no = 0, 1

        def stream_rest() -> Iterator[LineBatch]:
            fh.seek(pos)
            return iter_line_batches(
                fh,  # type: ignore[arg-type]
                source,
                chunk_bytes=chunk_bytes,
                max_line_bytes=max_line_bytes,
                batch_lines=batch_lines,
                progress=progress,
                first_line=line_no,
            )

        while True:
            fh.seek(pos + chunk_bytes - probe_bytes)
            probe = fh.read(probe_bytes) or b""
            if len(probe) == probe_bytes:
                nl = probe.rfind(b"\n")
                if nl < 0:
                    yield from stream_rest()
                    return
                length = chunk_bytes - probe_bytes + nl
                fh.seek(pos)
                data = fh.read(length) or b""
                if len(data) != length:
                    yield from stream_rest()
                    return
                consumed = length + 1
            else:
                fh.seek(pos)
                data = fh.read() or b""
                if not data:
                    return
                consumed = len(data)
                if data.endswith(b"\n"):  # one final newline ends the last line
                    data = data[:-1]
            if progress is not None:
                progress(consumed)
            for batch in _emit(data, line_no, source, batch_lines, max_line_bytes):
                line_no = batch.first_line + batch.n_lines
                yield batch
            pos += consumed
            if len(probe) != probe_bytes:
                return


def iter_path_batches(
    path: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    batch_lines: int = 200_000,
    progress: ProgressCallback | None = None,
) -> Iterator[LineBatch]:
    """Batches of lines of a file (plain, gzip, or each member of a zip), as :func:`iter_line_batches`.

    A plain file is read chunk by chunk up to a newline (see :func:`_iter_plain_batches`); anything else
    (gzip, zip members) is streamed.
    """
    if path.is_file() and not is_zip(path) and not _is_gzip(path):
        yield from _iter_plain_batches(
            path,
            display_name(path),
            chunk_bytes=chunk_bytes,
            max_line_bytes=max_line_bytes,
            batch_lines=batch_lines,
            progress=progress,
        )
        return
    for source, stream in iter_streams(path):
        yield from iter_line_batches(
            stream,
            source,
            chunk_bytes=chunk_bytes,
            max_line_bytes=max_line_bytes,
            batch_lines=batch_lines,
            progress=progress,
        )
