"""Recognise a log file's format from its first lines."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import polars as pl

from mamori.errors import SchemaError
from mamori.events._parsers import ENVOY_JSON_MARKERS, LINE_PARSERS
from mamori.events._source import is_zip, iter_streams

__all__ = ["detect_format"]

logger = logging.getLogger(__name__)

#: Non-blank lines examined by :func:`detect_format`.
SAMPLE_LINES = 50
_SAMPLE_BYTES = 1024 * 1024
_CSIC_REQUEST = re.compile(r"^[A-Z]+ \S+ HTTP/\d\.\d$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+:")
_TEXT_ORDER = ("nginx", "alb", "envoy")


def _sample(path: Path) -> list[str]:
    """The first non-blank lines of the file (or of the first member of a zip), decoded leniently."""
    for _, stream in iter_streams(path):
        data = stream.read(_SAMPLE_BYTES)
        text = data.decode("utf-8", errors="replace")
        lines = [ln.rstrip("\r") for ln in text.split("\n")]
        if len(data) == _SAMPLE_BYTES and lines:
            lines = lines[:-1]  # the last one may be cut
        return [ln for ln in lines if ln.strip()][:SAMPLE_LINES]
    return []


def _looks_csic(lines: list[str]) -> bool:
    return bool(lines) and bool(_CSIC_REQUEST.match(lines[0])) and len(lines) > 1 and bool(_HEADER.match(lines[1]))


def detect_format(path: str | Path) -> str:
    """Recognise the format of a log file from its first lines.

    Parameters
    ----------
    path : str or pathlib.Path
        A log file (plain or gzip) or a zip of CSIC 2010 files.

    Returns
    -------
    str
        One of ``"nginx"``, ``"alb"``, ``"envoy"``, ``"envoy-json"``, ``"ecs"``, ``"csic"``.

    Raises
    ------
    SchemaError
        If the file is empty, or fewer than half of its first lines parse in any one format. CSV is never
        guessed: it needs ``--format csv --mapping map.toml``.

    Notes
    -----
    JSON lines are Envoy JSON when they carry Envoy's keys (``start_time``, ``response_code``,
    ``upstream_host``, ...), otherwise ECS. Text lines are tried with each text reader; the format that parses
    most of them wins (ties go to nginx, then ALB, then Envoy).
    """
    src = Path(path)
    lines = _sample(src)
    if not lines:
        raise SchemaError(f"detect_format: '{src.name}' has no non-blank lines; nothing to detect.")
    if _looks_csic(lines):
        return "csic"
    if is_zip(src):
        raise SchemaError(
            f"detect_format: '{src.name}' is a zip archive whose first member is not CSIC 2010 raw HTTP; "
            "unpack it and pass the log file itself."
        )
    if lines[0].lstrip().startswith("{"):
        objects: list[dict[str, object]] = []
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                objects.append(value)
        if len(objects) * 2 >= len(lines):
            envoy = sum(1 for o in objects if sum(k in o for k in ENVOY_JSON_MARKERS) >= 2)
            return "envoy-json" if envoy * 2 >= len(objects) else "ecs"
        raise SchemaError(
            f"detect_format: '{src.name}' starts with '{{' but only {len(objects)} of its first {len(lines)} "
            "lines are JSON objects; pass --format ecs or --format envoy-json to see why the rest are quarantined."
        )
    sample = pl.DataFrame(
        {"line_no": list(range(1, len(lines) + 1)), "text": lines}, schema={"line_no": pl.Int64, "text": pl.String}
    )
    scores: dict[str, int] = {}
    for fmt in _TEXT_ORDER:
        parsed = LINE_PARSERS[fmt](sample)
        scores[fmt] = int(parsed.get_column("reason").is_null().sum())
    best = max(_TEXT_ORDER, key=lambda f: scores[f])
    if scores[best] * 2 >= len(lines) and scores[best] > 0:
        logger.info("detect_format: '%s' is %s (%d of %d sample lines parse)", src.name, best, scores[best], len(lines))
        return best
    tried = ", ".join(f"{f} {scores[f]}/{len(lines)}" for f in _TEXT_ORDER)
    hint = " It looks like CSV: pass --format csv --mapping map.toml." if "," in lines[0] else ""
    raise SchemaError(
        f"detect_format: cannot recognise '{src.name}' from its first {len(lines)} lines (lines parsed per "
        f"format: {tried}; csic and JSON did not match).{hint} Pass --format explicitly; see docs/events.md."
    )
