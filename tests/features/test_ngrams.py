from __future__ import annotations

import numpy as np
import polars as pl

from mamori.features import hash_ngrams


def test_width_is_fixed_whatever_the_vocabulary() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    small = ["abc", "abd"]
    large = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz/=&?"), 40)) for _ in range(5000)]
    # Execute
    a = hash_ngrams(small, 64)
    b = hash_ngrams(large, 64)
    # Assert
    assert a.shape == (2, 64) and b.shape == (5000, 64)


def test_a_string_hashes_the_same_in_any_batch() -> None:
    # Execute
    alone = hash_ngrams(["/api/v1/transfers"], 32)
    batch = hash_ngrams(["x", None, "/api/v1/transfers", "héllo wörld"], 32)
    # Assert
    np.testing.assert_array_equal(alone[0], batch[2])
    assert batch[1].sum() == 0


def test_counts_and_framing() -> None:
    # Execute: "abc" framed as \x02abc\x03 has three 3-grams; "ab" has two; "" has none
    out = hash_ngrams(pl.Series(["abc", "ab", ""]), 1024, (3,))
    # Assert
    assert out.sum(axis=1).tolist() == [3.0, 2.0, 0.0]


def test_hash_is_pinned() -> None:
    # The consortium relies on every member hashing alike, across versions and machines.
    out = hash_ngrams(["union select"], 16, (3,), seed=0)
    assert out.sum() == 12
    assert np.flatnonzero(out[0]).tolist() == PINNED


def test_seed_changes_buckets() -> None:
    a = hash_ngrams(["union select password from users"], 64, seed=0)
    b = hash_ngrams(["union select password from users"], 64, seed=1)
    assert not np.array_equal(a, b)


PINNED: list[int] = [0, 1, 5, 9, 10, 11, 15]


def test_few_strings_path_equals_the_vectorised_path() -> None:
    # Prepare: a handful of strings takes the plain-integer path, a Series the vectorised one
    texts = ["/api/v1/transfers", "", None, "héllo wörld ' or 1=1 --", "a" * 300]
    # Execute
    few = hash_ngrams(texts, 64, (2, 3, 5), seed=7)
    vectorised = hash_ngrams(pl.Series(texts, dtype=pl.String), 64, (2, 3, 5), seed=7)
    # Assert
    np.testing.assert_array_equal(few, vectorised)
