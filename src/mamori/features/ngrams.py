"""Hashed character n-grams: a fixed-width count vector per string, no vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = ["hash_ngrams"]

logger = logging.getLogger(__name__)

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_ROWS_PER_CHUNK = 65_536
_PY_MAX_ROWS = 16
_M64 = (1 << 64) - 1


def _hash_ngrams_py(texts: Sequence[str | None], n_buckets: int, ngram_sizes: Sequence[int], seed: int
                    ) -> np.ndarray:
    """:func:`hash_ngrams` in Python integers (same hash, same buckets): cheaper for a few strings."""
    out = np.zeros((len(texts), max(n_buckets, 0)), dtype=np.float32)
    if n_buckets <= 0:
        return out
    offset, prime, mix1, mix2 = int(_FNV_OFFSET), int(_FNV_PRIME), int(_MIX1), int(_MIX2)
    for row, text in enumerate(texts):
        data = b"\x02" + (text or "").encode() + b"\x03"
        counts = out[row]
        for size in ngram_sizes:
            start = (offset ^ ((seed * 0x9E3779B1 + size) & _M64)) & _M64
            for i in range(len(data) - size + 1):
                h = start
                for byte in data[i : i + size]:
                    h = ((h ^ byte) * prime) & _M64
                h ^= h >> 33
                h = (h * mix1) & _M64
                h ^= h >> 33
                h = (h * mix2) & _M64
                h ^= h >> 33
                counts[h % n_buckets] += 1
    return out


def hash_ngrams(
    texts: pl.Series | Sequence[str | None],
    n_buckets: int,
    ngram_sizes: Sequence[int] = (3,),
    seed: int = 0,
) -> np.ndarray:
    """Count the byte n-grams of each string into ``n_buckets`` hashed buckets.

    Parameters
    ----------
    texts : polars.Series or sequence of str
        Strings; null counts as empty. Each is framed by a start byte ``0x02`` and an end byte ``0x03`` so
        that prefixes and suffixes form their own n-grams.
    n_buckets : int
        Output width; independent of the data.
    ngram_sizes : sequence of int, default=(3,)
        N-gram lengths in bytes (UTF-8).
    seed : int, default=0
        Hash seed. Every consortium member must use the same one.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(texts), n_buckets)``, float32 counts.

    Notes
    -----
    The hash is 64-bit FNV-1a over the n-gram's bytes, seeded and finished with the MurmurHash3 mixer,
    computed with vectorised NumPy over the whole Arrow byte buffer, so the result does not depend on the
    platform, the process (unlike Python's ``hash``) or the order of rows.
    """
    if not isinstance(texts, pl.Series) and len(texts) <= _PY_MAX_ROWS:
        # a handful of strings (the live scoring path): plain integer arithmetic beats building Arrow buffers
        return _hash_ngrams_py(texts, n_buckets, ngram_sizes, seed)
    series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String)
    n_rows = len(series)
    out = np.zeros((n_rows, max(n_buckets, 0)), dtype=np.float32)
    if n_rows == 0 or n_buckets <= 0:
        return out
    framed = pl.concat_str([pl.lit("\x02"), series.fill_null("").cast(pl.String), pl.lit("\x03")]).alias("t")
    arrow = pl.select(framed).to_series().to_arrow().cast(pa.large_binary())
    offsets = np.frombuffer(arrow.buffers()[1], dtype=np.int64)[arrow.offset : arrow.offset + n_rows + 1]
    data = np.frombuffer(arrow.buffers()[2], dtype=np.uint8)
    for lo in range(0, n_rows, _ROWS_PER_CHUNK):
        hi = min(lo + _ROWS_PER_CHUNK, n_rows)
        b0, b1 = int(offsets[lo]), int(offsets[hi])
        chunk = data[b0:b1].astype(np.uint64)
        lengths = np.diff(offsets[lo : hi + 1])
        row = np.repeat(np.arange(hi - lo, dtype=np.int64), lengths)
        end = (offsets[lo + 1 : hi + 1] - b0)[row]
        pos = np.arange(b1 - b0, dtype=np.int64)
        counts = np.zeros((hi - lo) * n_buckets, dtype=np.int64)
        for size in ngram_sizes:
            valid = pos + size <= end
            idx = pos[valid]
            if idx.size == 0:
                continue
            h = np.full(idx.size, _FNV_OFFSET ^ np.uint64(seed * 0x9E3779B1 + size), dtype=np.uint64)
            for j in range(size):
                h ^= chunk[idx + j]
                h *= _FNV_PRIME
            h ^= h >> np.uint64(33)
            h *= _MIX1
            h ^= h >> np.uint64(33)
            h *= _MIX2
            h ^= h >> np.uint64(33)
            bucket = (h % np.uint64(n_buckets)).astype(np.int64)
            counts += np.bincount(row[valid] * n_buckets + bucket, minlength=(hi - lo) * n_buckets)
        out[lo:hi] = counts.reshape(hi - lo, n_buckets)
    return out
