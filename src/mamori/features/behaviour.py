"""Per-entity behaviour over causal sliding time windows, and per-request context features.

Every expression here sees only the current event and events before it: the frame is sorted by
``@timestamp`` (ties keep input order and get increasing nanosecond offsets), windows are right-closed
``(t - w, t]``, cumulative quantities use ``cum_*`` and ``shift(1)``. Appending later events therefore never
changes the features of earlier ones, and the same code can score a live stream in order.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl

from mamori.events import AUTH_ACTIONS
from mamori.features._distinct import distinct_rows
from mamori.features.config import FeatureConfig

__all__ = ["behaviour_columns", "prepare_frame", "add_window_distinct", "request_columns"]

logger = logging.getLogger(__name__)

T = "__t"  # nanosecond timestamp, strictly increasing, sort key of every window

_SCRIPTED_UA = (
    r"python|curl|wget|go-http|java/|libwww|scrapy|httpclient|headless|phantomjs|selenium|puppeteer|bot\b|spider"
    r"|crawler|node-fetch|axios|aiohttp|okhttp/[0-2]\.|^-$|^$"
)

_ACTIONS = AUTH_ACTIONS

_KEYS = {
    "ip": "source.ip",
    "asn": "source.as.number",
    "uname": "user.name",
    "uid": "user.id",
    "sess": "session.id",
    "dev": "device.id",
    "ja3": "tls.client.ja3",
    "ua": "user_agent.original",
    "path": "url.path",
    "payee": "banking.payee.id",
}


def _k(short: str) -> str:
    """Internal hashed key column of an entity."""
    return f"__k_{short}"


def prepare_frame(events: pl.DataFrame, config: FeatureConfig) -> pl.LazyFrame:
    """Sort by time and add the helper columns every window needs.

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events (labels already dropped), with a ``__row`` column holding the input position.
    config : FeatureConfig
        Settings.

    Returns
    -------
    polars.LazyFrame
        Sorted by ``(@timestamp, __row)`` with ``__t`` and hashed entity keys ``__k_*``.
    """
    status = pl.col("http.response.status_code")
    action = pl.col("event.action")
    outcome = pl.col("event.outcome")
    fail = (outcome == "failure").fill_null(False) | (status >= 400).fill_null(False)
    hosting = _hosting(config)
    keys = [
        pl.when(pl.col(src).is_null())
        .then(None)
        .otherwise(pl.col(src).cast(pl.String).hash(config.hash_seed))
        .alias(_k(short))
        for short, src in _KEYS.items()
    ]
    ts = events.get_column("@timestamp")
    stamps = ts.to_physical().to_numpy()
    rows = events.get_column("__row").to_numpy()
    # logs (and the scorer's state + chunk) usually arrive in time order: then the frame is already sorted by
    # (@timestamp, __row) and the sort, which gathers every column, is skipped
    in_order = (ts.null_count() == 0 and bool(np.all(stamps[1:] >= stamps[:-1]))
                and bool(np.all(rows[1:] > rows[:-1])))
    lf = (
        (events.lazy() if in_order else events.lazy().sort(["@timestamp", "__row"]))
        .with_columns(
            # rank among equal timestamps: they are adjacent after the sort, so the rank is the distance to the
            # start of the run (an O(n) scan; a window over "@timestamp" groups every row first)
            (
                pl.col("@timestamp").cast(pl.Datetime("ns", "UTC"))
                + pl.duration(
                    nanoseconds=pl.int_range(pl.len())
                    - pl.when(pl.col("@timestamp") != pl.col("@timestamp").shift(1).fill_null(pl.col("@timestamp")
                                                                                              - pl.duration(days=1)))
                    .then(pl.int_range(pl.len()))
                    .otherwise(None)
                    .forward_fill()
                )
            ).alias(T),
            pl.lit(1, dtype=pl.Int32).alias("__one"),
            fail.cast(pl.Int32).alias("__fail"),
            (action == "login").fill_null(False).cast(pl.Int32).alias("__login"),
            ((action == "login") & fail).fill_null(False).cast(pl.Int32).alias("__login_fail"),
            ((action == "login") & ~fail).fill_null(False).cast(pl.Int32).alias("__login_ok"),
            ((status >= 400) & (status < 500)).fill_null(False).cast(pl.Int32).alias("__4xx"),
            (action == "signup").fill_null(False).cast(pl.Int32).alias("__signup"),
            hosting.cast(pl.Int32).alias("__hosting"),
            *keys,
        )
    )
    return lf


def _present(short: str) -> pl.Expr:
    return pl.col(_k(short)).is_not_null()


def _newpair_flag(entity: str, other: str) -> pl.Expr:
    """1 when ``other`` appears with ``entity`` for the first time ever (both present)."""
    both = _present(entity) & _present(other)
    first = pl.struct(_k(entity), _k(other)).is_first_distinct()
    return (both & first).fill_null(False).cast(pl.Int32)


def add_window_distinct(frame: pl.DataFrame, entity: str, other: str, window_ns: int, name: str) -> pl.DataFrame:
    """Add the exact number of distinct ``other`` seen with ``entity`` in the causal window ``(t - w, t]``.

    Each occurrence ``j`` of a pair covers the interval ``[t_j, min(t_j + w, next_j))``; these intervals are
    disjoint, and a pair is in the window at ``t`` exactly when one of them covers ``t``. So the count is the
    number of the entity's pair occurrences started by ``t`` minus the number ended by ``t``; the latter comes
    from an as-of join. ``next_j`` only matters when it is ``<= t``, so the result is causal.
    """
    ek, ok = _k(entity), _k(other)
    both = pl.col(ek).is_not_null() & pl.col(ok).is_not_null()
    w = pl.duration(nanoseconds=window_ns, time_unit="ns")
    ends = (
        frame.lazy()
        .filter(both)
        .select(
            pl.col(ek),
            pl.min_horizontal(pl.col(T) + w, pl.col(T).shift(-1).over([ek, ok]).fill_null(pl.col(T) + w))
            .cast(pl.Datetime("ns", "UTC"))
            .alias("__end"),
        )
        .sort("__end")
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(ek).alias("__ended"))
        .collect()
    )
    started = both.cast(pl.Int64).cum_sum().over(ek)
    out = frame.with_columns(started.alias("__started")).join_asof(
        ends, left_on=T, right_on="__end", by=ek, strategy="backward", check_sortedness=False
    )
    return out.with_columns((pl.col("__started") - pl.col("__ended").fill_null(0)).alias(name)).drop(
        "__started", "__ended", "__end"
    )


def _window_distinct(t: np.ndarray, g: _Groups, eid: np.ndarray, e_present: np.ndarray, oid: np.ndarray,
                     o_present: np.ndarray, window_ns: int) -> np.ndarray:
    """:func:`add_window_distinct` in NumPy over dense ids: the same counts, without a polars query per column.

    The pair occurrences' end times ``min(t_j + w, next_j)`` come from one stable sort by pair id; an end time
    becomes the first frame index at or after it (times strictly increase in frame order), so "ended by ``t_i``"
    is "end index ``<= i``", counted per entity with two binary searches over ``entity * (n + 1) + index``.
    """
    n = t.size
    both = e_present & o_present
    rows = np.flatnonzero(both)
    if rows.size == 0:
        return np.zeros(n, dtype=np.float64)
    eg = eid[rows]
    pair = eg * np.int64(int(oid[rows].max()) + 1) + oid[rows]
    po = _stable_argsort(pair, int(pair.max()) + 1)  # stable: time order inside each pair
    ps = pair[po]
    # The end time's first frame index at or after it: times strictly increase in frame order, so that index is
    # min(first index at or after t_j + w, index of the pair's next occurrence), the former shared per window
    # (a gather instead of a binary search per occurrence in pair order)
    fr = rows[po]
    end = g.after(window_ns)[fr]
    same = ps[1:] == ps[:-1]
    end[:-1] = np.where(same, np.minimum(end[:-1], fr[1:]), end[:-1])
    stride = np.int64(n + 1)
    ends = np.sort(eg[po] * stride + end)
    # queries in group order are sorted (entity id, then frame index): fast binary searches
    base = eid[g.order] * stride
    # where each entity's ends begin depends on the group only: one search per group, broadcast to its rows
    first = np.searchsorted(ends, base[g.starts], side="left")[g.gid]
    ended = np.searchsorted(ends, base + g.order, side="right") - first
    # the entity's pair occurrences so far, in group order (g.cum of ``both`` without the round trip to frame
    # order and back; rows without the entity are zeroed by the final unsort either way)
    cs = _prefix_sums(g.sort(both).astype(np.float64))
    started = cs[1:] - cs[g.gstart]
    return g.unsort(started - ended)


def _stable_argsort(keys: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative int64 ``keys < bound``.

    Made unique by the position (``key * n + i``) the keys need no stable sort, and NumPy's default sort of
    int64 (vectorised quicksort) is about twice as fast as its stable one (timsort) on these arrays.
    """
    n = keys.size
    if n == 0 or bound * n >= 2**62:
        return np.argsort(keys, kind="stable")
    return np.argsort(keys * np.int64(n) + np.arange(n, dtype=np.int64))


class _Groups:
    """Rows of the time-sorted frame grouped by one entity key, time order kept inside each group.

    All window arithmetic is NumPy over this layout: a window ``(t - w, t]`` is the position range
    ``[start, p]`` inside the row's group, found by a vectorised binary search; windowed sums are differences
    of cumulative sums. Every quantity at position ``p`` reads positions ``<= p`` only (causal).
    """

    def __init__(self, t: np.ndarray, key: np.ndarray | None, present: np.ndarray | None,
                 shared: dict[tuple[str, int], np.ndarray] | None = None) -> None:
        n = t.size
        # per-window frame-index searches depend on the times only: groupings of the same frame share them
        self._shared: dict[tuple[str, int], np.ndarray] = {} if shared is None else shared
        self.n = n
        # a key null in every row (filled with 0 by _key) is one group in frame order: no sort needed
        if key is None or (present is not None and not present.any() and not key.any()):
            self.order = np.arange(n, dtype=np.int64)
            new = np.zeros(n, dtype=bool)
        else:
            self.order = np.argsort(key, kind="stable").astype(np.int64)
            ks = key[self.order]
            new = np.empty(n, dtype=bool)
            new[1:] = ks[1:] != ks[:-1]
        if n:
            new[0] = True
        pos = np.arange(n, dtype=np.int64)
        self.pos = pos
        self.gstart = np.maximum.accumulate(np.where(new, pos, 0)) if n else pos
        self.gid = np.cumsum(new) - 1
        self.starts = np.flatnonzero(new)  # first position of each group
        self.t = t[self.order]
        self.frame_t = t
        self.composite = self.gid.astype(np.int64) * np.int64(n) + self.order
        self.present = np.ones(n, dtype=bool) if present is None else present
        self._absent: np.ndarray | None = None
        self._gap: np.ndarray | None = None
        # no row has the key (e.g. user, session, device and AS ids in a plain access log): every per-row
        # quantity of the grouping is then 0 (unsort zeroes null-key rows), so the methods return zeros at once
        self.empty = bool(n) and not bool(self.present.any())
        self._starts: dict[int, np.ndarray] = {}

    def sort(self, x: np.ndarray) -> np.ndarray:
        """Frame order -> group order."""
        return x[self.order]

    def unsort(self, v: np.ndarray) -> np.ndarray:
        """Group order -> frame order, zero where the key is null."""
        if self.empty:
            return np.zeros(self.n)
        out = np.empty(self.n, dtype=np.float64)
        out[self.order] = v
        if self._absent is None:  # the null-key rows, found once per grouping (most are all-present)
            self._absent = np.flatnonzero(~self.present)
        if self._absent.size:
            out[self._absent] = 0.0
        return out

    def window_start(self, window_ns: int) -> np.ndarray:
        """First position of each row's window ``(t - w, t]`` inside its group.

        Times are strictly increasing in frame order, so a time threshold becomes a frame index
        (``searchsorted``), and ``gid * n + frame_index`` is sorted in group order: one more ``searchsorted``
        finds every window start at once.
        """
        if window_ns not in self._starts:
            # queries in frame order are sorted (fast binary searches); group order is a permutation of them
            first_inside = self._frame_search("first_inside", window_ns)[self.order]
            target = self.gid * np.int64(self.n) + first_inside
            self._starts[window_ns] = np.searchsorted(self.composite, target, side="left").astype(np.int64, copy=False)
        return self._starts[window_ns]

    def _frame_search(self, kind: str, window_ns: int) -> np.ndarray:
        """Per frame row, the first frame index with ``t > t_i - w`` (``first_inside``) or ``t >= t_i + w``."""
        key = (kind, window_ns)
        if key not in self._shared:
            t = self.frame_t
            self._shared[key] = (np.searchsorted(t, t - window_ns, side="right") if kind == "first_inside"
                                 else np.searchsorted(t, t + np.int64(window_ns), side="left")).astype(np.int64)
        return self._shared[key]

    def after(self, window_ns: int) -> np.ndarray:
        """First frame index at or after each row's ``t + w`` (frame order)."""
        return self._frame_search("after", window_ns)

    def wcount(self, window_ns: int) -> np.ndarray:
        """Number of the group's rows in each row's causal window, in frame order: ``wsum`` of ones.

        The prefix sums of ones are the positions themselves (exact in float64), so no sort or cumsum.
        """
        if self.empty:
            return np.zeros(self.n)
        return self.unsort((self.pos + 1 - self.window_start(window_ns)).astype(np.float64))

    def count(self, inclusive: bool = True) -> np.ndarray:
        """Number of the group's rows up to this one (``inclusive``) or before it: ``cum`` of ones."""
        if self.empty:
            return np.zeros(self.n)
        end = self.pos + 1 if inclusive else self.pos
        return self.unsort((end - self.gstart).astype(np.float64))

    def wsum(self, x: np.ndarray, window_ns: int) -> np.ndarray:
        """Sum of ``x`` over each row's causal window, in frame order."""
        if self.empty:
            return np.zeros(self.n)
        cs = _prefix_sums(self.sort(x).astype(np.float64, copy=False))
        return self.unsort(cs[1:] - cs[self.window_start(window_ns)])  # cs[1:] is cs[pos + 1]

    def cum(self, x: np.ndarray, inclusive: bool = True) -> np.ndarray:
        """Sum of ``x`` over the group's rows up to this one (``inclusive``) or before it.

        Integer-valued ``x`` uses global prefix sums (exact in float64); other values use a cumulative sum that
        restarts in each group, so a row's value never depends on other groups' magnitudes (exactly causal).
        """
        if self.empty:
            return np.zeros(self.n)
        xs = self.sort(x).astype(np.float64, copy=False)
        if np.array_equal(xs, np.round(xs)):
            cs = _prefix_sums(xs)
            return self.unsort((cs[1:] if inclusive else cs[:-1]) - cs[self.gstart])  # cs[pos + 1] / cs[pos]
        local = self._segmented(xs, "cum_sum")
        return self.unsort(local if inclusive else local - xs)

    def _segmented(self, xs: np.ndarray, op: str) -> np.ndarray:
        """Cumulative ``op`` (``cum_sum`` / ``cum_max``) restarting at each group, in group order."""
        frame = pl.DataFrame({"g": self.gid, "x": xs})
        return frame.select(getattr(pl.col("x"), op)().over("g")).to_series().to_numpy()

    def cummax_before(self, x: np.ndarray, fill: float) -> np.ndarray:
        """Maximum of ``x`` over the group's earlier rows (``fill`` when none)."""
        if self.empty:
            return np.zeros(self.n)
        xs = self.sort(x).astype(np.float64)
        running = self._segmented(xs, "cum_max")
        before = np.concatenate([[fill], running[:-1]])
        before[self.pos == self.gstart] = fill
        return self.unsort(before)

    def since(self, cond: np.ndarray) -> np.ndarray:
        """Nanoseconds since the group's last row (this one included) where ``cond`` holds; NaN if none."""
        if self.empty:
            return np.zeros(self.n)
        cs = self.sort(cond)
        last = np.maximum.accumulate(np.where(cs, self.pos, -1))
        ok = last >= self.gstart
        out = np.where(ok, self.t - self.t[np.maximum(last, 0)], np.nan)
        return self.unsort(out)

    def gap(self) -> np.ndarray:
        """Nanoseconds since the group's previous row, in group order; NaN for the first row (shared: read-only)."""
        if self._gap is None:
            step = np.empty(self.n, dtype=np.int64)  # t[p] - t[max(p - 1, 0)] by slices instead of a gather
            step[:1] = 0
            np.subtract(self.t[1:], self.t[:-1], out=step[1:])
            self._gap = np.where(self.pos > self.gstart, step.astype(np.float64), np.nan)
        return self._gap

    def gap_cv(self, k: int) -> np.ndarray:
        """Coefficient of variation of the last ``k`` inter-arrival gaps (1.0 with fewer than 3 gaps)."""
        if self.empty:
            return np.zeros(self.n)
        g = self.gap() / 1e9
        valid = ~np.isnan(g)
        gz = np.where(valid, g, 0.0)
        n = self.n
        depth = self.pos - self.gstart  # rows before this one in its group
        # Sum the last k gaps by shifting (no prefix sums across groups: exact and causal). Position p reads
        # p - lag through slices, adding only where that gap exists: the same additions in the same order as
        # adding 0.0 elsewhere (the sums start at +0.0 and gaps are >= 0), without temporaries per lag.
        m = np.zeros(n)
        s1 = np.zeros(n)
        oks = []
        for lag in range(min(k, n)):
            ok = depth >= lag
            ok[lag:] &= valid[: n - lag]
            oks.append(ok)
            m += ok
            np.add(s1[lag:], gz[: n - lag], out=s1[lag:], where=ok[lag:])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / m
            s2 = np.zeros(n)
            diff = np.empty(n)
            for lag, ok in enumerate(oks):
                d = diff[: n - lag]
                np.subtract(gz[: n - lag], mean[lag:], out=d)
                np.multiply(d, d, out=d)
                np.add(s2[lag:], d, out=s2[lag:], where=ok[lag:])
            var = s2 / m
            cv = np.sqrt(var) / (mean + 1e-3)
        return self.unsort(np.where(m >= 3, cv, 1.0))

    def first_t(self) -> np.ndarray:
        """Time of the group's first row, in group order."""
        return self.t[self.gstart]


def _prefix_sums(xs: np.ndarray) -> np.ndarray:
    """``[0, x0, x0 + x1, ...]`` (float64): ``np.concatenate([[0.0], np.cumsum(xs)])`` without the copy."""
    cs = np.empty(xs.size + 1, dtype=np.float64)
    cs[0] = 0.0
    np.cumsum(xs, out=cs[1:])
    return cs


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame.get_column(name).to_numpy()


def _key(frame: pl.DataFrame, short: str) -> tuple[np.ndarray, np.ndarray]:
    col = frame.get_column(_k(short))
    return col.fill_null(0).to_numpy(), col.is_not_null().to_numpy()


def _hosting(config: FeatureConfig) -> pl.Expr:
    """1 when the source AS is a hosting / cloud provider (by number or organisation name)."""
    asn_org = pl.col("source.as.organization.name").fill_null("").str.to_lowercase()
    hosting_kw = "|".join(k.replace(".", r"\.") for k in config.hosting_keywords) or "$^"
    return pl.col("source.as.number").is_in(sorted(config.hosting_asns)).fill_null(False) | asn_org.str.contains(
        hosting_kw
    )


def _request_exprs(config: FeatureConfig) -> list[tuple[str, pl.Expr, bool]]:
    """The per-request context columns: (name, expression over canonical columns, log1p)."""
    status = pl.col("http.response.status_code")
    method = pl.col("http.request.method").fill_null("").str.to_uppercase()
    action = pl.col("event.action")
    outcome = pl.col("event.outcome")
    ua = pl.col("user_agent.original")
    amount = pl.col("banking.amount")
    ctx: list[tuple[str, pl.Expr, bool]] = []
    for m in ("GET", "POST", "PUT", "DELETE"):
        ctx.append((f"method_{m.lower()}", (method == m) | ((method == "PATCH") & (m == "PUT")), False))
    ctx.append(("method_other", ~method.is_in(["GET", "POST", "PUT", "PATCH", "DELETE"]), False))
    for lo in (200, 300, 400, 500):
        ctx.append((f"status_{lo // 100}xx", (status >= lo) & (status < lo + 100), False))
    for code in (401, 403, 404, 429):
        ctx.append((f"status_{code}", status == code, False))
    ctx.append(("outcome_failure", outcome == "failure", False))
    ctx.append(("outcome_success", outcome == "success", False))
    for a in _ACTIONS:
        ctx.append((f"action_{a}", action == a, False))
    ctx.append(("action_none", action.is_null(), False))
    ctx.append(("request_bytes", pl.col("http.request.bytes"), True))
    ctx.append(("response_bytes", pl.col("http.response.body.bytes"), True))
    ctx.append(("duration_ms", pl.col("event.duration") / 1e6, True))
    local = pl.col("@timestamp").dt.convert_time_zone(config.timezone)
    hour = local.dt.hour().cast(pl.Float64) + local.dt.minute().cast(pl.Float64) / 60.0
    ctx.append(("hour_sin", (hour * (2 * np.pi / 24)).sin(), False))
    ctx.append(("hour_cos", (hour * (2 * np.pi / 24)).cos(), False))
    ctx.append(("is_night", hour < 6.0, False))
    ctx.append(("is_weekend", local.dt.weekday() >= 6, False))
    ctx.append(("has_user_id", pl.col("user.id").is_not_null(), False))
    ctx.append(("has_session", pl.col("session.id").is_not_null(), False))
    ctx.append(("has_device", pl.col("device.id").is_not_null(), False))
    ctx.append(("ua_missing", ua.is_null() | (ua == "") | (ua == "-"), False))
    ctx.append(("ua_length", ua.str.len_bytes(), True))
    ctx.append(("ua_scripted", ua.fill_null("").str.to_lowercase().str.contains(_SCRIPTED_UA), False))
    ctx.append(("hosting_asn", _hosting(config), False))
    ctx.append(("amount", amount.clip(lower_bound=0.0), True))
    return ctx


#: Request-context columns computed once per distinct value of these fields (see :func:`request_columns`).
_DISTINCT_REQUEST_KEYS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("http.request.method",), frozenset({"method_get", "method_post", "method_put", "method_delete", "method_other"})),
    (("user_agent.original",), frozenset({"ua_missing", "ua_length", "ua_scripted"})),
    (("source.as.number", "source.as.organization.name"), frozenset({"hosting_asn"})),
    (("@timestamp",), frozenset({"hour_sin", "hour_cos", "is_night", "is_weekend"})),
)

#: From 1973 on every time zone's UTC offset is a whole number of minutes (the last one with seconds, Liberia's
#: -0:44:30, ended in 1972), so a time's local hour, minute and weekday are those of its UTC minute.
_WHOLE_MINUTE_OFFSETS = dt.datetime(1973, 1, 1, tzinfo=dt.UTC)


def _on_distinct(keys: pl.DataFrame, exprs: list[pl.Expr]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``exprs`` (over the columns of ``keys``) once per distinct row of ``keys``.

    Returns the values of the distinct rows, shape ``(u, len(exprs))`` float64, and each row's index into them.
    Null keys are a key like any other.
    """
    uniq, inverse = distinct_rows(keys)
    values = np.asarray(uniq.select(exprs).to_numpy(), dtype=np.float64).reshape(uniq.height, len(exprs))
    return values, inverse


def request_columns(events: pl.DataFrame, config: FeatureConfig) -> tuple[np.ndarray, list[str], list[str], list[bool]]:
    """The request-context block of each event, in input order (no sort: these columns read one row each).

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events.
    config : FeatureConfig
        Settings.

    Returns
    -------
    X : numpy.ndarray
        Shape ``(n, k)``, float32, the same values :func:`behaviour_columns` gives with ``request=True``.
    names, groups : list of str
        Column names and groups (``"request"``).
    log1p : list of bool
        Whether each column is ``log1p``-transformed.
    """
    ctx = _request_exprs(config)
    n = events.height
    logs = [log1p for _, _, log1p in ctx]
    out = np.empty((n, len(ctx)), dtype=np.float32, order="F")
    column = {name: j for j, (name, _, _) in enumerate(ctx)}
    done: set[str] = set()

    def finish(v: np.ndarray, j: int) -> np.ndarray:
        """float64 values -> log1p (when the column is a count) -> float32, non-finite -> 0."""
        if logs[j]:
            v = np.log1p(np.maximum(v, 0.0))
        v32 = v.astype(np.float32)
        finite = np.isfinite(v32)
        if not finite.all():
            v32[~finite] = 0.0
        return v32

    # Columns that read only a few low-cardinality fields (method, user agent, AS, the minute of the time) are
    # computed once per distinct key and gathered back by index: logs repeat those values heavily, and the
    # string kernels and time-zone conversions are the block's main cost. Same expressions, same values (the
    # elementwise log1p and float32 conversion are done on the distinct values, before the gather).
    ts = events.get_column("@timestamp")
    by_minute = n > 0 and ts.min() >= _WHOLE_MINUTE_OFFSETS  # type: ignore[operator]
    for keys, wanted in _DISTINCT_REQUEST_KEYS:
        if keys == ("@timestamp",) and not by_minute:
            continue
        exprs = [(name, e) for name, e, _ in ctx if name in wanted]
        key_frame = events.select(pl.col(k).dt.truncate("1m") if k == "@timestamp" else pl.col(k) for k in keys)
        values, inverse = _on_distinct(key_frame, [e.cast(pl.Float64).fill_null(0.0).alias(nm) for nm, e in exprs])
        for i, (name, _) in enumerate(exprs):
            j = column[name]
            out[:, j] = finish(values[:, i], j)[inverse]
            done.add(name)
    rest = [(name, e) for name, e, _ in ctx if name not in done]
    if rest:
        values = events.select(e.cast(pl.Float64).fill_null(0.0).alias(name) for name, e in rest).to_numpy()
        for i, (name, _) in enumerate(rest):
            j = column[name]
            out[:, j] = finish(values[:, i], j)
    return out, [name for name, _, _ in ctx], ["request"] * len(ctx), logs


def behaviour_columns(
    lf: pl.LazyFrame, config: FeatureConfig, *, request: bool = True, first_row: int = 0
) -> tuple[np.ndarray, list[np.ndarray], list[str], list[str], list[bool]]:
    """Compute every request-context and behaviour feature.

    Parameters
    ----------
    lf : polars.LazyFrame
        Output of :func:`prepare_frame`.
    config : FeatureConfig
        Windows, time zone and caps.
    request : bool, default=True
        Include the request-context columns first (:func:`request_columns` computes the same block without
        sorting).
    first_row : int, default=0
        Rows whose input position (``__row``) is below this are history: they shape the windows of the others
        but get no output row (their columns are never transformed or converted).

    Returns
    -------
    row : numpy.ndarray
        Shape ``(n,)``: the input position (``__row``) of each output row.
    values : list of numpy.ndarray
        One float32 array of shape ``(n,)`` per column, rows in time order.
    names, groups : list of str
        Column names and groups.
    log1p : list of bool
        Whether each column is ``log1p``-transformed.
    """
    short, long, day = (
        int(config.window_seconds(w) * 1e9) for w in (config.short_window, config.long_window, config.day_window)
    )
    never = config.never_seconds
    action = pl.col("event.action")
    amount = pl.col("banking.amount")

    ctx = _request_exprs(config) if request else []
    ja3_missing = ("ja3_missing", ~_present("ja3"), False)

    prepared = lf.collect()
    # keys null in every row (user, session, device ids of a plain access log): their first-seen flags are 0
    # everywhere, so the struct hashing of is_first_distinct is skipped for them (same values)
    absent = {short for short in _KEYS if prepared.height and prepared.get_column(_k(short)).null_count() ==
              prepared.height}  # fmt: skip

    def pair(entity: str, other: str) -> pl.Expr:
        if entity in absent or other in absent:
            return pl.lit(0, dtype=pl.Int32)
        return _newpair_flag(entity, other)

    uname_first = (_present("uname") & pl.col(_k("uname")).is_first_distinct()).fill_null(False)
    helpers = [
        pl.col(T).dt.epoch("ns").alias("__tns"),
        pair("uid", "dev").alias("__user_new_device"),
        pair("uid", "asn").alias("__user_new_asn"),
        pair("uid", "payee").alias("__user_new_payee"),
        pair("sess", "ip").alias("__sess_new_ip"),
        pair("sess", "asn").alias("__sess_new_asn"),
        pair("sess", "ua").alias("__sess_new_ua"),
        pair("dev", "uid").alias("__dev_new_uid"),
        (pl.lit(0, dtype=pl.Int32) if "uname" in absent else uname_first.cast(pl.Int32)).alias("__uname_first"),
        (action.is_in(["transfer", "trade"]).fill_null(False) & amount.is_not_null()).alias("__money"),
        amount.clip(lower_bound=0.0).log1p().fill_null(0.0).alias("__lamount"),
        (action == "contact_change").fill_null(False).alias("__contact_change"),
        (action == "password_reset").fill_null(False).alias("__password_reset"),
        (action == "payee_add").fill_null(False).alias("__payee_add"),
        (action == "device_register").fill_null(False).alias("__device_register"),
        (action == "otp_issue").fill_null(False).alias("__otp_issue"),
        (action == "otp_verify").fill_null(False).alias("__otp_verify"),
    ]
    frame = prepared.lazy().with_columns(
        *helpers,
        *(e.cast(pl.Float64).fill_null(0.0).alias(f"__ctx_{name}") for name, e, _ in [*ctx, ja3_missing]),
    ).collect()

    names: list[str] = []
    groups: list[str] = []
    logs: list[bool] = []
    values: list[np.ndarray] = []

    rows = _col(frame, "__row")
    keep: np.ndarray | slice | None = rows >= first_row if first_row else None
    if keep is not None:
        # history rows are older than the batch, so the kept rows are usually the end of the time-sorted
        # frame: a slice (a view) instead of a boolean gather per column
        kept = np.flatnonzero(keep)
        if kept.size and kept[-1] - kept[0] + 1 == kept.size:
            keep = slice(int(kept[0]), int(kept[-1]) + 1)

    def add(name: str, group: str, v: np.ndarray, log1p: bool = False) -> None:
        if keep is not None:
            v = np.asarray(v)[keep]
        v = np.asarray(v, dtype=np.float64)
        if log1p:
            v = np.log1p(np.maximum(v, 0.0))
        names.append(name)
        groups.append(group)
        logs.append(log1p)
        v = v.astype(np.float32)
        finite = np.isfinite(v)
        if not finite.all():
            v[~finite] = 0.0
        values.append(v)

    for name, _, log1p in ctx:
        add(name, "request", _col(frame, f"__ctx_{name}"), log1p)

    t = _col(frame, "__tns").astype(np.int64)
    fail = _col(frame, "__fail").astype(np.float64)
    login = _col(frame, "__login").astype(np.float64)
    login_fail = _col(frame, "__login_fail").astype(np.float64)
    login_ok = _col(frame, "__login_ok").astype(np.float64)
    e4xx = _col(frame, "__4xx").astype(np.float64)
    signup = _col(frame, "__signup").astype(np.float64)
    hosting = _col(frame, "__hosting").astype(np.float64)
    searches: dict[tuple[str, int], np.ndarray] = {}
    grouping = {short_name: _Groups(t, *_key(frame, short_name), shared=searches) for short_name in
                ("ip", "asn", "uname", "uid", "sess", "dev", "ja3")}  # fmt: skip

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    dense: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def dense_id(short: str) -> tuple[np.ndarray, np.ndarray]:
        """Dense group id of each row's key (frame order) and whether the key is present."""
        if short not in dense:
            if short in grouping:
                g = grouping[short]
                ids = np.empty(t.size, dtype=np.int64)
                ids[g.order] = g.gid
                dense[short] = (ids, g.present)
            else:
                key, present = _key(frame, short)
                dense[short] = (np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(-1), present)
        return dense[short]

    def distinct(entity: str, other: str, window: int) -> np.ndarray:
        return _window_distinct(t, grouping[entity], *dense_id(entity), *dense_id(other), window)

    # ---- per source IP --------------------------------------------------------------------------------------
    g = grouping["ip"]
    add("ip_requests_short", "ip", g.wcount(short), True)
    n_long = g.wcount(long)
    add("ip_requests_long", "ip", n_long, True)
    add("ip_failure_ratio_long", "ip", ratio(g.wsum(fail, long), n_long))
    add("ip_login_failures_long", "ip", g.wsum(login_fail, long), True)
    add("ip_4xx_short", "ip", g.wsum(e4xx, short), True)
    add("ip_distinct_usernames_long", "ip", distinct("ip", "uname", long), True)
    add("ip_distinct_usernames_day", "ip", distinct("ip", "uname", day), True)
    add("ip_distinct_users_day", "ip", distinct("ip", "uid", day), True)
    add("ip_distinct_user_agents_long", "ip", distinct("ip", "ua", long), True)
    add("ip_distinct_paths_short", "ip", distinct("ip", "path", short), True)
    add("ip_gap_seconds", "ip", g.unsort(np.nan_to_num(g.gap() / 1e9, nan=never)), True)
    add("ip_gap_cv", "ip", g.gap_cv(config.regularity_events))
    add("ip_events_seen", "ip", g.count(inclusive=False), True)

    # ---- per autonomous system ------------------------------------------------------------------------------
    g = grouping["asn"]
    n_long = g.wcount(long)
    add("asn_requests_long", "asn", n_long, True)
    add("asn_failure_ratio_long", "asn", ratio(g.wsum(fail, long), n_long))
    add("asn_login_failures_long", "asn", g.wsum(login_fail, long), True)
    add("asn_distinct_usernames_long", "asn", distinct("asn", "uname", long), True)
    add("asn_distinct_ips_long", "asn", distinct("asn", "ip", long), True)

    # ---- per presented username -----------------------------------------------------------------------------
    g = grouping["uname"]
    add("username_failures_long", "username", g.wsum(login_fail, long), True)
    add("username_attempts_day", "username", g.wsum(login, day), True)
    add("username_distinct_ips_day", "username", distinct("uname", "ip", day), True)
    add("username_first_seen", "username", _col(frame, "__uname_first"))
    add("username_no_prior_success", "username", g.unsort((g.sort(g.cum(login_ok, inclusive=False)) == 0) * 1.0))

    # ---- per authenticated user -----------------------------------------------------------------------------
    g = grouping["uid"]
    new_device = _col(frame, "__user_new_device").astype(np.float64)
    seen_prev = g.count(inclusive=False)
    add("user_events_seen", "user", seen_prev, True)
    add("user_new_device", "user", new_device)
    add("user_new_asn", "user", _col(frame, "__user_new_asn"))
    add("user_distinct_ips_day", "user", distinct("uid", "ip", day), True)
    add("user_distinct_devices", "user", g.cum(new_device), True)

    def since(cond: np.ndarray, g: _Groups = g) -> np.ndarray:
        s = g.since(cond.astype(bool)) / 1e9
        return np.where(g.present, np.minimum(np.nan_to_num(s, nan=never), never), 0.0)

    add("user_seconds_since_contact_change", "user", since(_col(frame, "__contact_change")), True)
    add("user_seconds_since_password_reset", "user", since(_col(frame, "__password_reset")), True)
    add("user_seconds_since_payee_add", "user", since(_col(frame, "__payee_add")), True)
    add("user_seconds_since_new_device", "user",
        since((new_device > 0) | _col(frame, "__device_register")), True)  # fmt: skip
    add("user_first_time_payee", "user", _col(frame, "__user_new_payee"))
    money = _col(frame, "__money").astype(np.float64)
    la = np.where(money > 0, _col(frame, "__lamount"), 0.0)
    n_prev = g.cum(money, inclusive=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prev = g.cum(la, inclusive=False) / n_prev
        var_prev = np.maximum(g.cum(la * la, inclusive=False) / n_prev - mean_prev**2, 0.0)
        z = np.where((money > 0) & (n_prev > 0), (la - mean_prev) / np.sqrt(var_prev + 0.25), 0.0)
    add("user_amount_z", "user", np.clip(z, -10.0, 10.0))
    max_prev = g.cummax_before(la, fill=0.0)
    add("user_amount_over_max", "user", np.clip(np.where((money > 0) & (n_prev > 0), la - max_prev, 0.0), -10, 10))
    add("user_prior_transfers", "user", n_prev, True)
    add("user_hosting_share", "user", ratio(g.cum(hosting, inclusive=False), seen_prev))

    # ---- per session ----------------------------------------------------------------------------------------
    g = grouping["sess"]
    add("session_age_seconds", "session", g.unsort((g.t - g.first_t()) / 1e9), True)
    add("session_requests", "session", g.count(), True)
    add("session_requests_short", "session", g.wcount(short), True)
    add("session_4xx_short", "session", g.wsum(e4xx, short), True)
    add("session_distinct_ips", "session", g.cum(_col(frame, "__sess_new_ip")), True)
    add("session_distinct_asns", "session", g.cum(_col(frame, "__sess_new_asn")), True)
    add("session_distinct_user_agents", "session", g.cum(_col(frame, "__sess_new_ua")), True)
    add("session_distinct_paths_short", "session", distinct("sess", "path", short), True)
    add("session_gap_cv", "session", g.gap_cv(config.regularity_events))
    add("session_gap_seconds", "session", g.unsort(np.nan_to_num(g.gap() / 1e9, nan=never)), True)
    otp = g.since(_col(frame, "__otp_issue").astype(bool)) / 1e9
    add("session_otp_latency", "session", np.where(_col(frame, "__otp_verify"), np.nan_to_num(otp, nan=0.0), 0.0),
        True)  # fmt: skip
    login_rows = login > 0
    last_login_pos = np.maximum.accumulate(np.where(g.sort(login_rows), g.pos, -1))
    hosting_at_login = np.where(last_login_pos >= g.gstart, g.sort(hosting)[np.maximum(last_login_pos, 0)], 0.0)
    add("session_hosting_at_login", "session", g.unsort(hosting_at_login))

    # ---- per device -----------------------------------------------------------------------------------------
    g = grouping["dev"]
    add("device_requests_long", "device", g.wcount(long), True)
    add("device_signups_long", "device", g.wsum(signup, long), True)
    add("device_distinct_users", "device", g.cum(_col(frame, "__dev_new_uid")), True)
    add("device_distinct_usernames_day", "device", distinct("dev", "uname", day), True)

    # ---- per TLS fingerprint --------------------------------------------------------------------------------
    g = grouping["ja3"]
    add("ja3_missing", "fingerprint", _col(frame, "__ctx_ja3_missing"))
    n_long = g.wcount(long)
    add("ja3_requests_long", "fingerprint", n_long, True)
    add("ja3_failure_ratio_long", "fingerprint", ratio(g.wsum(fail, long), n_long))
    add("ja3_distinct_user_agents_long", "fingerprint", distinct("ja3", "ua", long), True)

    # ---- the whole member (population) ----------------------------------------------------------------------
    g = _Groups(t, None, None, shared=searches)
    logins = g.wsum(login, long)
    add("population_logins_long", "population", logins, True)
    add("population_login_failure_ratio_long", "population", ratio(g.wsum(login_fail, long), logins))
    new_uname_login = _col(frame, "__uname_first") * login
    add("population_new_username_ratio_long", "population", ratio(g.wsum(new_uname_login, long), logins))

    return (rows if keep is None else rows[keep]), values, names, groups, logs
