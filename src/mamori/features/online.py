"""Incremental features: one event's feature row from per-entity window aggregates, updated in O(1) per event.

:func:`~mamori.features.extract_features` computes every column over a whole frame. A live service scoring one
event at a time cannot pay that (tens of milliseconds of fixed cost per call), so :class:`OnlineFeatures`
keeps, per entity (source IP, AS, presented username, user, session, device, TLS fingerprint) and for the
population, exactly the aggregates the batch definitions read: running window sums in a deque, distinct
values with their last time (an insertion-ordered map, so expiry pops from the front), lifetime counts and
sets, the last few inter-arrival gaps, the time of the last "contact change", and so on. Each event updates
the aggregates of its entities and reads its row from them; amortised cost is O(1) per event and entity.

The definitions mirror :mod:`mamori.features.behaviour` and :mod:`mamori.features.lexical` column by column
(same window bounds ``(t - w, t]``, same tie-breaking of equal timestamps, same float operations where the
result is not an integer), so a stream fed in time order gets the rows a whole-history ``extract_features``
run gives; ``tests/features/test_online.py`` checks every column. The differences are where history is cut:
an entity idle for longer than ``horizon_seconds``, or pushed out by the ``max_entities`` budget, is forgotten
(its "ever" counts restart), and a single entity's window deque holds at most ``max_window_events`` entries
(beyond that its windowed counts saturate instead of growing memory). An event older than the newest one seen
is scored as if it arrived just after it (its own timestamp still sets the hour-of-day features).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from mamori.events import AUTH_ACTIONS
from mamori.features.behaviour import _SCRIPTED_UA
from mamori.features.config import FeatureConfig
from mamori.features.lexical import LEXICAL_FEATURES, lexical_row
from mamori.features.ngrams import hash_ngrams
from mamori.features.spec import FeatureSpec

__all__ = ["OnlineFeatures"]

logger = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
# Rust's regex "$" is end of text; Python's also matches before a final newline: "\Z" is the Rust meaning.
_PY_SCRIPTED = re.compile(_SCRIPTED_UA.replace("$", r"\Z"))
_LEXICAL_GROUPS = frozenset({"lexical", "ngram_path", "ngram_payload"})


class _WSum:
    """Sums of per-event integer values over the causal window ``(t - w, t]`` of one entity."""

    __slots__ = ("w", "cap", "q", "s")

    def __init__(self, w: int, k: int, cap: int) -> None:
        self.w = w
        self.cap = cap
        self.q: deque[tuple[int, tuple[int, ...]]] = deque()
        self.s = [0] * k

    def add(self, t: int, vals: tuple[int, ...]) -> list[int]:
        q, s = self.q, self.s
        cutoff = t - self.w
        while q and (q[0][0] <= cutoff or len(q) >= self.cap):
            for i, v in enumerate(q.popleft()[1]):
                s[i] -= v
        q.append((t, vals))
        for i, v in enumerate(vals):
            s[i] += v
        return s


class _WDistinct:
    """Distinct values seen with one entity in the causal window: value -> last time, oldest first."""

    __slots__ = ("w", "cap", "od")

    def __init__(self, w: int, cap: int) -> None:
        self.w = w
        self.cap = cap
        self.od: OrderedDict[Any, int] = OrderedDict()

    def add(self, t: int, value: Any) -> int:
        od = self.od
        if value is not None:
            od[value] = t
            od.move_to_end(value)
        cutoff = t - self.w
        while od:
            first = next(iter(od))
            if od[first] > cutoff and len(od) <= self.cap:
                break
            del od[first]
        return len(od)


def _gap_cv(gaps: deque[float], k: int) -> float:
    """``_Groups.gap_cv`` for one row: same summation order (newest gap first), NaN gaps skipped."""
    m = 0
    s1 = 0.0
    for g in reversed(gaps):
        if g == g:  # not NaN
            m += 1
            s1 += g
    if m < 3:
        return 1.0
    mean = s1 / m
    s2 = 0.0
    for g in reversed(gaps):
        if g == g:
            s2 += (g - mean) ** 2
    return math.sqrt(s2 / m) / (mean + 1e-3)


class _Ip:
    __slots__ = ("last", "n", "gaps", "short", "long", "d_uname_long", "d_uname_day", "d_uid_day", "d_ua_long",
                 "d_path_short")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.n = 0
        self.gaps: deque[float] = deque(maxlen=o.k)
        self.short = _WSum(o.short, 2, o.cap)
        self.long = _WSum(o.long, 3, o.cap)
        self.d_uname_long = _WDistinct(o.long, o.cap)
        self.d_uname_day = _WDistinct(o.day, o.cap)
        self.d_uid_day = _WDistinct(o.day, o.cap)
        self.d_ua_long = _WDistinct(o.long, o.cap)
        self.d_path_short = _WDistinct(o.short, o.cap)


class _Asn:
    __slots__ = ("last", "long", "d_uname_long", "d_ip_long")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.long = _WSum(o.long, 3, o.cap)
        self.d_uname_long = _WDistinct(o.long, o.cap)
        self.d_ip_long = _WDistinct(o.long, o.cap)


class _Uname:
    __slots__ = ("last", "long", "day", "d_ip_day", "ok")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.long = _WSum(o.long, 1, o.cap)
        self.day = _WSum(o.day, 1, o.cap)
        self.d_ip_day = _WDistinct(o.day, o.cap)
        self.ok = 0


class _User:
    __slots__ = ("last", "n", "devices", "asns", "payees", "d_ip_day", "t_contact", "t_reset", "t_payee", "t_newdev",
                 "n_money", "s_la", "s_la2", "max_la", "n_hosting")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.n = 0
        self.devices: set[Any] = set()
        self.asns: set[Any] = set()
        self.payees: set[Any] = set()
        self.d_ip_day = _WDistinct(o.day, o.cap)
        self.t_contact = self.t_reset = self.t_payee = self.t_newdev = -1
        self.n_money = 0
        self.s_la = 0.0
        self.s_la2 = 0.0
        self.max_la = 0.0
        self.n_hosting = 0


class _Session:
    __slots__ = ("last", "first", "n", "short", "ips", "asns", "uas", "d_path_short", "gaps", "t_otp", "hosting_login")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.first = -1
        self.n = 0
        self.short = _WSum(o.short, 2, o.cap)
        self.ips: set[Any] = set()
        self.asns: set[Any] = set()
        self.uas: set[Any] = set()
        self.d_path_short = _WDistinct(o.short, o.cap)
        self.gaps: deque[float] = deque(maxlen=o.k)
        self.t_otp = -1
        self.hosting_login = 0


class _Device:
    __slots__ = ("last", "long", "uids", "d_uname_day")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.long = _WSum(o.long, 2, o.cap)
        self.uids: set[Any] = set()
        self.d_uname_day = _WDistinct(o.day, o.cap)


class _Ja3:
    __slots__ = ("last", "long", "d_ua_long")

    def __init__(self, o: OnlineFeatures) -> None:
        self.last = -1
        self.long = _WSum(o.long, 2, o.cap)
        self.d_ua_long = _WDistinct(o.long, o.cap)


_KINDS: dict[str, tuple[str, type[Any]]] = {
    "ip": ("source.ip", _Ip),
    "asn": ("source.as.number", _Asn),
    "uname": ("user.name", _Uname),
    "uid": ("user.id", _User),
    "sess": ("session.id", _Session),
    "dev": ("device.id", _Device),
    "ja3": ("tls.client.ja3", _Ja3),
}


class OnlineFeatures:
    """Feature rows of a stream of events, one event at a time, from bounded per-entity aggregates.

    Parameters
    ----------
    spec : FeatureSpec
        The columns to produce (a model's spec); its ``config_json`` is the :class:`FeatureConfig`. Every
        column must be one :func:`~mamori.features.extract_features` makes with that config.
    horizon_seconds : float, default=86400.0
        Entities not seen for longer than this (event time) are forgotten.
    max_entities : int, default=1000000
        At most this many entities of each kind (IP, AS, username, user, session, device, TLS fingerprint) are
        held; the least recently seen go first.
    max_window_events : int, default=100000
        At most this many entries in one entity's window (a flood from one source saturates instead of
        growing memory).
    lexical_cache : int, default=65536
        Distinct (path, query, body) triples whose lexical and n-gram features are cached.

    Raises
    ------
    SchemaError
        If ``spec`` names a column this class does not compute for its config.

    Notes
    -----
    Not thread-safe: the caller serialises calls (as :class:`mamori.detect.Scorer` does).
    """

    def __init__(self, spec: FeatureSpec, horizon_seconds: float = 86_400.0, max_entities: int = 1_000_000,
                 max_window_events: int = 100_000, lexical_cache: int = 65_536) -> None:
        from mamori.errors import SchemaError

        self.spec = spec
        self.config = FeatureConfig.model_validate_json(spec.config_json) if spec.config_json else FeatureConfig()
        c = self.config
        self.horizon_ns = int(horizon_seconds * 1e9)
        self.max_entities = max_entities
        self.cap = max(int(max_window_events), 1)
        self.lexical_cache = lexical_cache
        self.short, self.long, self.day = (int(c.window_seconds(w) * 1e9) for w in (c.short_window, c.long_window,
                                                                                     c.day_window))
        self.k = c.regularity_events
        self.never = c.never_seconds
        self.tz = ZoneInfo(c.timezone)
        self.hosting_asns = frozenset(c.hosting_asns)
        kw = "|".join(k.replace(".", r"\.") for k in c.hosting_keywords) or "$^"
        self.hosting_re = re.compile(kw)
        names, groups, log1p = self._names()
        if tuple(names) != spec.names:
            missing = [n for n in spec.names if n not in set(names)][:5]
            raise SchemaError(
                f"OnlineFeatures: the spec's {spec.n_features} columns are not the {len(names)} this feature config "
                f"makes (first differences: {missing}); the model was built with another mamori version."
            )
        self._log_mask = np.asarray(log1p[: self._n_behaviour], dtype=bool)
        self._lex: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self.reset()

    def _names(self) -> tuple[list[str], list[str], list[bool]]:
        """Column names, groups and log flags this config produces, in extract_features' order."""
        from mamori.features.extract import extract_features

        probe = pl.DataFrame({"@timestamp": [dt.datetime(2025, 1, 1, tzinfo=dt.UTC)]})
        spec = extract_features(probe, self.config).spec
        self._n_behaviour = sum(1 for g in spec.groups if g not in _LEXICAL_GROUPS)
        return list(spec.names), list(spec.groups), list(spec.log1p)

    def reset(self) -> None:
        """Forget every entity (an empty history)."""
        self._maps: dict[str, OrderedDict[Any, Any]] = {k: OrderedDict() for k in _KINDS}
        self._pop: deque[tuple[int, int, int, int]] = deque()
        self._pop_s = [0, 0, 0]
        self._last_t = -(2**62)
        self._last_ts: int | None = None
        self._tie = 0
        self.events = 0
        self.evicted = 0

    # ---- bookkeeping --------------------------------------------------------------------------------------
    def _entity(self, kind: str, key: Any) -> tuple[Any, bool]:
        m = self._maps[kind]
        ent = m.get(key)
        if ent is None:
            ent = _KINDS[kind][1](self)
            m[key] = ent
            if len(m) > self.max_entities:
                m.popitem(last=False)
                self.evicted += 1
            return ent, True
        m.move_to_end(key)
        return ent, False

    def _evict_idle(self, t: int) -> None:
        cutoff = t - self.horizon_ns
        for m in self._maps.values():
            while m:
                first = next(iter(m))
                if m[first].last > cutoff:
                    break
                del m[first]
                self.evicted += 1

    def entity_counts(self) -> dict[str, int]:
        """Entities held per kind.

        Returns
        -------
        dict
            ``{"ip": n, "asn": n, "uname": n, "uid": n, "sess": n, "dev": n, "ja3": n}``.
        """
        return {k: len(m) for k, m in self._maps.items()}

    # ---- one event ----------------------------------------------------------------------------------------
    def _clock(self, ts: dt.datetime) -> int:
        """The ``__t`` of extract_features: microsecond time in ns plus the rank among equal timestamps."""
        us = (ts - _EPOCH) // _US
        if us == self._last_ts:
            self._tie += 1
        else:
            self._tie = 0
            self._last_ts = us
        t = us * 1000 + self._tie
        if t <= self._last_t:  # late event: scored as arriving right after the newest one
            t = self._last_t + 1
        self._last_t = t
        return t

    def _behaviour(self, e: Mapping[str, Any]) -> list[float]:
        """Update the aggregates with one canonical event and return its request and behaviour values."""
        ts = e["@timestamp"]
        t = self._clock(ts)
        never = self.never
        status = e.get("http.response.status_code")
        method = (e.get("http.request.method") or "").upper()
        action = e.get("event.action")
        outcome = e.get("event.outcome")
        ua = e.get("user_agent.original")
        amount = e.get("banking.amount")
        asn = e.get("source.as.number")
        org = e.get("source.as.organization.name")
        ip = e.get("source.ip")
        uname = e.get("user.name")
        uid = e.get("user.id")
        sess = e.get("session.id")
        dev = e.get("device.id")
        ja3 = e.get("tls.client.ja3")
        path = e.get("url.path")
        payee = e.get("banking.payee.id")
        if asn is not None:
            asn = str(asn)

        fail = int(outcome == "failure" or (status is not None and status >= 400))
        login = int(action == "login")
        login_fail = login & fail
        login_ok = login & (1 - fail)
        e4xx = int(status is not None and 400 <= status < 500)
        signup = int(action == "signup")
        hosting = int((asn is not None and int(asn) in self.hosting_asns)
                      or bool(self.hosting_re.search((org or "").lower())))

        # ---- request context (behaviour.py's ctx list, same order) -------------------------------------------
        v: list[float] = [
            float(method == "GET"), float(method == "POST"), float(method in ("PUT", "PATCH")),
            float(method == "DELETE"),
            float(method not in ("GET", "POST", "PUT", "PATCH", "DELETE")),
        ]
        if status is None:
            v += [0.0] * 8
        else:
            v += [float(lo <= status < lo + 100) for lo in (200, 300, 400, 500)]
            v += [float(status == code) for code in (401, 403, 404, 429)]
        v += [float(outcome == "failure"), float(outcome == "success")]
        v += [float(action == a) for a in AUTH_ACTIONS]
        v.append(float(action is None))
        for col in ("http.request.bytes", "http.response.body.bytes"):
            x = e.get(col)
            v.append(0.0 if x is None else float(x))
        d = e.get("event.duration")
        v.append(0.0 if d is None else d / 1e6)
        local = ts.astimezone(self.tz)
        hour = float(local.hour) + float(local.minute) / 60.0
        v += [math.sin(hour * (2 * np.pi / 24)), math.cos(hour * (2 * np.pi / 24)), float(hour < 6.0),
              float(local.isoweekday() >= 6)]
        v += [float(uid is not None), float(sess is not None), float(dev is not None)]
        v.append(float(ua is None or ua == "" or ua == "-"))
        v.append(0.0 if ua is None else float(len(ua.encode())))
        v.append(float(bool(_PY_SCRIPTED.search((ua or "").lower()))))
        v.append(float(hosting))
        v.append(0.0 if amount is None else max(amount, 0.0))

        # ---- per source IP -----------------------------------------------------------------------------------
        if ip is not None:
            g, _ = self._entity("ip", ip)
            gap = (t - g.last) / 1e9 if g.last >= 0 else math.nan
            g.gaps.append(gap)
            short = g.short.add(t, (1, e4xx))
            long = g.long.add(t, (1, fail, login_fail))
            v += [short[0], long[0], long[1] / long[0], long[2], short[1],
                  g.d_uname_long.add(t, uname), g.d_uname_day.add(t, uname), g.d_uid_day.add(t, uid),
                  g.d_ua_long.add(t, ua), g.d_path_short.add(t, path),
                  never if gap != gap else gap, _gap_cv(g.gaps, self.k), g.n]
            g.n += 1
            g.last = t
        else:
            v += [0.0] * 13

        # ---- per autonomous system ---------------------------------------------------------------------------
        if asn is not None:
            g, _ = self._entity("asn", asn)
            long = g.long.add(t, (1, fail, login_fail))
            v += [long[0], long[1] / long[0], long[2], g.d_uname_long.add(t, uname), g.d_ip_long.add(t, ip)]
            g.last = t
        else:
            v += [0.0] * 5

        # ---- per presented username --------------------------------------------------------------------------
        uname_first = 0
        if uname is not None:
            g, uname_first = self._entity("uname", uname)
            v += [g.long.add(t, (login_fail,))[0], g.day.add(t, (login,))[0], g.d_ip_day.add(t, ip),
                  float(uname_first), float(g.ok == 0)]
            g.ok += login_ok
            g.last = t
        else:
            v += [0.0] * 5

        # ---- per authenticated user --------------------------------------------------------------------------
        if uid is not None:
            g, _ = self._entity("uid", uid)
            new_device = int(dev is not None and dev not in g.devices)
            if new_device:
                g.devices.add(dev)
            new_asn = int(asn is not None and asn not in g.asns)
            if new_asn:
                g.asns.add(asn)
            new_payee = int(payee is not None and payee not in g.payees)
            if new_payee:
                g.payees.add(payee)
            if action == "contact_change":
                g.t_contact = t
            if action == "password_reset":
                g.t_reset = t
            if action == "payee_add":
                g.t_payee = t
            if new_device or action == "device_register":
                g.t_newdev = t

            def since(last: int) -> float:
                return never if last < 0 else min((t - last) / 1e9, never)

            v += [g.n, float(new_device), float(new_asn), g.d_ip_day.add(t, ip), len(g.devices),
                  since(g.t_contact), since(g.t_reset), since(g.t_payee), since(g.t_newdev), float(new_payee)]
            money = int(action in ("transfer", "trade") and amount is not None)
            la = math.log1p(max(amount, 0.0)) if money else 0.0
            n_prev = g.n_money
            # inclusive running sums minus the current value: the batch's segmented cum_sum, same rounding
            g.s_la += la
            g.s_la2 += la * la
            s_prev, s2_prev = g.s_la - la, g.s_la2 - la * la
            if money and n_prev > 0:
                mean_prev = s_prev / n_prev
                var_prev = max(s2_prev / n_prev - mean_prev**2, 0.0)
                z = min(max((la - mean_prev) / math.sqrt(var_prev + 0.25), -10.0), 10.0)
                over = min(max(la - g.max_la, -10.0), 10.0)
            else:
                z = over = 0.0
            v += [z, over, float(n_prev), g.n_hosting / g.n if g.n > 0 else 0.0]
            g.max_la = max(g.max_la, la) if g.n > 0 else la
            g.n_money += money
            g.n_hosting += hosting
            g.n += 1
            g.last = t
        else:
            v += [0.0] * 14

        # ---- per session -------------------------------------------------------------------------------------
        if sess is not None:
            g, new = self._entity("sess", sess)
            if new:
                g.first = t
            gap = (t - g.last) / 1e9 if g.last >= 0 else math.nan
            g.gaps.append(gap)
            g.n += 1
            short = g.short.add(t, (1, e4xx))
            if ip is not None:
                g.ips.add(ip)
            if asn is not None:
                g.asns.add(asn)
            if ua is not None:
                g.uas.add(ua)
            if action == "otp_issue":
                g.t_otp = t
            if login:
                g.hosting_login = hosting
            otp = ((t - g.t_otp) / 1e9 if g.t_otp >= 0 else 0.0) if action == "otp_verify" else 0.0
            v += [(t - g.first) / 1e9, g.n, short[0], short[1], len(g.ips), len(g.asns), len(g.uas),
                  g.d_path_short.add(t, path), _gap_cv(g.gaps, self.k), never if gap != gap else gap, otp,
                  float(g.hosting_login)]
            g.last = t
        else:
            v += [0.0] * 12

        # ---- per device --------------------------------------------------------------------------------------
        if dev is not None:
            g, _ = self._entity("dev", dev)
            if uid is not None:
                g.uids.add(uid)
            long = g.long.add(t, (1, signup))
            v += [long[0], long[1], len(g.uids), g.d_uname_day.add(t, uname)]
            g.last = t
        else:
            v += [0.0] * 4

        # ---- per TLS fingerprint -----------------------------------------------------------------------------
        v.append(float(ja3 is None))
        if ja3 is not None:
            g, _ = self._entity("ja3", ja3)
            long = g.long.add(t, (1, fail))
            v += [long[0], long[1] / long[0], g.d_ua_long.add(t, ua)]
            g.last = t
        else:
            v += [0.0] * 3

        # ---- the whole member: only logins enter the population sums, so only they are queued -----------------
        pop, s = self._pop, self._pop_s
        cutoff = t - self.long
        while pop and pop[0][0] <= cutoff:
            _, a, b, c = pop.popleft()
            s[0] -= a
            s[1] -= b
            s[2] -= c
        if login:
            new_uname_login = int(uname_first)
            pop.append((t, 1, login_fail, new_uname_login))
            s[0] += 1
            s[1] += login_fail
            s[2] += new_uname_login
        logins = s[0]
        v += [logins, s[1] / logins if logins else 0.0, s[2] / logins if logins else 0.0]
        return v

    # ---- a batch of events --------------------------------------------------------------------------------
    def _lexical(self, rows: list[Mapping[str, Any]]) -> np.ndarray:
        """Lexical + n-gram block (already log1p, float32), one cached computation per distinct triple."""
        c = self.config
        width = len(LEXICAL_FEATURES) + c.path_hash_buckets + c.payload_hash_buckets
        out = np.empty((len(rows), width), dtype=np.float32)
        misses: dict[tuple[str, str, str], list[int]] = {}
        for i, r in enumerate(rows):
            key = (r.get("url.path") or "", r.get("url.query") or "", r.get("http.request.body.content") or "")
            hit = self._lex.get(key)
            if hit is None:
                misses.setdefault(key, []).append(i)
            else:
                self._lex.move_to_end(key)
                out[i] = hit
        if misses:
            keys = list(misses)
            counts, paths, payloads = [], [], []
            for key in keys:
                cnt, norm_path, payload = lexical_row(*key)
                counts.append(cnt)
                paths.append(norm_path)
                payloads.append(payload)
            blocks = [np.log1p(np.asarray(counts, dtype=np.float32), dtype=np.float32)]
            if c.path_hash_buckets > 0:
                blocks.append(np.log1p(hash_ngrams(paths, c.path_hash_buckets, c.ngram_sizes, c.hash_seed)))
            if c.payload_hash_buckets > 0:
                blocks.append(np.log1p(hash_ngrams(payloads, c.payload_hash_buckets, c.ngram_sizes, c.hash_seed)))
            fresh = np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
            for j, key in enumerate(keys):
                out[misses[key]] = fresh[j]
                if self.lexical_cache > 0:
                    self._lex[key] = fresh[j]
            while len(self._lex) > self.lexical_cache:
                self._lex.popitem(last=False)
        return out

    def transform(self, rows: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Feature rows of events in arrival order, updating the aggregates (state) as it goes.

        Parameters
        ----------
        rows : iterable of mapping
            Canonical events as ``column -> value`` (missing columns count as null); ``@timestamp`` is a
            timezone-aware :class:`datetime.datetime`. ``labels.*`` are never read.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, spec.n_features)``, float32, in the spec's column order.

        Raises
        ------
        SchemaError
            If an event has no ``@timestamp``.
        """
        from mamori.errors import SchemaError

        rows = list(rows)
        c = self.config
        n = len(rows)
        values = []
        for i, r in enumerate(rows):
            if r.get("@timestamp") is None:
                raise SchemaError(f"OnlineFeatures.transform: event {i} has no '@timestamp'; every event needs one.")
            values.append(self._behaviour(r))
            self.events += 1
        if n:
            self._evict_idle(self._last_t)
        B = np.asarray(values, dtype=np.float64).reshape(n, -1)
        if not c.include_behaviour:
            B = B[:, : self._n_request]
        B[:, self._log_mask] = np.log1p(np.maximum(B[:, self._log_mask], 0.0))
        Bf = B.astype(np.float32)
        Bf[~np.isfinite(Bf)] = 0.0
        if not c.include_lexical:
            return Bf
        return np.concatenate([Bf, self._lexical(rows)], axis=1)

    @property
    def _n_request(self) -> int:
        return sum(1 for g in self.spec.groups if g == "request")
