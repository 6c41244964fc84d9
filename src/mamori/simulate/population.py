"""Normal traffic of one bank: its customers, their sessions, and the requests those sessions make.

Everything is vectorised over sessions and rows: a session is a vector of per-step counts, expanded into rows
with ``np.repeat`` and ordered with one stable sort; think times are lognormal and summed per session.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from mamori.simulate import _tables as T
from mamori.simulate._rows import US_PER_S, Rows, hex_ids, lognormal, prefixed
from mamori.simulate.config import BankProfile, SimulationConfig

__all__ = ["BankContext", "Customers", "benign_traffic", "hourly_weights", "make_context"]

logger = logging.getLogger(__name__)

JST = dt.timezone(dt.timedelta(hours=9))
HOUR_US = 3600 * US_PER_S
DAY_US = 24 * HOUR_US
#: Mean sessions per customer per day (before the heavy-tailed per-customer multiplier).
SESSIONS_PER_DAY = 0.22
#: Log-sigma of per-customer activity (lognormal): the top 10% make about 60% of all requests.
ACTIVITY_SIGMA = 1.7

# Relative session-start intensity by JST hour: quiet 03-06, peaks at 09 and 18-19.
_WEEKDAY = np.array([0.32, 0.18, 0.10, 0.06, 0.05, 0.07, 0.20, 0.48, 0.82, 1.00, 0.92, 0.86,
                     0.95, 0.82, 0.76, 0.75, 0.77, 0.86, 1.00, 1.00, 0.92, 0.84, 0.68, 0.48])  # fmt: skip
_WEEKEND = np.array([0.40, 0.24, 0.13, 0.07, 0.05, 0.06, 0.12, 0.26, 0.46, 0.66, 0.80, 0.84,
                     0.86, 0.84, 0.80, 0.78, 0.78, 0.80, 0.84, 0.86, 0.84, 0.78, 0.64, 0.50])  # fmt: skip


def payday(year: int, month: int) -> dt.date:
    """The 25th, or the Friday before it when it falls on a weekend (Japanese payroll practice)."""
    day = dt.date(year, month, 25)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def day_multiplier(day: dt.date) -> float:
    """Relative traffic of one day: weekly cycle, payday and month-end peaks."""
    mult = 0.85 if day.weekday() >= 5 else 1.0
    if day == payday(day.year, day.month):
        mult *= 1.6
    elif day - dt.timedelta(days=1) == payday(day.year, day.month):
        mult *= 1.2
    next_day = day + dt.timedelta(days=1)
    if next_day.month != day.month:
        mult *= 1.35  # month end
    elif (day + dt.timedelta(days=2)).month != day.month:
        mult *= 1.15
    if day.day == 1:
        mult *= 1.1
    return mult


def hourly_weights(start: dt.date, days: int) -> np.ndarray:
    """Relative session-start intensity for each hour of the period (JST), shape ``(days * 24,)``.

    Parameters
    ----------
    start : datetime.date
        First day (JST).
    days : int
        Number of days.

    Returns
    -------
    numpy.ndarray
        Non-negative weights, one per hour.
    """
    out = []
    for d in range(days):
        day = start + dt.timedelta(days=d)
        shape = _WEEKEND if day.weekday() >= 5 else _WEEKDAY
        out.append(shape * day_multiplier(day))
    return np.concatenate(out)


def start_us(start: dt.date) -> int:
    """Microseconds since the epoch of ``start`` 00:00 JST."""
    return int(dt.datetime(start.year, start.month, start.day, tzinfo=JST).timestamp()) * US_PER_S


@dataclass
class Customers:
    """One bank's customers as parallel arrays (index = customer number)."""

    n: int
    person: np.ndarray  # global person id (the same person may bank at several banks)
    user_name: pl.Series  # login name (e-mail)
    user_id: pl.Series  # bank customer number
    account: np.ndarray  # account number (dense, so neighbours exist: what BOLA enumerates)
    rate: np.ndarray  # sessions per day
    ua1: np.ndarray  # primary client (index into the bank's UA table)
    ua2: np.ndarray  # secondary client
    has2: np.ndarray  # bool
    device1: pl.Series
    device2: pl.Series
    home_asn: np.ndarray
    home_ip: np.ndarray
    mobile_asn: np.ndarray
    brokerage: np.ndarray  # bool: has a securities account
    holding: np.ndarray  # index into LARGE_CAPS of the main holding
    typo: np.ndarray  # probability of a mistyped password per login
    traveller: np.ndarray  # bool: abroad for part of the period
    history_median: np.ndarray  # median transfer amount, JPY


@dataclass
class BankContext:
    """Everything generators need to write requests at one bank."""

    config: SimulationConfig
    profile: BankProfile
    customers: Customers
    ua: T.UaTable
    heads: list[str]
    tails: list[str]
    t0: int  # first microsecond of the period (UTC epoch)
    t1: int  # one past the last
    weights: np.ndarray  # hourly weights of normal traffic
    cgnat: dict[int, np.ndarray]  # mobile ASN index -> shared CGNAT addresses
    universe: int  # size of the consortium's person universe

    @property
    def bank_id(self) -> str:
        """The bank id (``bank-01`` ...)."""
        return self.profile.bank_id

    def rng(self, *stream: int) -> np.random.Generator:
        """A generator for one named stream of this bank (independent of every other stream)."""
        return np.random.default_rng([self.config.seed, 1 + self.profile.index, *stream])


def person_universe(profiles: list[BankProfile]) -> int:
    """Size of the consortium-wide population people are drawn from (customers overlap between banks)."""
    return int(max(sum(p.customers for p in profiles) * 0.8, max(p.customers for p in profiles) * 1.25))


def make_context(config: SimulationConfig, profile: BankProfile, universe: int) -> BankContext:
    """Build one bank's customers and lookup tables.

    Parameters
    ----------
    config : SimulationConfig
        The consortium configuration.
    profile : BankProfile
        The bank.
    universe : int
        Size of the consortium's person universe (see :func:`person_universe`).

    Returns
    -------
    BankContext
    """
    rng = np.random.default_rng([config.seed, 1 + profile.index, 0])
    n = profile.customers
    ua = T.bank_ua_table(profile.app_name, profile.app_version)
    person = np.sort(rng.choice(universe, size=n, replace=False)).astype(np.int64)
    rng.shuffle(person)
    # lognormal, capped so the busiest customer (a small business, a day trader) has ~10 sessions a day
    activity = np.minimum(np.exp(ACTIVITY_SIGMA * rng.standard_normal(n) - ACTIVITY_SIGMA**2 / 2), 45.0)
    rate = SESSIONS_PER_DAY * activity
    # clients: app (iOS / Android) or browser (desktop / mobile web)
    app = rng.random(n) < profile.app_share
    ios = rng.random(n) < 0.6
    app_dev = np.where(
        ios,
        rng.choice(4, size=n, p=T.APP_IOS_WEIGHTS),
        4 + rng.choice(4, size=n, p=T.APP_ANDROID_WEIGHTS),
    )
    desktop = rng.random(n) < 0.7
    br = np.where(
        desktop,
        rng.choice(6, size=n, p=T.BROWSER_DESKTOP_WEIGHTS / T.BROWSER_DESKTOP_WEIGHTS.sum()),
        6 + rng.choice(5, size=n, p=T.BROWSER_MOBILE_WEIGHTS / T.BROWSER_MOBILE_WEIGHTS.sum()),
    )
    ua_app = ua.app0 + app_dev
    ua_br = ua.browser0 + br
    ua1 = np.where(app, ua_app, ua_br)
    ua2 = np.where(app, ua_br, ua_app)
    has2 = rng.random(n) < 0.3
    isp_w = T.ISP_WEIGHTS / T.ISP_WEIGHTS.sum()
    home_asn = T.ISP_IDX[rng.choice(T.ISP_IDX.size, size=n, p=isp_w)]
    home_ip = T.random_ips(rng, home_asn)
    mob_w = T.MOBILE_WEIGHTS / T.MOBILE_WEIGHTS.sum()
    mobile_asn = T.MOBILE_IDX[rng.choice(T.MOBILE_IDX.size, size=n, p=mob_w)]
    cgnat = {
        int(a): T.random_ips(rng, np.full(max(16, n // 60), a)) for a in T.MOBILE_IDX
    }  # CGNAT: ~60 customers per address
    brokerage = (rng.random(n) < 0.3) if profile.brokerage else np.zeros(n, dtype=bool)
    holding = rng.integers(0, len(T.LARGE_CAPS), size=n)
    typo = np.clip(lognormal(rng, 0.03, 0.8, n), 0.0, 0.5)
    traveller = rng.random(n) < 0.03
    history_median = lognormal(rng, 25_000.0, 0.8, n)
    customers = Customers(
        n=n,
        person=person,
        user_name=T.usernames(person),
        user_id=prefixed(f"C{profile.index + 1:02d}", np.arange(n), 8),
        account=(1_000_000 + 37 * profile.index * 100_000 + np.arange(n)).astype(np.int64),
        rate=rate,
        ua1=ua1,
        ua2=ua2,
        has2=has2,
        device1=hex_ids(rng, n, 8),
        device2=hex_ids(rng, n, 8),
        home_asn=home_asn,
        home_ip=home_ip,
        mobile_asn=mobile_asn,
        brokerage=brokerage,
        holding=holding,
        typo=typo,
        traveller=traveller,
        history_median=history_median,
    )
    heads, tails = T.bank_routes(profile.index)
    t0 = start_us(config.start)
    return BankContext(
        config=config,
        profile=profile,
        customers=customers,
        ua=ua,
        heads=heads,
        tails=tails,
        t0=t0,
        t1=t0 + config.days * DAY_US,
        weights=hourly_weights(config.start, config.days),
        cgnat=cgnat,
        universe=universe,
    )


def sample_times(rng: np.random.Generator, ctx: BankContext, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Draw ``n`` timestamps (µs) following the hourly ``weights`` (normal traffic by default)."""
    w = ctx.weights if weights is None else weights
    hours = rng.choice(w.size, size=n, p=w / w.sum())
    return ctx.t0 + hours.astype(np.int64) * HOUR_US + (rng.random(n) * HOUR_US).astype(np.int64)


def jst_hour(ts: np.ndarray) -> np.ndarray:
    """Hour of day in JST of epoch-µs timestamps."""
    return ((ts // HOUR_US) + 9) % 24


def masked(values: pl.Series, index: np.ndarray, mask: np.ndarray) -> pl.Series:
    """``values[index]`` where ``mask``, null elsewhere."""
    idx = pl.Series(np.where(mask, index, 0).astype(np.int64))
    gathered = values.gather(idx)
    return pl.select(pl.when(pl.Series(mask)).then(gathered).otherwise(None)).to_series()


# ------------------------------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class _Slot:
    kind: int
    status: int
    gap_median_s: float
    gap_sigma: float
    authed: bool  # rows of this slot carry user.id / session.id


def expand_slots(slots: Sequence[object], counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand per-session slot counts into rows ordered by session then slot.

    Returns
    -------
    tuple of numpy.ndarray
        ``(session, slot, first)``: the session and slot of each row, and whether the row opens its session.
    """
    sess_parts = []
    slot_parts = []
    n_sess = counts[0].size
    ids = np.arange(n_sess, dtype=np.int64)
    for j, c in enumerate(counts):
        s = np.repeat(ids, c)
        sess_parts.append(s)
        slot_parts.append(np.full(s.size, j, dtype=np.int64))
    sess = np.concatenate(sess_parts)
    slot = np.concatenate(slot_parts)
    order = np.argsort(sess * len(slots) + slot, kind="stable")
    sess = sess[order]
    slot = slot[order]
    first = np.ones(sess.size, dtype=bool)
    first[1:] = sess[1:] != sess[:-1]
    return sess, slot, first


def session_times(
    rng: np.random.Generator, t_start: np.ndarray, sess: np.ndarray, first: np.ndarray, med: np.ndarray, sig: np.ndarray
) -> np.ndarray:
    """Timestamps of rows: each session's start plus the cumulative lognormal think times before each row."""
    gaps = (lognormal(rng, med, sig, sess.size) * US_PER_S).astype(np.int64)
    gaps[first] = 0
    cum = np.cumsum(gaps)
    base = cum[np.flatnonzero(first)]
    sess_rank = np.cumsum(first) - 1
    return t_start[sess] + cum - base[sess_rank]


_S = _Slot
_BENIGN_SLOTS = [
    _S(T.HOME, 200, 0.0, 0.1, False),
    _S(T.STATIC, 200, 0.08, 0.8, False),
    _S(T.LOGIN, 401, 9.0, 0.6, False),  # typo
    _S(T.PASSWORD_RESET, 200, 45.0, 0.6, False),
    _S(T.LOGIN, 200, 9.0, 0.6, True),
    _S(T.OTP_ISSUE, 200, 0.4, 0.3, True),
    _S(T.OTP_VERIFY, 401, 22.0, 0.5, True),  # wrong or expired code
    _S(T.OTP_ISSUE, 200, 30.0, 0.6, True),  # re-issue after expiry
    _S(T.OTP_VERIFY, 200, 22.0, 0.5, True),
    _S(T.DEVICE_REGISTER, 200, 6.0, 0.5, True),
    _S(T.SUMMARY, 200, 1.0, 0.5, True),
    _S(T.NOTIFICATIONS, 200, 5.0, 0.9, True),
    _S(T.ACCOUNT, 200, 7.0, 1.0, True),
    _S(T.HISTORY, 200, 9.0, 1.0, True),
    _S(T.PORTFOLIO, 200, 8.0, 0.9, True),
    _S(T.QUOTE, 200, 6.0, 0.9, True),
    _S(T.TRADE, 200, 35.0, 0.7, True),
    _S(T.PAYEES, 200, 8.0, 0.8, True),
    _S(T.PAYEE_ADD, 200, 50.0, 0.5, True),
    _S(T.TRANSFER, 200, 28.0, 0.6, True),
    _S(T.CONTACT_CHANGE, 200, 40.0, 0.6, True),
    _S(T.LOGOUT, 200, 25.0, 1.0, True),
]
_SLOT_INDEX = {name: i for i, name in enumerate(
    ["home", "static", "login_fail", "reset", "login", "otp_issue", "otp_fail", "otp_reissue", "otp_ok", "device",
     "summary", "notif", "account", "history", "portfolio", "quote", "trade", "payees", "payee_add", "transfer",
     "contact", "logout"])}  # fmt: skip


def benign_traffic(ctx: BankContext) -> list[Rows]:
    """Generate one bank's normal traffic: customer sessions, sign-ups and aggregator polls.

    Parameters
    ----------
    ctx : BankContext
        The bank.

    Returns
    -------
    list of Rows
        Batches labelled ``benign``.
    """
    out = [_customer_sessions(ctx), _signups(ctx), _monitors(ctx)]
    if ctx.config.aggregators:
        out.append(_aggregator_polls(ctx))
    return out


def _monitors(ctx: BankContext) -> Rows:
    """Synthetic uptime checks the bank runs from the cloud: scripted clients, and 401s by design.

    Three monitors (Python, Go and curl clients, each from two cloud addresses) load the home page every
    minute and call the account summary without a token every five minutes (expecting 401). Intervals
    stretch with ``1/scale`` below scale 1 so small runs keep the same proportions.
    """
    rng = ctx.rng(4)
    every = 60.0 / min(1.0, ctx.config.scale)
    tools = (T.TOOL_PYTHON, T.TOOL_GO, T.TOOL_CURL)
    span = ctx.t1 - ctx.t0
    parts_ts, parts_kind, parts_mon = [], [], []
    for m in range(len(tools)):
        for kind, period in ((T.HOME, every), (T.SUMMARY, 5 * every)):
            k = int(span / (period * US_PER_S))
            offset = rng.random() * period * US_PER_S
            ts = ctx.t0 + (offset + np.arange(k) * period * US_PER_S + rng.normal(0, 0.3, k) * US_PER_S)
            parts_ts.append(ts.astype(np.int64))
            parts_kind.append(np.full(k, kind))
            parts_mon.append(np.full(k, m))
    ts = np.concatenate(parts_ts)
    kind = np.concatenate(parts_kind)
    mon = np.concatenate(parts_mon)
    asn_m = T.HOSTING_IDX[np.array([0, 3, 1])]
    ips = T.random_ips(rng, np.repeat(asn_m, 2)).reshape(3, 2)
    ip = ips[mon, rng.integers(0, 2, ts.size)]
    rows = Rows(
        ts=ts,
        kind=kind,
        ip=ip,
        asn=asn_m[mon],
        ua=ctx.ua.tool0 + np.array(tools)[mon],
        status=np.where(kind == T.SUMMARY, 401, 200),
    )
    return take_rows(rows, (ts >= ctx.t0) & (ts < ctx.t1))


def _customer_sessions(ctx: BankContext) -> Rows:
    rng = ctx.rng(1)
    c = ctx.customers
    days = ctx.config.days
    n_sess_c = rng.poisson(c.rate * days)
    cust = np.repeat(np.arange(c.n, dtype=np.int64), n_sess_c)
    rng.shuffle(cust)
    S = cust.size
    t_start = sample_times(rng, ctx, S)
    day_idx = ((t_start - ctx.t0) // DAY_US).astype(np.int64)
    day_mult = np.array([day_multiplier(ctx.config.start + dt.timedelta(days=int(d))) for d in range(days)])
    busy = day_mult[np.clip(day_idx, 0, days - 1)] > 1.3  # payday / month end: more transfers

    use2 = c.has2[cust] & (rng.random(S) < 0.25)
    ua = np.where(use2, c.ua2[cust], c.ua1[cust])
    is_app = (ua >= ctx.ua.app0) & (ua < ctx.ua.tool0)
    browser_idx = ua - ctx.ua.browser0
    mobile_web = (~is_app) & (browser_idx >= 6)
    # network: app on the carrier 55% of the time, desktop at home, mobile web mostly on the carrier
    p_carrier = np.where(is_app, 0.55, np.where(mobile_web, 0.65, 0.04))
    carrier = rng.random(S) < p_carrier
    abroad = c.traveller[cust] & (day_idx >= 2) & (day_idx <= 4) & (rng.random(S) < 0.7)
    asn = np.where(carrier, c.mobile_asn[cust], c.home_asn[cust])
    foreign_asn = T.FOREIGN_IDX[(c.person[cust] % T.FOREIGN_IDX.size)]
    asn = np.where(abroad, foreign_asn, asn)
    ip = c.home_ip[cust].copy()
    for a, pool in ctx.cgnat.items():
        m = carrier & (asn == a)
        ip[m] = pool[rng.integers(0, pool.size, size=int(m.sum()))]
    ip[abroad] = T.random_ips(rng, asn[abroad])
    # occasional DHCP renumbering of a home line: a nearby address in the same block
    renum = (~carrier) & (~abroad) & (rng.random(S) < 0.05)
    ip[renum] = (ip[renum] & np.uint32(0xFFFF0000)) | rng.integers(256, 65279, size=int(renum.sum()), dtype=np.uint32)

    # per-session step counts
    ones = np.ones(S, dtype=np.int64)
    u = rng.random((S, 12))
    typo = c.typo[cust]
    fails = (u[:, 0] < typo).astype(np.int64) + (u[:, 0] < typo * 0.25) + (u[:, 0] < typo * 0.06)
    reset = (fails >= 3).astype(np.int64)
    otp_fail = (u[:, 1] < 0.035).astype(np.int64)
    otp_reissue = otp_fail * (u[:, 2] < 0.5)
    new_device = (u[:, 3] < 0.004).astype(np.int64)
    broker = c.brokerage[cust]
    transfer = (u[:, 4] < np.where(busy, 0.22, 0.10)).astype(np.int64)
    payee_add = (u[:, 5] < 0.025).astype(np.int64)
    transfer = np.maximum(transfer, payee_add * (u[:, 6] < 0.85))
    trade = (broker & (u[:, 7] < 0.14)).astype(np.int64)
    contact = (u[:, 8] < 0.0012).astype(np.int64)
    logout = (u[:, 9] < np.where(is_app, 0.3, 0.55)).astype(np.int64)
    counts = [
        (~is_app).astype(np.int64),  # home page
        np.where(~is_app & (u[:, 10] < 0.45), rng.integers(3, 8, S), 0),  # static assets (cache misses)
        fails,
        reset,
        ones,
        ones,
        otp_fail,
        otp_reissue,
        ones,
        new_device,
        ones + (is_app & (u[:, 11] < 0.3)),  # summary (+ pull-to-refresh)
        (rng.random(S) < np.where(is_app, 0.55, 0.3)).astype(np.int64),
        (rng.random(S) < 0.25).astype(np.int64),
        np.minimum(rng.geometric(0.45, S) - 1, 8),
        (broker & (rng.random(S) < 0.65)).astype(np.int64),
        np.where(broker, np.minimum(rng.poisson(1.5, S), 10), 0),
        trade,
        (transfer * (rng.random(S) < 0.7)) | payee_add,
        payee_add,
        transfer,
        contact,
        logout,
    ]
    sess, slot, first = expand_slots(_BENIGN_SLOTS, counts)
    n = sess.size
    kinds = np.array([s.kind for s in _BENIGN_SLOTS])[slot]
    status = np.array([s.status for s in _BENIGN_SLOTS])[slot]
    med = np.array([s.gap_median_s for s in _BENIGN_SLOTS])[slot]
    sig = np.array([s.gap_sigma for s in _BENIGN_SLOTS])[slot]
    ts = session_times(rng, t_start, sess, first, med, sig)
    # honest failures: static revalidation, rare upstream errors and rate limits
    r = rng.random(n)
    status = np.where((kinds == T.STATIC) & (r < 0.5), 304, status)
    status = np.where((kinds != T.STATIC) & (r > 0.9985), rng.choice([500, 502, 503, 504], size=n), status)
    authed = np.array([s.authed for s in _BENIGN_SLOTS])[slot]
    rc = cust[sess]
    sess_ids = hex_ids(rng, S, 12)
    device = pl.select(
        pl.when(pl.Series(use2[sess])).then(c.device2.gather(rc)).otherwise(c.device1.gather(rc))
    ).to_series()
    dev_new = hex_ids(rng, S, 8)
    # a new phone (from its registration on) or a browser whose cookies were cleared (whole session)
    cleared = (~is_app) & (rng.random(S) < 0.03)
    new_dev_row = ((new_device[sess] == 1) & (slot >= _SLOT_INDEX["device"])) | cleared[sess]
    device = pl.select(pl.when(pl.Series(new_dev_row)).then(dev_new.gather(sess)).otherwise(device)).to_series()
    device = pl.select(pl.when(pl.Series(kinds == T.STATIC)).then(None).otherwise(device)).to_series()
    names = masked(c.user_name, rc, np.isin(kinds, (T.LOGIN, T.PASSWORD_RESET)))
    rows = Rows(
        ts=ts,
        kind=kinds,
        ip=ip[sess],
        asn=asn[sess],
        ua=ua[sess],
        status=status,
        user_name=names,
        user_id=masked(c.user_id, rc, authed),
        session_id=masked(sess_ids, sess, authed),
        device_id=device,
    )
    _fill_banking(rng, ctx, rows, rc, slot, sess)
    keep = ts < ctx.t1
    return take_rows(rows, keep)


def _fill_banking(
    rng: np.random.Generator, ctx: BankContext, rows: Rows, rc: np.ndarray, slot: np.ndarray, sess: np.ndarray
) -> None:
    """Object ids, queries, amounts, payees and instruments of benign rows."""
    c = ctx.customers
    kinds = rows.kind
    n = kinds.size
    acct = pl.Series(c.account[rc]).cast(pl.String)
    asset = pl.Series(T.STATIC_ASSETS).gather(rng.integers(0, len(T.STATIC_ASSETS), n))
    rows.obj = pl.select(
        pl.when(pl.Series(np.isin(kinds, (T.HISTORY, T.ACCOUNT))))
        .then(acct)
        .when(pl.Series(kinds == T.STATIC))
        .then(asset)
        .otherwise(None)
    ).to_series()
    page = pl.Series(rng.geometric(0.6, n)).cast(pl.String)
    period = pl.Series(["1m", "3m", "1m", "6m", "1w"]).gather(rng.integers(0, 5, n))
    sym_idx = np.where(rng.random(n) < 0.5, c.holding[rc], rng.integers(0, len(T.LARGE_CAPS), n))
    symbol = pl.Series(T.LARGE_CAPS).gather(sym_idx)
    rows.query = pl.select(
        pl.when(pl.Series(kinds == T.HISTORY))
        .then(pl.concat_str([pl.lit("period="), period, pl.lit("&page="), page, pl.lit("&size=20")]))
        .when(pl.Series(kinds == T.QUOTE))
        .then(pl.concat_str([pl.lit("symbol="), symbol]))
        .otherwise(None)
    ).to_series()
    transfer = kinds == T.TRANSFER
    trade = kinds == T.TRADE
    amount = np.full(n, np.nan)
    t_amt = np.round(np.minimum(lognormal(rng, c.history_median[rc], 0.9, n), ctx.profile.transfer_limit), -2)
    amount[transfer] = t_amt[transfer]
    tr_amt = np.round(lognormal(rng, 180_000.0, 1.0, n), -3)
    amount[trade] = tr_amt[trade]
    rows.amount = amount
    # payees: a few regular payees per customer; a new one when the session added one
    payee_add_sess = np.zeros(sess.max() + 1 if sess.size else 0, dtype=bool)
    payee_add_sess[sess[kinds == T.PAYEE_ADD]] = True
    new_payee = payee_add_sess[sess]
    regular = c.person[rc] * 4 + rng.integers(0, 3, n)
    fresh = 4_000_000_000 + ctx.profile.index * 100_000_000 + sess
    payee_num = np.where(new_payee, fresh, regular)
    rows.payee = masked(prefixed("P", payee_num), np.arange(n), transfer | (kinds == T.PAYEE_ADD))
    rows.instrument = masked(symbol, np.arange(n), trade)
    rows.side = masked(pl.Series(["buy", "sell"]), (rng.random(n) < 0.45).astype(np.int64), trade)


def take_rows(rows: Rows, keep: np.ndarray) -> Rows:
    """Keep the rows where ``keep`` (arrays and Series alike)."""
    if keep.all():
        return rows
    mask = pl.Series(keep)
    out = Rows(ts=rows.ts[keep], kind=rows.kind[keep], ip=rows.ip[keep], asn=rows.asn[keep], ua=rows.ua[keep],
               status=rows.status[keep], family=rows.family, campaign_id=rows.campaign_id)  # fmt: skip
    for name in ("attack_id", "user_name", "user_id", "session_id", "device_id", "obj", "path", "query", "body",
                 "payee", "instrument", "side"):  # fmt: skip
        value = getattr(rows, name)
        if value is not None:
            setattr(out, name, value.filter(mask))
    for name in ("ja3", "amount", "referrer"):
        value = getattr(rows, name)
        if value is not None:
            setattr(out, name, value[keep])
    return out


def _signups(ctx: BankContext) -> Rows:
    """New customers applying online: home page, application, phone check, device registration."""
    rng = ctx.rng(2)
    per_day = ctx.customers.n * 0.0006
    k = int(rng.poisson(per_day * ctx.config.days))
    if k == 0:
        return _empty()
    t_start = sample_times(rng, ctx, k)
    app = rng.random(k) < ctx.profile.app_share
    ua = np.where(app, ctx.ua.app0 + rng.integers(0, 8, k), ctx.ua.browser0 + rng.integers(0, 11, k))
    slots = [
        _S(T.HOME, 200, 0.0, 0.1, False),
        _S(T.SIGNUP, 200, 240.0, 0.6, False),
        _S(T.SIGNUP, 400, 60.0, 0.6, False),  # validation error, resubmitted
        _S(T.OTP_ISSUE, 200, 0.5, 0.3, False),
        _S(T.OTP_VERIFY, 200, 25.0, 0.5, False),
        _S(T.DEVICE_REGISTER, 200, 8.0, 0.5, False),
    ]
    fix = (rng.random(k) < 0.15).astype(np.int64)
    ones = np.ones(k, np.int64)
    # a rejected application (validation error) comes before the accepted one
    counts = [(~app).astype(np.int64), fix, ones, ones, ones, app.astype(np.int64)]
    slots = [slots[0], slots[2], slots[1], *slots[3:]]
    sess, slot, first = expand_slots(slots, counts)
    kinds = np.array([s.kind for s in slots])[slot]
    status = np.array([s.status for s in slots])[slot]
    med = np.array([s.gap_median_s for s in slots])[slot]
    sig = np.array([s.gap_sigma for s in slots])[slot]
    ts = session_times(rng, t_start, sess, first, med, sig)
    person = 3 * ctx.universe + ctx.profile.index * 10_000_000 + np.arange(k)
    carrier = rng.random(k) < 0.5
    mob = T.MOBILE_IDX[rng.integers(0, T.MOBILE_IDX.size, k)]
    isp = T.ISP_IDX[rng.integers(0, T.ISP_IDX.size, k)]
    asn = np.where(carrier, mob, isp)
    ip = T.random_ips(rng, asn)
    names = T.usernames(person)
    rows = Rows(
        ts=ts,
        kind=kinds,
        ip=ip[sess],
        asn=asn[sess],
        ua=ua[sess],
        status=status,
        user_name=masked(names, sess, kinds == T.SIGNUP),
        device_id=masked(hex_ids(rng, k, 8), sess, kinds != T.HOME),
    )
    phone = pl.Series(rng.integers(10_000_000, 99_999_999, k)).cast(pl.String)
    prefix = pl.Series(["090", "080", "070"]).gather(rng.integers(0, 3, k))
    body = pl.select(
        pl.concat_str([pl.lit('{"email":"'), names, pl.lit('","phone":"'), prefix, phone, pl.lit('"}')])
    ).to_series()
    rows.body = masked(body, sess, kinds == T.SIGNUP)
    return take_rows(rows, ts < ctx.t1)


def _aggregator_polls(ctx: BankContext) -> Rows:
    """Consented personal-finance apps refreshing balances twice a day from cloud addresses."""
    rng = ctx.rng(3)
    c = ctx.customers
    linked = np.flatnonzero(rng.random(c.n) < 0.02)
    if linked.size == 0:
        return _empty()
    which = rng.integers(0, 2, linked.size)
    agg_ips = {a: T.random_ips(rng, np.full(6, T.HOSTING_IDX[0])) for a in (0, 1)}
    polls_c = []
    polls_t = []
    for d in range(ctx.config.days):
        for hour, spread in ((7.0, 0.6), (21.0, 1.0)):
            t = ctx.t0 + d * DAY_US + ((hour + spread * rng.standard_normal(linked.size)) * HOUR_US).astype(np.int64)
            polls_c.append(np.arange(linked.size))
            polls_t.append(t)
    pc = np.concatenate(polls_c)
    pt = np.concatenate(polls_t)
    k = pc.size
    slots = [_S(T.SUMMARY, 200, 0.0, 0.1, True), _S(T.ACCOUNT, 200, 0.3, 0.3, True),
             _S(T.HISTORY, 200, 0.3, 0.3, True)]  # fmt: skip
    ones = np.ones(k, np.int64)
    sess, slot, first = expand_slots(slots, [ones, ones, ones])
    kinds = np.array([s.kind for s in slots])[slot]
    ts = session_times(rng, pt, sess, first, np.array([0.0, 0.3, 0.3])[slot], np.full(sess.size, 0.3))
    cust = linked[pc]
    agg = which[pc]
    ip = np.where(agg == 0, agg_ips[0][rng.integers(0, 6, k)], agg_ips[1][rng.integers(0, 6, k)])
    rc = cust[sess]
    rows = Rows(
        ts=ts,
        kind=kinds,
        ip=ip[sess],
        asn=np.full(sess.size, T.HOSTING_IDX[0]),
        ua=ctx.ua.agg0 + agg[sess],
        status=np.full(sess.size, 200),
        user_id=c.user_id.gather(rc),
        session_id=hex_ids(rng, k, 12).gather(sess),
        obj=masked(pl.Series(c.account[rc]).cast(pl.String), np.arange(sess.size), kinds != T.SUMMARY),
        query=pl.select(
            pl.when(pl.Series(kinds == T.HISTORY)).then(pl.lit("period=1w&page=1&size=100")).otherwise(None)
        ).to_series(),
    )
    return take_rows(rows, (ts >= ctx.t0) & (ts < ctx.t1))


def _empty() -> Rows:
    z = np.zeros(0, dtype=np.int64)
    return Rows(ts=z, kind=z, ip=z.astype(np.uint32), asn=z, ua=z, status=z)
