"""Windowed cross-bank analytics: members sketch, the consortium secure-sums, members resolve heavy hitters."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from mamori.analytics.config import AnalyticsConfig
from mamori.analytics.items import extract_items
from mamori.analytics.keys import ConsortiumKey
from mamori.analytics.secure_sum import MaskingMember, SecureSumCoordinator, secure_sum
from mamori.errors import ConfigError

__all__ = ["AnalyticsResult", "Finding", "WindowRound", "dp_sigma", "run_analytics"]

logger = logging.getLogger(__name__)

_RATIO_KINDS = ("net24", "asn", "user_agent", "ja3")
_SMALL_KINDS = ("asn", "user_agent", "ja3", "payee")
_US_PER_HOUR = 3_600_000_000


@dataclass
class Finding:
    """One item flagged as a cross-bank heavy hitter.

    Attributes
    ----------
    kind, value : str
        The item (resolved by a member that holds the key and saw it).
    banks : int
        Estimated number of banks that saw it (count-min upper bound; noisy under DP).
    first_seen, last_seen : datetime
        Earliest and latest sighting reported by the resolving members.
    flagged_at : datetime
        End of the window in which it was first flagged.
    failures : int
        Estimated consortium-wide failed logins within the horizon at flagging (ratio kinds; else 0).
    """

    kind: str
    value: str
    banks: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    flagged_at: dt.datetime
    failures: int = 0


@dataclass
class WindowRound:
    """What one window's round did.

    Attributes
    ----------
    end : datetime
        Window end.
    members : int
        Members that contributed.
    vector_cells : int
        Length of each member's summed vector.
    new_findings : int
        Items flagged for the first time.
    seconds : float
        Wall time of the round (sketching, masking, summing, resolving).
    """

    end: dt.datetime
    members: int
    vector_cells: int
    new_findings: int
    seconds: float


@dataclass
class AnalyticsResult:
    """The outcome of :func:`run_analytics`.

    Attributes
    ----------
    findings : dict of (str, str) to Finding
        Every flagged item.
    rounds : list of WindowRound
        One per window.
    config : AnalyticsConfig
        The settings used.
    last_total : numpy.ndarray or None
        The consortium sum of the last window (all the coordinator learns).
    """

    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    rounds: list[WindowRound] = field(default_factory=list)
    config: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    last_total: np.ndarray | None = None

    def flagged(self, kind: str) -> dict[str, dt.datetime]:
        """Return value -> flag time for one kind.

        Parameters
        ----------
        kind : str
            Item kind.

        Returns
        -------
        dict of str to datetime
        """
        return {f.value: f.flagged_at for f in self.findings.values() if f.kind == kind}


def dp_sigma(config: AnalyticsConfig) -> float:
    """Standard deviation of the total Gaussian noise per presence cell (0 without DP).

    One (member, item) changes ``depth`` presence cells by 1, so the L2 sensitivity is ``sqrt(depth)``; the
    classic Gaussian mechanism gives ``sigma = sqrt(depth) * sqrt(2 ln(1.25 / delta)) / epsilon`` per window.

    Parameters
    ----------
    config : AnalyticsConfig
        Settings.

    Returns
    -------
    float
    """
    if config.dp_epsilon is None:
        return 0.0
    return math.sqrt(config.depth) * math.sqrt(2 * math.log(1.25 / config.dp_delta)) / config.dp_epsilon


@dataclass
class _KindItems:
    times: np.ndarray
    ids: np.ndarray
    cells: np.ndarray
    failed: np.ndarray


@dataclass
class _Segment:
    kind: str
    part: str  # presence / fail / ok
    width: int
    offset: int


def _layout(config: AnalyticsConfig) -> tuple[list[_Segment], int]:
    segs: list[_Segment] = []
    off = 0
    for kind in config.kinds:
        width = _width(config, kind)
        parts = ("presence", "fail", "ok") if kind in _RATIO_KINDS else ("presence",)
        for part in parts:
            segs.append(_Segment(kind, part, width, off))
            off += width * config.depth
    return segs, off


def _width(config: AnalyticsConfig, kind: str) -> int:
    if kind in _SMALL_KINDS:
        return config.small_width
    return max(16, config.width // 4) if kind == "net24" else config.width


def _us_to_dt(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC)


def run_analytics(
    bank_events: Mapping[str, pl.DataFrame],
    key: ConsortiumKey,
    config: AnalyticsConfig | None = None,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnalyticsResult:
    """Run the windowed protocol over every member's events (in one process, as a simulation of the deployment).

    At the end of every window each member builds presence sketches (and, for ratio kinds, failure/success
    count sketches) of its items within the horizon, adds its DP noise share, masks the vector and sends it; the
    coordinator sums. Each member then queries the sum for its own items and flags those seen at
    ``min_banks`` or more banks (ratio kinds also need a high consortium-wide failure share).

    Parameters
    ----------
    bank_events : mapping of str to polars.DataFrame
        Member name -> its canonical events.
    key : ConsortiumKey
        The members' shared key (the coordinator object never receives it).
    config : AnalyticsConfig or None, default=None
        Settings; defaults when None.
    start, end : datetime or None, default=None
        Period; the events' span when None.
    progress : callable or None, default=None
        Called with (window index, number of windows).

    Returns
    -------
    AnalyticsResult

    Raises
    ------
    ConfigError
        With fewer than 2 members, or fewer members than ``min_banks``.
    """
    config = config or AnalyticsConfig()
    names = sorted(bank_events)
    if len(names) < 2 or len(names) < config.min_banks:
        raise ConfigError(f"run_analytics: {len(names)} members; need at least max(2, min_banks={config.min_banks})")
    segs, total_cells = _layout(config)
    id_maps: dict[str, dict[str, int]] = {k: {} for k in config.kinds}
    values: dict[str, list[str]] = {k: [] for k in config.kinds}
    members: dict[str, dict[str, _KindItems]] = {}
    t_min, t_max = None, None
    for name in names:
        items = extract_items(bank_events[name])
        per_kind: dict[str, _KindItems] = {}
        for kind in config.kinds:
            sub = items.filter(pl.col("kind") == kind)
            vals = sub["value"].to_list()
            idm = id_maps[kind]
            uniq = list(dict.fromkeys(vals))
            for v in uniq:
                if v not in idm:
                    idm[v] = len(values[kind])
                    values[kind].append(v)
            width = _width(config, kind)
            ucells = key.cells(kind, uniq, width, config.depth)
            upos = {v: i for i, v in enumerate(uniq)}
            idx = np.fromiter((upos[v] for v in vals), dtype=np.int64, count=len(vals))
            per_kind[kind] = _KindItems(
                times=sub["time_us"].to_numpy(), ids=np.fromiter((idm[v] for v in vals), np.int64, len(vals)),
                cells=ucells[idx] if len(vals) else np.zeros((0, config.depth), np.int64),
                failed=sub["failed"].to_numpy())
            if len(vals):
                lo, hi = int(per_kind[kind].times[0]), int(per_kind[kind].times[-1])
                t_min = lo if t_min is None else min(t_min, lo)
                t_max = hi if t_max is None else max(t_max, hi)
        members[name] = per_kind
    result = AnalyticsResult(config=config)
    if t_min is None or t_max is None:
        return result
    win = config.window_minutes * 60_000_000
    horizon = int(config.horizon_hours * _US_PER_HOUR)
    t0 = int(start.timestamp() * 1e6) if start else (t_min // win) * win
    t1 = int(end.timestamp() * 1e6) if end else t_max + 1
    ends = list(range(t0 + win, t1 + win, win))
    maskers = [MaskingMember(i) for i in range(len(names))]
    pubs = {m.index: m.public_key() for m in maskers}
    channels = {m.index: m.channel_key() for m in maskers}
    for m in maskers:
        m.agree(pubs, channels)
    coordinator = SecureSumCoordinator()
    sigma = dp_sigma(config)
    # the members' DP noise: from OS entropy unless the run is an experiment that must repeat (AnalyticsConfig)
    rng = np.random.default_rng(config.seed if config.reproducible_noise else None)
    rows = np.arange(config.depth)
    for w, t_end in enumerate(ends):
        started = time.perf_counter()
        lo_t = t_end - horizon
        vectors = []
        windows: dict[str, dict[str, slice]] = {}
        for name in names:
            vec = np.zeros(total_cells, dtype=np.int64)
            windows[name] = {}
            for seg in segs:
                it = members[name][seg.kind]
                sl = windows[name].get(seg.kind)
                if sl is None:
                    sl = slice(int(np.searchsorted(it.times, lo_t)), int(np.searchsorted(it.times, t_end)))
                    windows[name][seg.kind] = sl
                cells, failed = it.cells[sl], it.failed[sl]
                if seg.part == "presence" or seg.part == "fail":
                    cells = cells[failed]
                else:
                    cells = cells[~failed]
                flat = (rows * seg.width + cells).reshape(-1) + seg.offset
                if seg.part == "presence":
                    vec[flat] = 1
                    if sigma:
                        n = seg.width * config.depth
                        vec[seg.offset:seg.offset + n] += np.rint(
                            rng.normal(0.0, sigma / math.sqrt(len(names)), n)).astype(np.int64)
                else:
                    n = seg.width * config.depth
                    vec[seg.offset:seg.offset + n] += np.bincount(flat - seg.offset, minlength=n)
            vectors.append(vec)
        # The full protocol with dropout recovery (self-masks, Shamir-shared seeds), even though every simulated
        # member stays: the cost measured here is the deployment's.
        total = secure_sum(vectors, round_id=w, coordinator=coordinator, members=maskers)
        new = _resolve(total, segs, config, members, windows, values, result, t_end)
        result.rounds.append(WindowRound(end=_us_to_dt(t_end), members=len(names), vector_cells=total_cells,
                                         new_findings=new, seconds=time.perf_counter() - started))
        if progress:
            progress(w + 1, len(ends))
    result.last_total = total if ends else None
    logger.info("cross-bank analytics: %d windows, %d findings", len(ends), len(result.findings))
    return result


def _resolve(total: np.ndarray, segs: list[_Segment], config: AnalyticsConfig,
             members: dict[str, dict[str, _KindItems]], windows: dict[str, dict[str, slice]],
             values: dict[str, list[str]], result: AnalyticsResult, t_end: int) -> int:
    by_kind: dict[str, dict[str, _Segment]] = {}
    for seg in segs:
        by_kind.setdefault(seg.kind, {})[seg.part] = seg
    rows = np.arange(config.depth)
    new = 0
    for name, per_kind in members.items():
        for kind, parts in by_kind.items():
            it = per_kind[kind]
            sl = windows[name][kind]
            sel = np.flatnonzero(it.failed[sl]) + sl.start
            if not sel.size:
                continue
            ids, first = np.unique(it.ids[sel], return_index=True)
            _, last_rev = np.unique(it.ids[sel][::-1], return_index=True)
            last = sel.size - 1 - last_rev
            cells = it.cells[sel[first]]

            def est(part: str, cells: np.ndarray = cells, parts: dict[str, _Segment] = parts) -> np.ndarray:
                seg = parts[part]
                return total[seg.offset + rows * seg.width + cells].min(axis=1)

            banks = est("presence")
            k = config.net24_min_banks if kind == "net24" else config.min_banks
            hit = banks >= k
            fails = np.zeros_like(banks)
            if kind in _RATIO_KINDS:
                fails, oks = est("fail"), est("ok")
                ratio = fails / np.maximum(fails + oks, 1)
                hit &= (fails >= config.min_failures) & (ratio >= config.min_failure_ratio)
            for j in np.flatnonzero(hit):
                value = values[kind][int(ids[j])]
                fs, ls = _us_to_dt(int(it.times[sel[first[j]]])), _us_to_dt(int(it.times[sel[last[j]]]))
                f = result.findings.get((kind, value))
                if f is None:
                    result.findings[(kind, value)] = Finding(kind, value, int(banks[j]), fs, ls, _us_to_dt(t_end),
                                                             int(fails[j]))
                    new += 1
                else:
                    f.banks = max(f.banks, int(banks[j]))
                    f.first_seen, f.last_seen = min(f.first_seen, fs), max(f.last_seen, ls)
                    f.failures = max(f.failures, int(fails[j]))
    return new
