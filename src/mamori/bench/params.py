"""Per-parameter profiles of HTTP requests: which parameter names a request carries and what characters each holds.

The lexical block (:func:`mamori.features.extract_features`) describes a request as a whole; an anomalous CSIC
request often differs from normal traffic in one parameter only — a name nobody sends (``passworda``), a
quote or a slash in a field that only ever holds letters, a value far longer than usual. Here every parameter
(query string and body alike) lands in a bucket chosen by hashing its decoded, lower-cased name, and the bucket
records that the parameter is present, its length and which character classes its value holds. A name that
never occurs in normal traffic, or a character class a field never holds, lights up a column that is always
zero on normal rows: exactly what an autoencoder trained on normal traffic cannot reconstruct.

The buckets come from a fixed hash (BLAKE2b of the name), so every consortium member computes the same columns
without sharing a vocabulary. (Not CRC-32: it is linear, and a name with one appended letter — ``b1`` and
``b1a`` — lands in the same bucket far more often than chance.) A wider block of name buckets records presence
alone, so a new name seldom hides in the bucket of a name normal traffic sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import unquote_plus

import numpy as np

from mamori.errors import ConfigError

__all__ = ["NAME_BUCKETS", "PARAM_CLASSES", "param_profile", "param_profile_names"]

#: Character classes of parameter values (column suffixes), in column order.
PARAM_CLASSES: tuple[str, ...] = (
    "digit", "lower", "upper", "space", "non_ascii", "quote", "angle", "bracket", "semicolon_pipe", "dash",
    "dot", "comma", "slash", "star", "question_bang", "at", "percent_eq_amp_plus", "underscore", "control",
    "other",
)  # fmt: skip
_STATS = ("present", "len")
_WIDTH = len(_STATS) + len(PARAM_CLASSES)
#: Buckets of the presence-only block of parameter names.
NAME_BUCKETS = 256


def _char_class(ch: str) -> int:
    """Index in :data:`PARAM_CLASSES` of one character."""
    if "0" <= ch <= "9":
        return 0
    if "a" <= ch <= "z":
        return 1
    if "A" <= ch <= "Z":
        return 2
    if ch == " ":
        return 3
    code = ord(ch)
    if code > 127:
        return 4
    if code < 32 or code == 127:
        return 18
    return _PUNCT.get(ch, 19)


_PUNCT = {
    **dict.fromkeys("'\"`", 5),
    **dict.fromkeys("<>", 6),
    **dict.fromkeys("()[]{}", 7),
    **dict.fromkeys(";|", 8),
    "-": 9,
    ".": 10,
    ",": 11,
    **dict.fromkeys("/\\", 12),
    "*": 13,
    **dict.fromkeys("?!", 14),
    "@": 15,
    **dict.fromkeys("%=&+", 16),
    "_": 17,
}


def param_profile_names(buckets: int = 64) -> tuple[str, ...]:
    """Column names of :func:`param_profile`.

    Parameters
    ----------
    buckets : int, default=64
        Name buckets.

    Returns
    -------
    tuple of str
        ``param_<bucket>_present``, ``param_<bucket>_len``, then one ``param_<bucket>_<class>`` per character
        class, bucket after bucket; then ``param_name_<bucket>`` for the :data:`NAME_BUCKETS` name buckets.
    """
    profile = tuple(f"param_{b:02d}_{s}" for b in range(buckets) for s in (*_STATS, *PARAM_CLASSES))
    return (*profile, *(f"param_name_{b:03d}" for b in range(NAME_BUCKETS)))


def param_profile(queries: Sequence[str | None], bodies: Sequence[str | None], buckets: int = 64) -> np.ndarray:
    """Profile the parameters of each request (query string and body joined: a GET and a POST alike).

    Parameters
    ----------
    queries, bodies : sequence of str or None
        Raw (percent-encoded) query strings and ``application/x-www-form-urlencoded`` bodies, one per request.
    buckets : int, default=64
        Profile buckets (a hash of the decoded, lower-cased parameter name, modulo ``buckets``).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, buckets * 22 + NAME_BUCKETS)``, float32. Per profile bucket: ``present`` (1 when a parameter
        of that bucket occurs, however often), ``len`` (``log1p`` of the summed value lengths) and one 0/1 flag
        per character class (:data:`PARAM_CLASSES`) held by the bucket's values. Flags rather than counts: what
        marks an anomaly is a class a field never holds, and flags do not vary with the length of random names
        and addresses. Then one presence flag per name bucket (:data:`NAME_BUCKETS`, another hash).

    Raises
    ------
    ConfigError
        If ``queries`` and ``bodies`` differ in length or ``buckets`` < 1.
    """
    if len(queries) != len(bodies):
        raise ConfigError(f"param_profile: {len(queries)} query strings but {len(bodies)} bodies.")
    if buckets < 1:
        raise ConfigError(f"param_profile: buckets must be >= 1; got {buckets}.")
    out = np.zeros((len(queries), buckets, _WIDTH), dtype=np.float32)
    names = np.zeros((len(queries), NAME_BUCKETS), dtype=np.float32)
    bucket_of: dict[str, tuple[int, int]] = {}
    for i, (query, body) in enumerate(zip(queries, bodies, strict=True)):
        params = "&".join(x for x in (query, body) if x)
        if not params:
            continue
        row = out[i]
        for part in params.split("&"):
            raw_name, _sep, raw_value = part.partition("=")
            name = unquote_plus(raw_name, errors="replace").lower()
            value = unquote_plus(raw_value, errors="replace")
            pair = bucket_of.get(name)
            if pair is None:
                digest = int.from_bytes(
                    hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=8).digest(), "little"
                )
                pair = bucket_of[name] = (digest % buckets, (digest >> 32) % NAME_BUCKETS)
            b = pair[0]
            names[i, pair[1]] = 1.0
            row[b, 0] = 1.0
            row[b, 1] += len(value)
            for ch in set(value):
                row[b, len(_STATS) + _char_class(ch)] = 1.0
    out[:, :, 1] = np.log1p(out[:, :, 1])
    return np.concatenate([out.reshape(len(queries), buckets * _WIDTH), names], axis=1)
