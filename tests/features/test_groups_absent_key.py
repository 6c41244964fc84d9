"""A grouping whose key is null in every row returns its zeros at once: the same values as the full computation."""

from __future__ import annotations

import numpy as np

from mamori.features.behaviour import _Groups


def test_all_null_key_gives_the_values_of_the_full_computation() -> None:
    # Prepare: strictly increasing times, a key that is null everywhere (filled with 0, as _key does)
    rng = np.random.default_rng(7)
    n = 500
    t = np.cumsum(rng.integers(1, 10**9, n)).astype(np.int64)
    key = np.zeros(n, dtype=np.uint64)
    present = np.zeros(n, dtype=bool)
    x = rng.random(n)
    ints = rng.integers(0, 3, n).astype(np.float64)
    cond = rng.random(n) < 0.2
    fast = _Groups(t, key, present)
    full = _Groups(t, key, present)
    full.empty = False  # the general path

    # Execute / Assert: every public quantity, bit for bit
    for name, call in {
        "wcount": lambda g: g.wcount(60 * 10**9),
        "count": lambda g: g.count(inclusive=False),
        "wsum": lambda g: g.wsum(x, 3600 * 10**9),
        "cum_int": lambda g: g.cum(ints),
        "cum_float": lambda g: g.cum(x, inclusive=False),
        "cummax_before": lambda g: g.cummax_before(x, fill=0.0),
        "since": lambda g: g.since(cond),
        "gap_cv": lambda g: g.gap_cv(10),
        "unsort": lambda g: g.unsort(g.sort(x)),
    }.items():
        a, b = call(fast), call(full)
        assert fast.empty
        assert np.array_equal(a.view(np.uint64), np.asarray(b, dtype=np.float64).view(np.uint64)), name
