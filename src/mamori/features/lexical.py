"""Per-request lexical features of the URL path, query string and body."""

from __future__ import annotations

import logging
import re

import numpy as np
import polars as pl

from mamori.features._distinct import distinct_rows
from mamori.features.config import FeatureConfig
from mamori.features.ngrams import hash_ngrams

__all__ = ["normalise_text", "lexical_block", "lexical_row", "LEXICAL_FEATURES"]

logger = logging.getLogger(__name__)

# Percent-decoding of the characters attacks need, applied twice to undo double encoding. Lower-case input.
_DECODE_FROM = [
    "%27", "%22", "%3c", "%3e", "%28", "%29", "%3b", "%2f", "%5c", "%2e", "%3d", "%20", "+", "%2d",
    "%23", "%7c", "%60", "%24", "%2a", "%2c", "%3a", "%7b", "%7d", "%5b", "%5d", "%0a", "%0d", "%09", "%25",
]  # fmt: skip
_DECODE_TO = [
    "'", '"', "<", ">", "(", ")", ";", "/", "\\", ".", "=", " ", " ", "-",
    "#", "|", "`", "$", "*", ",", ":", "{", "}", "[", "]", "\n", "\r", "\t", "%",
]  # fmt: skip

_EMAIL = r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_HEX_TOKEN = r"\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b"
_LONG_TOKEN = r"[a-z0-9_\-]{24,}"

#: Keyword regular expressions counted in the decoded, lower-cased, id-normalised text.
KEYWORDS: dict[str, str] = {
    "sqli_strong": (
        r"\bunion\b[\s\S]{0,20}\bselect\b|\bselect\b[\s\S]{0,40}\bfrom\b|\binsert\s+into\b|\bdrop\s+table\b"
        r"|'\s*(or|and)\s*'?[\w]*'?\s*=|'\s*(or|and)\s+\w+\s*(=|like)|\bsleep\s*\(|\bbenchmark\s*\(|information_schema"
        r"|\bxp_cmdshell\b|\bwaitfor\s+delay\b|\bload_file\s*\(|\binto\s+outfile\b|@@version|\bpg_sleep\b"
    ),
    "sql_words": r"\b(select|union|insert|update|delete|drop|from|where|having|order\s+by|group\s+by|exec|cast|char)\b",
    "sql_comment": r"--|/\*|\*/|#",
    "xss": (
        r"<\s*script|<\s*/\s*script|javascript:|vbscript:|\bon(error|load|mouseover|focus|click|submit)\s*="
        r"|alert\s*\(|prompt\s*\(|confirm\s*\(|document\.(cookie|location|domain)|<\s*(iframe|img|svg|body|object|embed)"
        r"|\beval\s*\(|expression\s*\(|fromcharcode"
    ),
    "traversal": r"\.\./|\.\.\\|/etc/(passwd|shadow|hosts)|win\.ini|boot\.ini|/proc/self|\.htaccess|web-inf|%00|\x00",
    "cmd": (
        r"[;|&`]\s*(ls|cat|id|whoami|uname|wget|curl|nc|bash|sh|ping|nslookup)\b|\$\(|/bin/(ba)?sh|cmd\.exe"
        r"|powershell|\$\{jndi:"
    ),
    "quote": r"['\"]",
    "angle": r"[<>]",
    "paren": r"[()]",
    "semicolon_pipe": r"[;|`]",
    "brace": r"[{}\[\]$]",
    "whitespace": r"\s",
    "non_ascii": r"[^\x00-\x7f]",
    "control": r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]",
}

#: The raw-string statistics, per field.
FIELD_STATS: tuple[str, ...] = (
    "len",
    "alpha",
    "upper",
    "num_tokens",
    "special",
    "percent",
    "params",
    "segments",
    "max_token",
)

#: The statistics that read the raw string (the rest read the normalised text).
_RAW_STATS = frozenset({"upper", "percent", "params"})

LEXICAL_FEATURES: tuple[str, ...] = tuple(
    [f"{field}_{stat}" for field in ("path", "query", "body") for stat in FIELD_STATS]
    + [f"kw_{name}" for name in KEYWORDS]
)


def normalise_text(expr: pl.Expr) -> pl.Expr:
    """Percent-decode twice, lower-case, and replace ids, hex tokens and digit runs by placeholders.

    Parameters
    ----------
    expr : polars.Expr
        A string expression (nulls become empty strings).

    Returns
    -------
    polars.Expr
        The normalised text: e-mail addresses become ``e``, UUIDs ``u``, long tokens ``t``, hex tokens ``h``,
        digit runs ``0``.
    """
    text = expr.fill_null("").str.to_lowercase()
    text = text.str.replace_many(_DECODE_FROM, _DECODE_TO).str.replace_many(_DECODE_FROM, _DECODE_TO)
    text = text.str.replace_all(_EMAIL, "e").str.replace_all(_UUID, "u").str.replace_all(_LONG_TOKEN, "t")
    text = text.str.replace_all(_HEX_TOKEN, "h").str.replace_all(r"\d+", "0")
    return text


def _raw_case_upper(expr: pl.Expr) -> pl.Expr:
    """Upper-case letters in the raw text (before lower-casing)."""
    return expr.fill_null("").str.count_matches(r"[A-Z]").cast(pl.Float32)


def _field_stats(field: str, norm: pl.Expr, raw: pl.Expr) -> list[pl.Expr]:
    """Length and character-class statistics of one field."""
    return [
        norm.str.len_bytes().cast(pl.Float32).alias(f"{field}_len"),
        norm.str.count_matches(r"[a-z]").cast(pl.Float32).alias(f"{field}_alpha"),
        _raw_case_upper(raw).alias(f"{field}_upper"),
        norm.str.count_matches(r"\b0\b|\b[uth]\b").cast(pl.Float32).alias(f"{field}_num_tokens"),
        norm.str.count_matches(r"[^a-z0-9/=&?_.\-,:\s]").cast(pl.Float32).alias(f"{field}_special"),
        raw.fill_null("").str.count_matches(r"%[0-9A-Fa-f]{2}").cast(pl.Float32).alias(f"{field}_percent"),
        raw.fill_null("").str.count_matches(r"[&=]").cast(pl.Float32).alias(f"{field}_params"),
        norm.str.count_matches(r"/").cast(pl.Float32).alias(f"{field}_segments"),
        norm.str.extract_all(r"[a-z0-9_]+")
        .list.eval(pl.element().str.len_bytes())
        .list.max()
        .fill_null(0)
        .cast(pl.Float32)
        .alias(f"{field}_max_token"),
    ]


class _Gather:
    """Rows ``unique[inverse]`` of the distinct requests' features, gathered only when asked for."""

    def __init__(self, unique: np.ndarray, inverse: np.ndarray) -> None:
        self.unique = unique
        self.inverse = inverse

    def into(self, out: np.ndarray, rows: int = 8192) -> None:
        """Write the gathered rows into ``out`` (a column slice of a larger matrix) block by block.

        Gathering the whole block first would allocate a second ``n x d`` matrix (fresh pages, page faults).
        """
        for lo in range(0, self.inverse.size, rows):
            out[lo : lo + rows] = self.unique[self.inverse[lo : lo + rows]]

    def array(self) -> np.ndarray:
        """The gathered ``(n, d)`` matrix."""
        return self.unique[self.inverse]


def lexical_block(
    path: pl.Series, query: pl.Series, body: pl.Series, config: FeatureConfig
) -> tuple[np.ndarray, list[str], list[str], list[bool]]:
    """Compute the lexical and hashed n-gram features of each request.

    Parameters
    ----------
    path, query, body : polars.Series
        ``url.path``, ``url.query`` and ``http.request.body.content`` of every event (nullable strings).
    config : FeatureConfig
        Widths of the n-gram blocks, sizes and seed.

    Returns
    -------
    X : numpy.ndarray
        Shape ``(n, d)``, float32; count columns already ``log1p``-transformed.
    names : list of str
        Column names.
    groups : list of str
        Column groups (``lexical``, ``ngram_path``, ``ngram_payload``).
    log1p : list of bool
        Whether each column is a ``log1p`` count.

    Notes
    -----
    Work is done once per distinct normalised (path, query, body) triple and gathered back, so repeated API
    calls cost nothing. The n-grams of the path are taken after id normalisation, so account numbers, UUIDs
    and tokens never become columns.
    """
    rows, names, groups, log1p = lexical_gather(path, query, body, config)
    return rows.array(), names, groups, log1p


def lexical_gather(
    path: pl.Series, query: pl.Series, body: pl.Series, config: FeatureConfig
) -> tuple[_Gather, list[str], list[str], list[bool]]:
    """:func:`lexical_block` with the rows not yet gathered.

    ``rows.into(out)`` writes them into a slice of a larger matrix; ``rows.array()`` returns them.
    """
    frame = pl.DataFrame({"path": path, "query": query, "body": body}).with_columns(
        pl.col("path", "query", "body").fill_null("")
    )
    uniq, inverse = distinct_rows(frame)
    logger.debug("lexical: %d requests, %d distinct", frame.height, uniq.height)

    # Two levels of distinct values: the raw triples (ids make most of them distinct) and their normalised texts
    # (ids become placeholders, so a chunk of a busy API has a few dozen). Everything but the three raw-string
    # counts per field reads only the normalised text, so the regexes and n-grams run once per normalised triple
    # and the raw counts once per raw triple: the same expressions on the same strings, gathered back by index.
    # Each field is normalised, and its raw counts taken, once per distinct value of that field alone (paths
    # repeat across queries; a chunk has a few dozen distinct queries and bodies) and joined back: the same
    # elementwise expressions on the same strings.
    norm = uniq
    for field in ("path", "query", "body"):
        raw_only = [e for e in _field_stats(field, pl.col(f"n_{field}"), pl.col(field))
                    if e.meta.output_name().rsplit("_", 1)[-1] in _RAW_STATS]  # fmt: skip
        per_value = uniq.select(pl.col(field).unique(maintain_order=False)).with_columns(
            normalise_text(pl.col(field)).alias(f"n_{field}"), *raw_only
        )
        norm = norm.join(per_value, on=field, how="left", maintain_order="left")
    norm_keys = ["n_path", "n_query", "n_body"]
    norm_uniq, norm_inverse = distinct_rows(norm.select(norm_keys))
    raw_exprs: dict[str, pl.Expr] = {}
    norm_exprs: list[pl.Expr] = []
    for field in ("path", "query", "body"):
        for expr in _field_stats(field, pl.col(f"n_{field}"), pl.col(field)):
            name = expr.meta.output_name()
            if name.rsplit("_", 1)[-1] in _RAW_STATS:
                raw_exprs[name] = expr
            else:
                norm_exprs.append(expr)
    everything = pl.concat_str([pl.col("n_path"), pl.col("n_query"), pl.col("n_body")], separator=" ")
    for name, pattern in KEYWORDS.items():
        norm_exprs.append(everything.str.count_matches(pattern).cast(pl.Float32).alias(f"kw_{name}"))
    stats = norm_uniq.with_columns(norm_exprs)
    raw_stats = norm.select(list(raw_exprs))  # taken per distinct field value above
    names = list(LEXICAL_FEATURES)
    lex = np.empty((uniq.height, len(names)), dtype=np.float32)
    norm_lex = stats.select([n for n in names if n not in raw_exprs]).to_numpy().astype(np.float32)
    norm_cols = [j for j, n in enumerate(names) if n not in raw_exprs]
    lex[:, norm_cols] = norm_lex[norm_inverse]
    for name in raw_exprs:
        lex[:, names.index(name)] = raw_stats.get_column(name).to_numpy()
    lex = np.log1p(lex, dtype=np.float32)
    groups = ["lexical"] * len(names)
    blocks = [lex]
    if config.path_hash_buckets > 0:
        blocks.append(
            np.log1p(
                hash_ngrams(stats.get_column("n_path"), config.path_hash_buckets, config.ngram_sizes, config.hash_seed)
            )[norm_inverse]
        )
        names += [f"ngram_path_{i:03d}" for i in range(config.path_hash_buckets)]
        groups += ["ngram_path"] * config.path_hash_buckets
    if config.payload_hash_buckets > 0:
        payload = stats.select(pl.concat_str([pl.col("n_query"), pl.col("n_body")], separator="\x1f")).to_series()
        blocks.append(
            np.log1p(hash_ngrams(payload, config.payload_hash_buckets, config.ngram_sizes, config.hash_seed))[
                norm_inverse
            ]
        )
        names += [f"ngram_payload_{i:03d}" for i in range(config.payload_hash_buckets)]
        groups += ["ngram_payload"] * config.payload_hash_buckets
    unique_x = np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
    return _Gather(unique_x, inverse), names, groups, [True] * len(names)


# ---- the same features for one request, with Python's re (no polars query per event) ----------------------------
# Every pattern above is written in the common subset of Rust's and Python's regex syntax; alternation is
# leftmost-first in both, and a single alternation replaces the decoding table in one leftmost-first pass, as
# polars' replace_many (Aho-Corasick, leftmost-first) does. tests/features/test_online.py checks the two
# implementations agree on simulated traffic that includes every attack family.
_PY_DECODE = re.compile("|".join(re.escape(f) for f in _DECODE_FROM))
_PY_DECODE_MAP = dict(zip(_DECODE_FROM, _DECODE_TO, strict=True))
_PY_NORMALISE = [(re.compile(p), r) for p, r in ((_EMAIL, "e"), (_UUID, "u"), (_LONG_TOKEN, "t"), (_HEX_TOKEN, "h"),
                                                   (r"\d+", "0"))]
_PY_ALPHA = re.compile(r"[a-z]")
_PY_UPPER = re.compile(r"[A-Z]")
_PY_NUM_TOKENS = re.compile(r"\b0\b|\b[uth]\b")
_PY_SPECIAL = re.compile(r"[^a-z0-9/=&?_.\-,:\s]")
_PY_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_PY_PARAMS = re.compile(r"[&=]")
_PY_TOKEN = re.compile(r"[a-z0-9_]+")
_PY_KEYWORDS = [re.compile(p) for p in KEYWORDS.values()]


def _py_decode(match: re.Match[str]) -> str:
    return _PY_DECODE_MAP[match.group(0)]


def _py_normalise(text: str) -> str:
    """:func:`normalise_text` for one string."""
    text = text.lower()
    text = _PY_DECODE.sub(_py_decode, _PY_DECODE.sub(_py_decode, text))
    for pattern, repl in _PY_NORMALISE:
        text = pattern.sub(repl, text)
    return text


def _count(pattern: re.Pattern[str], text: str) -> int:
    # non-overlapping matches, as polars' count_matches; findall's list is cheaper than iterating match objects
    return len(pattern.findall(text))


def lexical_row(path: str | None, query: str | None, body: str | None) -> tuple[list[float], str, str]:
    """The raw lexical counts of one request, computed with Python's ``re``; :func:`lexical_block` for one row.

    Parameters
    ----------
    path, query, body : str or None
        ``url.path``, ``url.query`` and ``http.request.body.content`` (None counts as empty).

    Returns
    -------
    counts : list of float
        The :data:`LEXICAL_FEATURES` counts before ``log1p``.
    norm_path : str
        The normalised path (input of the path n-gram block).
    payload : str
        Normalised query and body joined by the unit separator U+001F (input of the payload n-gram block).
    """
    raws = (path or "", query or "", body or "")
    norms = [_py_normalise(r) for r in raws]
    out: list[float] = []
    for raw, norm in zip(raws, norms, strict=True):
        tokens = [len(tok.encode()) for tok in _PY_TOKEN.findall(norm)]
        out += [
            float(len(norm.encode())),
            float(_count(_PY_ALPHA, norm)),
            float(_count(_PY_UPPER, raw)),
            float(_count(_PY_NUM_TOKENS, norm)),
            float(_count(_PY_SPECIAL, norm)),
            float(_count(_PY_PERCENT, raw)),
            float(_count(_PY_PARAMS, raw)),
            float(norm.count("/")),
            float(max(tokens, default=0)),
        ]
    everything = " ".join(norms)
    out += [float(_count(p, everything)) for p in _PY_KEYWORDS]
    return out, norms[0], norms[1] + "\x1f" + norms[2]
