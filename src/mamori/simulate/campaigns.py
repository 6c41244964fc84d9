"""Attack campaigns: one named, parameterised generator per family, and the consortium's campaign plan.

Each generator is a frozen pydantic model whose fields are its parameters. :meth:`Campaign.generate` writes
the campaign's requests at one bank, given the bank's window and intensity; material that a real actor
reuses across banks (credential list, proxy pool, relay hosts, mule accounts, pumped ticker) is drawn from a
campaign-wide random stream, so the same list and addresses show up at every bank the campaign hits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mamori.errors import ConfigError
from mamori.simulate import _tables as T
from mamori.simulate._rows import US_PER_S, Rows, hex_ids, lognormal, prefixed
from mamori.simulate.config import ATTACK_FAMILIES, BankProfile, SimulationConfig
from mamori.simulate.population import (
    DAY_US,
    HOUR_US,
    BankContext,
    expand_slots,
    masked,
    session_times,
    start_us,
    take_rows,
)

__all__ = [
    "AitmPhishing",
    "BankTarget",
    "BolaEnumeration",
    "BrokeragePump",
    "Campaign",
    "CampaignPlan",
    "CredentialStuffing",
    "CredentialStuffingLowSlow",
    "FakeAccounts",
    "InfostealerReplay",
    "Injection",
    "PasswordSpraying",
    "Scraping",
    "SimSwap",
    "CAMPAIGN_TYPES",
    "instantiate",
    "plan_campaigns",
]

logger = logging.getLogger(__name__)
MIN_US = 60 * US_PER_S


# ------------------------------------------------------------------------------------------------ plumbing
@dataclass(frozen=True)
class Step:
    """One step of an attack session template (expanded like benign sessions)."""

    kind: int
    status: int
    gap_s: float
    sigma: float = 0.3
    authed: bool = True
    phase: int = 0  # which source (IP/UA/device) the step comes from: 0 first, 1 after a hand-over


class BankTarget(BaseModel):
    """When and how hard a campaign hits one bank."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: dt.datetime
    end: dt.datetime
    intensity: float


class CampaignPlan(BaseModel):
    """One campaign of the catalogue: its id, generator (with parameters) and the banks it hits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str
    family: str
    number: int
    generator: str
    params: dict[str, object]
    targets: dict[str, BankTarget]


class Campaign(BaseModel):
    """Base class of attack-campaign generators; subclasses add their parameters as fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: ClassVar[str] = ""
    #: How long the campaign lasts at one bank, in hours (the planner clips it to the period).
    duration_hours: float = 2.0

    def generate(self, ctx: BankContext, plan: CampaignPlan, seed: int) -> Rows:
        """Write this campaign's requests at ``ctx``'s bank.

        Parameters
        ----------
        ctx : BankContext
            The bank (customers, routes, period).
        plan : CampaignPlan
            The campaign's catalogue entry; ``plan.targets[ctx.bank_id]`` gives window and intensity.
        seed : int
            The consortium seed.

        Returns
        -------
        Rows
            Requests labelled with this campaign's family, ``campaign_id`` and per-attack ``attack_id``.
        """
        target = plan.targets[ctx.bank_id]
        shared = np.random.default_rng([seed, 7_000 + plan.number])
        local = np.random.default_rng([seed, 1 + ctx.profile.index, 9_000 + plan.number])
        t0 = _us(target.start)
        t1 = _us(target.end)
        # campaign volume follows the customer scale, damped (sqrt) so tiny test runs still see every family
        intensity = target.intensity * ctx.config.scale**0.5
        rows = self._generate(ctx, plan, shared, local, t0, t1, intensity)
        rows.family = self.family
        rows.campaign_id = plan.campaign_id
        keep = (rows.ts >= ctx.t0) & (rows.ts < ctx.t1)
        return take_rows(rows, keep)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        raise NotImplementedError


def _us(t: dt.datetime) -> int:
    return int(t.timestamp() * US_PER_S)


def _attack_ids(plan: CampaignPlan, bank_id: str, unit: np.ndarray) -> pl.Series:
    """``<campaign>/<bank>/<unit>`` for each row (unit = victim, source or token number)."""
    return prefixed(f"{plan.campaign_id}/{bank_id}/", unit, 4)


def _n(base: float, intensity: float, rng: np.random.Generator, minimum: int = 1) -> int:
    """Poisson-jittered count scaled by intensity."""
    return max(minimum, int(rng.poisson(max(base * intensity, 0.0))))


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    return pool[rng.integers(0, pool.size, n)]


def _sessions(
    ctx: BankContext,
    rng: np.random.Generator,
    steps: list[Step],
    counts: list[np.ndarray],
    start: np.ndarray,
    *,
    ip: tuple[np.ndarray, ...],
    asn: tuple[np.ndarray, ...],
    ua: tuple[np.ndarray, ...],
    ja3: tuple[np.ndarray, ...] | None,
    device: tuple[pl.Series | None, ...],
    cust: np.ndarray,
    names: pl.Series | None,
    unit: np.ndarray,
    plan: CampaignPlan,
) -> tuple[Rows, np.ndarray, np.ndarray]:
    """Expand attack sessions (per-session arrays, one tuple entry per phase) into rows.

    Returns the rows and, per row, the session and step indices (for amounts, payees, ...).
    """
    sess, slot, first = expand_slots(steps, counts)
    kinds = np.array([s.kind for s in steps])[slot]
    status = np.array([s.status for s in steps])[slot]
    med = np.array([s.gap_s for s in steps])[slot]
    sig = np.array([s.sigma for s in steps])[slot]
    phase = np.array([s.phase for s in steps])[slot]
    authed = np.array([s.authed for s in steps])[slot]
    ts = session_times(rng, start, sess, first, med, sig)

    def by_phase(parts: tuple[np.ndarray, ...]) -> np.ndarray:
        out = parts[0][sess]
        for p in range(1, len(parts)):
            out = np.where(phase == p, parts[p][sess], out)
        return out

    # a source without a device cookie gets a fresh device id per session (the server sets one)
    n_sess = start.size
    pieces = [(d if d is not None else hex_ids(rng, n_sess, 8)).gather(sess) for d in device]
    dev = pieces[0]
    for p in range(1, len(pieces)):
        dev = pl.select(pl.when(pl.Series(phase == p)).then(pieces[p]).otherwise(dev)).to_series()
    c = ctx.customers
    has_cust = cust[sess] >= 0
    rc = np.maximum(cust[sess], 0)
    rows = Rows(
        ts=ts,
        kind=kinds,
        ip=by_phase(ip),
        asn=by_phase(asn),
        ua=by_phase(ua),
        ja3=by_phase(ja3) if ja3 is not None else None,
        status=status,
        attack_id=_attack_ids(plan, ctx.bank_id, unit[sess]),
        user_name=masked(names, sess, np.isin(kinds, (T.LOGIN, T.PASSWORD_RESET, T.SIGNUP)))
        if names is not None
        else None,
        user_id=masked(c.user_id, rc, authed & has_cust),
        session_id=masked(hex_ids(rng, n_sess, 12), sess, authed),
        device_id=dev,
        referrer=np.zeros(ts.size, dtype=bool),
    )
    return rows, sess, slot


def _credential_list(shared: np.random.Generator, universe: int, size: int) -> np.ndarray:
    """A leaked combo list: people of the consortium's universe and beyond (unknown to every bank)."""
    return shared.choice(3 * universe, size=size, replace=False).astype(np.int64)


def _reuses_password(person: np.ndarray) -> np.ndarray:
    """Whether a person reused the leaked password at their bank (about 1.5%, fixed per person)."""
    return ((person * 2654435761) % 10_007) < 150


def _customer_index(ctx: BankContext, person: np.ndarray) -> np.ndarray:
    """Customer number of each person at this bank, -1 when the person is not a customer."""
    c = ctx.customers
    order = np.argsort(c.person)
    sorted_p = c.person[order]
    pos = np.searchsorted(sorted_p, person)
    pos = np.clip(pos, 0, sorted_p.size - 1)
    hit = sorted_p[pos] == person
    return np.where(hit, order[pos], -1)


def _browser_ua(ctx: BankContext, rng: np.random.Generator, n: int) -> np.ndarray:
    return ctx.ua.browser0 + rng.integers(0, len(T.BROWSER_UAS), n)


def _login_outcome_steps(hit: np.ndarray) -> tuple[list[Step], list[np.ndarray]]:
    """A stuffing attempt: one login; a hit triggers the one-time code the attacker cannot read."""
    n = hit.size
    steps = [
        Step(T.LOGIN, 401, 0.0, authed=False),
        Step(T.LOGIN, 200, 0.0, authed=True),
        Step(T.OTP_ISSUE, 200, 0.6, authed=True),
        Step(T.OTP_VERIFY, 401, 8.0, 0.8, authed=True),
    ]
    hit_i = hit.astype(np.int64)
    return steps, [1 - hit_i, hit_i, hit_i, hit_i * (np.arange(n) % 2)]


# ------------------------------------------------------------------------------------------- generators
class CredentialStuffing(Campaign):
    """Burst credential stuffing (OWASP OAT-008) from a handful of rented servers.

    Trace: POSTs to the login route from ``sources`` hosting addresses, each trying many usernames once at a
    very regular cadence; mostly 401; rotating browser user agents over one scripted TLS stack (UA vs JA3
    mismatch); no device id, no referrer, no page loads; the few hits stop at the one-time code.
    """

    family: ClassVar[str] = "credential_stuffing"
    duration_hours: float = 0.75
    attempts: int = Field(6_000, ge=1)
    sources: int = Field(4, ge=1)
    list_size: int = Field(200_000, ge=100)
    rotate_user_agents: bool = True

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        combo = _credential_list(shared, ctx.universe, min(self.list_size, 3 * ctx.universe))
        src_asn = _pick(shared, T.HOSTING_IDX, self.sources)
        src_ip = T.random_ips(shared, src_asn)
        a = min(_n(self.attempts, intensity, rng), combo.size)
        offset = int(rng.integers(0, combo.size))
        person = combo[(offset + np.arange(a)) % combo.size]
        src = np.arange(a) % self.sources
        # each source fires at a fixed cadence with 3% jitter
        per_src = np.ceil(a / self.sources)
        step_us = (t1 - t0) / per_src
        k = np.arange(a) // self.sources
        start = (t0 + src * step_us / self.sources + k * step_us * (1 + 0.03 * rng.standard_normal(a))).astype(np.int64)
        cust = _customer_index(ctx, person)
        hit = (cust >= 0) & _reuses_password(person)
        steps, counts = _login_outcome_steps(hit)
        tool = T.TOOL_PYTHON if plan.number % 2 else T.TOOL_GO
        ua = _browser_ua(ctx, rng, a) if self.rotate_user_agents else np.full(a, ctx.ua.tool0 + tool)
        ja3 = np.full(a, T.TOOL_UAS[tool][1])
        rows, sess, _ = _sessions(
            ctx, rng, steps, counts, start, ip=(src_ip[src],), asn=(src_asn[src],), ua=(ua,), ja3=(ja3,),
            device=(None,), cust=cust, names=T.usernames(person), unit=src, plan=plan,
        )  # fmt: skip
        return rows


class CredentialStuffingLowSlow(Campaign):
    """Low-and-slow distributed credential stuffing through a residential proxy pool.

    The same combo list and the same proxy pool hit several banks with staggered timing. Each proxy address
    sends at most ``max_tries_per_ip`` logins to a bank over the whole campaign (so never more than two
    failures per address per hour), spread evenly over day and night. Trace: a small rise in the population
    failure rate, many usernames the bank has never seen, logins from residential ASNs with no page load,
    no device id, browser user agents over a headless-browser TLS stack; the same addresses at other banks.
    """

    family: ClassVar[str] = "credential_stuffing_low_slow"
    duration_hours: float = 36.0
    stagger_hours: float = Field(20.0, ge=0.0)
    attempts: int = Field(3_000, ge=1)
    pool_size: int = Field(6_000, ge=10)
    list_size: int = Field(150_000, ge=100)
    max_tries_per_ip: int = Field(2, ge=1, le=2)
    impersonate_tls_share: float = Field(0.3, ge=0.0, le=1.0)

    def proxy_pool(self, shared: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return the campaign's proxy pool as (ASN index, IPv4 uint32) arrays."""
        kind = shared.random(self.pool_size)
        isp_w = T.ISP_WEIGHTS / T.ISP_WEIGHTS.sum()
        asn = np.where(
            kind < 0.8,
            T.ISP_IDX[shared.choice(T.ISP_IDX.size, self.pool_size, p=isp_w)],
            np.where(
                kind < 0.9, _pick(shared, T.MOBILE_IDX, self.pool_size), _pick(shared, T.FOREIGN_IDX, self.pool_size)
            ),
        )
        return asn, T.random_ips(shared, asn)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        combo = _credential_list(shared, ctx.universe, min(self.list_size, 3 * ctx.universe))
        pool_asn, pool_ip = self.proxy_pool(shared)
        # addresses: each chosen proxy tries once or twice at this bank, never more
        tries = rng.integers(1, self.max_tries_per_ip + 1, self.pool_size)
        a = min(_n(self.attempts, intensity, rng), int(tries.sum()), combo.size)
        # the list is worked through in the same order at every bank
        person = combo[:a]
        # the pool is worked through in (almost) the same order at every bank: the same exits everywhere
        chosen = np.argsort(np.arange(self.pool_size) + rng.uniform(0, 200, self.pool_size), kind="stable")
        cum = np.cumsum(tries[chosen])
        m = int(np.searchsorted(cum, a)) + 1
        chosen = chosen[:m]
        per_ip = tries[chosen].copy()
        per_ip[-1] -= int(cum[m - 1] - a)
        src = np.repeat(chosen, per_ip)
        rng.shuffle(src)
        person = person[rng.permutation(a)]
        start = (t0 + rng.random(a) * (t1 - t0)).astype(np.int64)
        cust = _customer_index(ctx, person)
        hit = (cust >= 0) & _reuses_password(person)
        steps, counts = _login_outcome_steps(hit)
        ua = _browser_ua(ctx, rng, a)
        imitate = rng.random(a) < self.impersonate_tls_share
        ja3 = np.where(imitate, ctx.ua.ja3[ua], T.JA3_HEADLESS)
        rows, _, _ = _sessions(
            ctx, rng, steps, counts, start, ip=(pool_ip[src],), asn=(pool_asn[src],), ua=(ua,), ja3=(ja3,),
            device=(None,), cust=cust, names=T.usernames(person), unit=np.zeros(a, dtype=np.int64), plan=plan,
        )  # fmt: skip
        return rows


class PasswordSpraying(Campaign):
    """Password spraying (OWASP OAT-007): one password over many accounts, plus a little brute forcing.

    Trace: each targeted username tried once per password round, from ``sources`` hosting/VPN addresses at
    about one try per address every ``interval_minutes``; usernames are mostly real (harvested); a few
    accounts get many passwords in a row and are locked (423).
    """

    family: ClassVar[str] = "password_spraying"
    duration_hours: float = 30.0
    users: int = Field(1_200, ge=1)
    passwords: int = Field(2, ge=1)
    sources: int = Field(40, ge=1)
    interval_minutes: float = Field(5.0, gt=0)
    brute_users: int = Field(6, ge=0)
    brute_tries: int = Field(9, ge=1)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        src_asn = np.where(shared.random(self.sources) < 0.5, _pick(shared, T.HOSTING_IDX, self.sources),
                           _pick(shared, T.VPN_IDX, self.sources))  # fmt: skip
        src_ip = T.random_ips(shared, src_asn)
        n_users = min(_n(self.users, intensity, rng), c.n)
        real = rng.choice(c.n, size=n_users, replace=False)
        known = rng.random(n_users) < 0.85
        person = np.where(known, c.person[real], 3 * ctx.universe + 50_000_000 + rng.integers(0, 10**7, n_users))
        cust = np.where(known, real, -1)
        a = n_users * self.passwords
        person = np.tile(person, self.passwords)
        cust = np.tile(cust, self.passwords)
        src = rng.integers(0, self.sources, a)
        # each source spaces its tries by ~interval; rounds follow each other
        per_src_rank = np.zeros(a, dtype=np.int64)
        order = np.argsort(src, kind="stable")
        ranks = np.arange(a) - np.searchsorted(src[order], src[order])
        per_src_rank[order] = ranks
        gap = self.interval_minutes * MIN_US
        start = (t0 + per_src_rank * gap + rng.random(a) * gap * 0.8 + src * gap / self.sources).astype(np.int64)
        weak = ((person * 40503) % 1009) < 3  # the sprayed password happens to be theirs
        hit = (cust >= 0) & weak
        steps, counts = _login_outcome_steps(hit)
        ua_tool = ctx.ua.tool0 + T.TOOL_PYTHON
        ua = np.where(rng.random(self.sources) < 0.5, ua_tool, ctx.ua.browser0)[src]
        ja3 = np.full(a, T.JA3_PYTHON)
        rows, _, _ = _sessions(
            ctx, rng, steps, counts, start, ip=(src_ip[src],), asn=(src_asn[src],), ua=(ua,), ja3=(ja3,),
            device=(None,), cust=cust, names=T.usernames(person), unit=src, plan=plan,
        )  # fmt: skip
        parts = [rows]
        b = min(int(round(self.brute_users * min(intensity, 3.0))), c.n)
        if b:
            victims = rng.choice(c.n, size=b, replace=False)
            bs = rng.integers(0, self.sources, b)
            bstart = (t0 + rng.random(b) * (t1 - t0)).astype(np.int64)
            steps_b = [Step(T.LOGIN, 401, 4.0, 0.2, authed=False), Step(T.LOGIN, 423, 4.0, 0.2, authed=False)]
            counts_b = [np.full(b, min(5, self.brute_tries)), np.full(b, max(0, self.brute_tries - 5))]
            rb, _, _ = _sessions(
                ctx, rng, steps_b, counts_b, bstart, ip=(src_ip[bs],), asn=(src_asn[bs],),
                ua=(np.full(b, ctx.ua.tool0 + T.TOOL_PYTHON),), ja3=(np.full(b, T.JA3_PYTHON),), device=(None,),
                cust=victims, names=T.usernames(c.person[victims]), unit=self.sources + np.arange(b), plan=plan,
            )  # fmt: skip
            parts.append(rb)
        return _concat(parts)


def _mules(shared: np.random.Generator, n: int) -> pl.Series:
    """Mule accounts a campaign cashes out to (shared by all its victims, at every bank)."""
    return prefixed("P", 9_000_000_000 + shared.integers(0, 10**8, n))


class AitmPhishing(Campaign):
    """Phishing-led account takeover through an adversary-in-the-middle relay (real-time phishing kit).

    Per victim: the relay, on a hosting ASN, logs in with the victim's password and user agent (but its own
    TLS stack) and relays the one-time code (a little slower than a human at the real site); minutes later
    the same session is driven from another address and browser (session drift) to add a mule payee and
    transfer a large amount.
    """

    family: ClassVar[str] = "aitm_phishing"
    duration_hours: float = 48.0
    victims: int = Field(30, ge=1)
    relays: int = Field(3, ge=1)
    mules: int = Field(6, ge=1)
    handover_minutes: float = Field(6.0, gt=0)
    transfer_share: float = Field(0.85, ge=0.0, le=1.0)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        v = min(_n(self.victims, intensity, rng), c.n)
        victims = rng.choice(c.n, size=v, replace=False)
        relay_asn = _pick(shared, T.JP_HOSTING_IDX, self.relays)
        relay_ip = T.random_ips(shared, relay_asn)
        r = rng.integers(0, self.relays, v)
        op_asn = np.where(rng.random(v) < 0.6, _pick(rng, T.VPN_IDX, v), _pick(rng, T.FOREIGN_IDX, v))
        op_ip = T.random_ips(rng, op_asn)
        start = _daytime_starts(ctx, rng, v, t0, t1)
        pay = (rng.random(v) < self.transfer_share).astype(np.int64)
        ones = np.ones(v, dtype=np.int64)
        steps = [
            Step(T.LOGIN, 401, 0.0, authed=False),  # the victim mistypes on the phishing page
            Step(T.LOGIN, 200, 6.0, 0.5, authed=True),
            Step(T.OTP_ISSUE, 200, 0.5, authed=True),
            Step(T.OTP_VERIFY, 200, 45.0, 0.4, authed=True),
            Step(T.SUMMARY, 200, 1.0, authed=True),
            Step(T.SUMMARY, 200, self.handover_minutes * 60, 0.6, authed=True, phase=1),
            Step(T.PAYEES, 200, 12.0, 0.5, phase=1),
            Step(T.PAYEE_ADD, 200, 40.0, 0.4, phase=1),
            Step(T.TRANSFER, 200, 30.0, 0.4, phase=1),
        ]
        typo = (rng.random(v) < 0.1).astype(np.int64)
        counts = [typo, ones, ones, ones, ones, ones, ones, pay, pay]
        vua = c.ua1[victims]  # the relay forwards the victim's User-Agent header over its own (Go) TLS
        op_ua = _browser_ua(ctx, rng, v)  # the operator's own browser: UA and TLS agree
        rows, sess, _ = _sessions(
            ctx, rng, steps, counts, start, ip=(relay_ip[r], op_ip), asn=(relay_asn[r], op_asn),
            ua=(vua, op_ua), ja3=(np.full(v, T.JA3_GO), ctx.ua.ja3[op_ua]),
            device=(None, None), cust=victims, names=c.user_name.gather(victims), unit=np.arange(v), plan=plan,
        )  # fmt: skip
        _cash_out(rows, sess, ctx, shared, rng, self.mules, low=0.3, high=0.9)
        return rows


def _daytime_starts(ctx: BankContext, rng: np.random.Generator, n: int, t0: int, t1: int) -> np.ndarray:
    """Start times inside [t0, t1) that follow the normal diurnal profile (victims act when awake)."""
    hours = np.arange((t1 - t0) // HOUR_US + 1)
    idx = np.clip((t0 - ctx.t0) // HOUR_US + hours, 0, ctx.weights.size - 1)
    w = ctx.weights[idx]
    h = rng.choice(hours.size, size=n, p=w / w.sum())
    ts = t0 + h * HOUR_US + (rng.random(n) * HOUR_US).astype(np.int64)
    return np.minimum(ts, t1 - 1)


def _cash_out(rows: Rows, sess: np.ndarray, ctx: BankContext, shared: np.random.Generator,
              rng: np.random.Generator, mules: int, low: float, high: float) -> None:  # fmt: skip
    """Payee-add and transfer rows pay a campaign mule, near the bank's daily limit."""
    n = rows.kind.size
    mule = _mules(shared, mules)
    pick = rng.integers(0, mules, int(sess.max()) + 1 if sess.size else 0)[sess]
    is_pay = np.isin(rows.kind, (T.PAYEE_ADD, T.TRANSFER))
    rows.payee = masked(mule, pick, is_pay)
    frac = rng.uniform(low, high, int(sess.max()) + 1 if sess.size else 0)[sess]
    amount = np.full(n, np.nan)
    tr = rows.kind == T.TRANSFER
    amount[tr] = np.round(frac[tr] * ctx.profile.transfer_limit, -3)
    rows.amount = amount


class SimSwap(Campaign):
    """SIM-swap / smishing takeover: SMS reset, contact change, new device, then a transfer near the limit.

    Per victim, at night: a password reset authorised by SMS (the attacker holds the number), a login, a
    contact change and a device registration from a new phone on the victim's own carrier, then a
    first-time payee and a transfer of 85-100% of the daily limit.
    """

    family: ClassVar[str] = "sim_swap"
    duration_hours: float = 24.0 * 6
    victims: int = Field(8, ge=1)
    mules: int = Field(3, ge=1)
    night_hours: tuple[int, int] = (1, 5)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        v = min(_n(self.victims, intensity, rng), c.n)
        victims = rng.choice(c.n, size=v, replace=False)
        day0 = (t0 - ctx.t0) // DAY_US
        ndays = max(1, (t1 - t0) // DAY_US)
        day = day0 + rng.integers(0, ndays, v)
        lo, hi = self.night_hours
        hour_jst = rng.uniform(lo, hi, v)
        start = (ctx.t0 + day * DAY_US + hour_jst * HOUR_US).astype(np.int64)
        asn = c.mobile_asn[victims]
        ip = np.array([ctx.cgnat[int(a)][int(rng.integers(0, ctx.cgnat[int(a)].size))] for a in asn], dtype=np.uint32)
        android = ctx.ua.app0 + 4 + rng.integers(0, 4, v)
        ones = np.ones(v, dtype=np.int64)
        steps = [
            Step(T.PASSWORD_RESET, 200, 0.0, authed=False),
            Step(T.OTP_ISSUE, 200, 0.5, authed=False),
            Step(T.OTP_VERIFY, 200, 9.0, 0.4, authed=False),
            Step(T.LOGIN, 200, 25.0, 0.4),
            Step(T.OTP_ISSUE, 200, 0.5),
            Step(T.OTP_VERIFY, 200, 8.0, 0.4),
            Step(T.DEVICE_REGISTER, 200, 5.0),
            Step(T.CONTACT_CHANGE, 200, 20.0, 0.4),
            Step(T.SUMMARY, 200, 3.0),
            Step(T.PAYEES, 200, 5.0),
            Step(T.PAYEE_ADD, 200, 30.0, 0.4),
            Step(T.TRANSFER, 200, 20.0, 0.4),
        ]
        rows, sess, _ = _sessions(
            ctx, rng, steps, [ones] * len(steps), start, ip=(ip,), asn=(asn,), ua=(android,), ja3=None,
            device=(hex_ids(rng, v, 8),), cust=victims, names=c.user_name.gather(victims), unit=np.arange(v),
            plan=plan,
        )  # fmt: skip
        _cash_out(rows, sess, ctx, shared, rng, self.mules, low=0.85, high=1.0)
        return rows


class InfostealerReplay(Campaign):
    """Credentials (and device cookies) from infostealer logs, replayed from abroad.

    Per victim: a login that succeeds at the first try from a foreign or VPN address. With a stolen
    trusted-device cookie (``cookie_share``) the bank skips the one-time code and the session reads balances,
    history and sometimes pays a mule; without it, the code step fails and the attacker gives up.
    """

    family: ClassVar[str] = "infostealer_replay"
    duration_hours: float = 24.0 * 6
    victims: int = Field(25, ge=1)
    cookie_share: float = Field(0.5, ge=0.0, le=1.0)
    transfer_share: float = Field(0.4, ge=0.0, le=1.0)
    mules: int = Field(4, ge=1)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        v = min(_n(self.victims, intensity, rng), c.n)
        victims = rng.choice(c.n, size=v, replace=False)
        start = (t0 + rng.random(v) * (t1 - t0)).astype(np.int64)
        asn = np.where(rng.random(v) < 0.6, _pick(rng, T.FOREIGN_IDX, v), _pick(rng, T.VPN_IDX, v))
        ip = T.random_ips(rng, asn)
        cookie = rng.random(v) < self.cookie_share
        ci = cookie.astype(np.int64)
        pay = (cookie & (rng.random(v) < self.transfer_share)).astype(np.int64)
        steps = [
            Step(T.LOGIN, 200, 0.0),
            Step(T.OTP_ISSUE, 200, 0.5),
            Step(T.OTP_VERIFY, 401, 20.0, 0.5),
            Step(T.SUMMARY, 200, 2.0),
            Step(T.HISTORY, 200, 6.0, 0.6),
            Step(T.PAYEES, 200, 8.0),
            Step(T.PAYEE_ADD, 200, 45.0, 0.4),
            Step(T.TRANSFER, 200, 30.0, 0.4),
        ]
        counts = [np.ones(v, np.int64), 1 - ci, (1 - ci) * 2, ci, ci * 2, pay, pay, pay]
        ua = _browser_ua(ctx, rng, v)
        device = pl.select(
            pl.when(pl.Series(cookie)).then(c.device1.gather(victims)).otherwise(hex_ids(rng, v, 8))
        ).to_series()
        rows, sess, _ = _sessions(
            ctx, rng, steps, counts, start, ip=(ip,), asn=(asn,), ua=(ua,), ja3=None, device=(device,),
            cust=victims, names=c.user_name.gather(victims), unit=np.arange(v), plan=plan,
        )  # fmt: skip
        rows.obj = masked(pl.Series(c.account[victims]).cast(pl.String), sess, rows.kind == T.HISTORY)
        _cash_out(rows, sess, ctx, shared, rng, self.mules, low=0.2, high=0.6)
        return rows


class Scraping(Campaign):
    """Scraping of balances and history (OWASP OAT-011) with a handful of session tokens.

    Trace: after one login per token, GETs of the summary, account and history routes at a fixed cadence
    (``interval_s`` with little jitter) for hours, paging sequentially, from a few cloud addresses; some 429s.
    """

    family: ClassVar[str] = "scraping"
    duration_hours: float = 10.0
    tokens: int = Field(3, ge=1)
    interval_s: float = Field(3.0, gt=0)
    jitter: float = Field(0.05, ge=0.0, le=1.0)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        k = max(1, int(round(self.tokens * intensity)))
        owners = rng.choice(c.n, size=min(k, c.n), replace=False)
        k = owners.size
        asn = _pick(shared, T.HOSTING_IDX, k)
        ip = T.random_ips(rng, asn)
        per = max(1, int((t1 - t0) / (self.interval_s * US_PER_S) * min(1.0, intensity)))
        counts_loop = np.full(k, per)
        steps = [Step(T.LOGIN, 200, 0.0), Step(T.OTP_ISSUE, 200, 0.4), Step(T.OTP_VERIFY, 200, 12.0),
                 Step(T.HISTORY, 200, self.interval_s, self.jitter)]  # fmt: skip
        ones = np.ones(k, np.int64)
        start = (t0 + rng.random(k) * HOUR_US * 0.5).astype(np.int64)
        headless = rng.random(k) < 0.5
        ua = np.where(headless, ctx.ua.tool0 + T.TOOL_HEADLESS, ctx.ua.tool0 + T.TOOL_PYTHON)
        rows, sess, slot = _sessions(
            ctx, rng, steps, [ones, ones, ones, counts_loop], start, ip=(ip,), asn=(asn,), ua=(ua,), ja3=None,
            device=(None,), cust=owners, names=c.user_name.gather(owners), unit=np.arange(k), plan=plan,
        )  # fmt: skip
        loop = rows.kind == T.HISTORY
        # cycle summary -> account -> history pages
        pos = np.cumsum(loop) - 1
        phase = pos % 12
        kinds = rows.kind.copy()
        kinds[loop & (phase == 0)] = T.SUMMARY
        kinds[loop & (phase == 1)] = T.ACCOUNT
        rows.kind = kinds
        page = pl.Series(phase + 1).cast(pl.String)
        rows.query = masked(
            pl.select(pl.concat_str([pl.lit("period=12m&page="), page, pl.lit("&size=100")])).to_series(),
            np.arange(kinds.size),
            kinds == T.HISTORY,
        )
        rows.obj = masked(pl.Series(c.account[owners]).cast(pl.String), sess, np.isin(kinds, (T.HISTORY, T.ACCOUNT)))
        throttled = loop & (rng.random(kinds.size) < (0.08 if self.interval_s < 2 else 0.01))
        rows.status = np.where(throttled, 429, rows.status)
        return rows


class BolaEnumeration(Campaign):
    """Object-level authorisation abuse (OWASP API1:2023): enumerating account ids with one's own token.

    Trace: a normal-looking login to the attacker's own account, then bursts of GETs on ``/accounts/{id}``
    for sequential (or random) ids around its own: mostly 403 (other customers' accounts) and 404 (ids that
    do not exist), a few 200 where the bank's check is broken.
    """

    family: ClassVar[str] = "bola_enumeration"
    duration_hours: float = 2.0
    tokens: int = Field(2, ge=1)
    ids_per_token: int = Field(1_500, ge=1)
    rate_per_s: float = Field(4.0, gt=0)
    pattern: Literal["sequential", "random"] = "sequential"

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        k = min(self.tokens, c.n)
        owners = rng.choice(c.n, size=k, replace=False)
        ids = max(1, int(round(self.ids_per_token * intensity)))
        asn = np.where(rng.random(k) < 0.5, _pick(rng, T.HOSTING_IDX, k), c.home_asn[owners])
        ip = T.random_ips(rng, asn)
        app_ua = ctx.ua.app0 + rng.integers(0, 8, k)
        steps = [Step(T.LOGIN, 200, 0.0, 0.5), Step(T.OTP_ISSUE, 200, 0.4), Step(T.OTP_VERIFY, 200, 20.0, 0.4),
                 Step(T.SUMMARY, 200, 1.5), Step(T.ACCOUNT, 200, 1.0 / self.rate_per_s, 0.5)]  # fmt: skip
        ones = np.ones(k, np.int64)
        start = (t0 + rng.random(k) * (t1 - t0) * 0.5).astype(np.int64)
        rows, sess, slot = _sessions(
            ctx, rng, steps, [ones, ones, ones, ones, np.full(k, ids)], start, ip=(ip,), asn=(asn,),
            ua=(app_ua,), ja3=(np.full(k, T.JA3_PYTHON),), device=(c.device1.gather(owners),), cust=owners,
            names=c.user_name.gather(owners), unit=np.arange(k), plan=plan,
        )  # fmt: skip
        enum = slot == 4
        own = c.account[owners][sess]
        nth = np.cumsum(enum) - 1
        first_enum = np.zeros(k, dtype=np.int64)
        first_enum[sess[enum][::-1]] = nth[enum][::-1]
        step = nth - first_enum[sess]
        if self.pattern == "sequential":
            target = own + np.where(step % 2 == 0, step // 2 + 1, -(step // 2 + 1))
        else:
            target = c.account[0] + rng.integers(-c.n // 10, c.n + c.n // 10, sess.size)
        lo = int(c.account.min())
        hi = int(c.account.max())
        exists = (target >= lo) & (target <= hi)
        vulnerable = rng.random(sess.size) < ctx.profile.bola_vulnerable_share
        status = np.where(exists, np.where(vulnerable, 200, 403), 404)
        status = np.where(target == own, 200, status)
        rows.status = np.where(enum, status, rows.status)
        rows.obj = masked(pl.Series(np.where(enum, target, own)).cast(pl.String), np.arange(sess.size),
                          rows.kind == T.ACCOUNT)  # fmt: skip
        # pauses between bursts of ~200
        burst = (step // 200) * int(rng.integers(60, 300)) * US_PER_S
        rows.ts = rows.ts + np.where(enum, burst, 0)
        return rows


class Injection(Campaign):
    """Injection probing (SQLi, XSS, traversal, command and template injection) in queries and bodies.

    Trace: requests to real routes with payloads in query-string parameters, path segments and JSON bodies,
    plus requests for paths that do not exist on a banking API (``/.env``, ``/wp-login.php``); status codes
    mostly 400/403/404 with some 500s; scanner user agents or spoofed browsers, from hosting and VPN ASNs.
    """

    family: ClassVar[str] = "injection"
    duration_hours: float = 3.0
    scanners: int = Field(3, ge=1)
    requests: int = Field(800, ge=1)
    body_share: float = Field(0.3, ge=0.0, le=1.0)
    probe_share: float = Field(0.2, ge=0.0, le=1.0)
    rate_per_s: float = Field(2.0, gt=0)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        n = _n(self.requests, intensity, rng)
        k = self.scanners
        asn = np.where(shared.random(k) < 0.6, _pick(shared, T.HOSTING_IDX, k), _pick(shared, T.VPN_IDX, k))
        ip = T.random_ips(shared, asn)
        scanner_ua = np.array([T.TOOL_SQLMAP, T.TOOL_NUCLEI, T.TOOL_CURL, T.TOOL_GO])[np.arange(k) % 4]
        spoof = np.arange(k) % 3 == 2
        ua = np.where(spoof, ctx.ua.browser0, ctx.ua.tool0 + scanner_ua)
        ja3 = np.array([T.TOOL_UAS[s][1] for s in scanner_ua])
        per = np.bincount(rng.integers(0, k, n), minlength=k)
        start = (t0 + rng.random(k) * (t1 - t0) * 0.5).astype(np.int64)
        step = Step(T.HISTORY, 400, 1.0 / self.rate_per_s, 1.0, authed=False)
        rows, sess, _ = _sessions(
            ctx, rng, [step], [per], start, ip=(ip,), asn=(asn,), ua=(ua,), ja3=(ja3,), device=(None,),
            cust=np.full(k, -1), names=None, unit=np.arange(k), plan=plan,
        )  # fmt: skip
        m = rows.kind.size
        r = rng.random(m)
        probe = r < self.probe_share
        body = (~probe) & (r < self.probe_share + self.body_share)
        query = ~(probe | body)
        q_kinds = np.array([T.HISTORY, T.QUOTE, T.SUMMARY, T.ACCOUNT, T.PAYEES])
        b_kinds = np.array([T.LOGIN, T.PAYEE_ADD, T.TRANSFER, T.SIGNUP, T.PASSWORD_RESET])
        kinds = np.where(probe, T.PROBE, np.where(body, _pick(rng, b_kinds, m), _pick(rng, q_kinds, m)))
        rows.kind = kinds
        payload = pl.Series([p for p, _ in T.INJECTION_QUERY]).gather(rng.integers(0, len(T.INJECTION_QUERY), m))
        param = pl.Series(["q", "symbol", "page", "sort", "from", "id", "filter"]).gather(rng.integers(0, 7, m))
        in_path = query & np.isin(kinds, (T.HISTORY, T.ACCOUNT)) & (rng.random(m) < 0.3)
        rows.query = masked(
            pl.select(pl.concat_str([param, pl.lit("="), payload])).to_series(), np.arange(m), query & ~in_path
        )
        acct = pl.Series(c.account[rng.integers(0, c.n, m)]).cast(pl.String)
        rows.obj = pl.select(pl.when(pl.Series(in_path)).then(payload).otherwise(acct)).to_series()
        bodies = pl.Series(
            [
                json.dumps({f: p}, separators=(",", ":"))
                for f in ("login_id", "name", "memo", "email")
                for p in T.INJECTION_BODY
            ]  # fmt: skip
        )
        rows.body = masked(bodies, rng.integers(0, bodies.len(), m), body)
        rows.path = masked(pl.Series(T.PROBE_PATHS), rng.integers(0, len(T.PROBE_PATHS), m), probe)
        status = rng.choice([400, 400, 400, 403, 403, 500, 200], size=m)
        rows.status = np.where(probe, np.where(rng.random(m) < 0.9, 404, 403), status)
        rows.user_name = masked(pl.Series(["admin", "test", "' OR 1=1--"]), rng.integers(0, 3, m),
                                kinds == T.LOGIN)  # fmt: skip
        return rows


class FakeAccounts(Campaign):
    """Fake / mule account creation (OWASP OAT-019) from a few devices.

    Trace: bursts of sign-up applications with templated e-mail addresses and sequential phone numbers,
    each followed by the phone check and device registration, from ``devices`` app installs (the same
    ``device.id`` across dozens of applications) on one or two networks; some applications fail KYC (400).
    """

    family: ClassVar[str] = "fake_accounts"
    duration_hours: float = 1.5
    accounts: int = Field(150, ge=1)
    devices: int = Field(4, ge=1)
    kyc_reject_share: float = Field(0.3, ge=0.0, le=1.0)

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        n = _n(self.accounts, intensity, rng)
        dev = rng.integers(0, self.devices, n)
        dev_ids = hex_ids(rng, self.devices, 8)
        asn_d = np.where(rng.random(self.devices) < 0.5, _pick(rng, T.MOBILE_IDX, self.devices),
                         _pick(rng, T.VPN_IDX, self.devices))  # fmt: skip
        ip_d = T.random_ips(rng, asn_d)
        ua_d = ctx.ua.app0 + 4 + rng.integers(0, 4, self.devices)  # Android (emulators)
        start = np.sort((t0 + rng.random(n) * (t1 - t0)).astype(np.int64))
        reject = (rng.random(n) < self.kyc_reject_share).astype(np.int64)
        ok = 1 - reject
        steps = [Step(T.SIGNUP, 400, 0.0, authed=False), Step(T.SIGNUP, 200, 0.0, authed=False),
                 Step(T.OTP_ISSUE, 200, 0.5, authed=False), Step(T.OTP_VERIFY, 200, 6.0, 0.3, authed=False),
                 Step(T.DEVICE_REGISTER, 200, 3.0, authed=False)]  # fmt: skip
        given = int(shared.integers(0, len(T.GIVEN)))
        fam = int(shared.integers(0, len(T.FAMILY)))
        seq = int(shared.integers(100, 900)) + np.arange(n)
        emails = pl.select(
            pl.concat_str(
                [
                    pl.lit(T.FAMILY[fam] + T.GIVEN[given]),
                    pl.Series(seq).cast(pl.String),
                    pl.lit("@" + T.MAIL_DOMAINS[int(shared.integers(0, 3))]),
                ]
            )  # fmt: skip
        ).to_series()
        rows, sess, _ = _sessions(
            ctx, rng, steps, [reject, ok, ok, ok, ok], start, ip=(ip_d[dev],), asn=(asn_d[dev],), ua=(ua_d[dev],),
            ja3=None, device=(dev_ids.gather(dev),), cust=np.full(n, -1), names=emails, unit=dev, plan=plan,
        )  # fmt: skip
        phone0 = int(shared.integers(10_000_000, 90_000_000))
        phone = pl.Series(phone0 + np.arange(n)).cast(pl.String)
        body = pl.select(
            pl.concat_str([pl.lit('{"email":"'), emails, pl.lit('","phone":"080'), phone, pl.lit('"}')])
        ).to_series()
        rows.body = masked(body, sess, rows.kind == T.SIGNUP)
        return rows


class BrokeragePump(Campaign):
    """The 2025 brokerage pump: taken-over accounts sell their holdings and buy one illiquid ticker.

    Per victim, inside one window shared by every bank hit: a login from a new device on a hosting or VPN
    address (phished password and code), portfolio, a market sell of the victim's large-cap holding, a quote
    and a buy of the same thinly traded ``ticker`` for about the proceeds.
    """

    family: ClassVar[str] = "brokerage_pump"
    duration_hours: float = 0.67
    accounts: int = Field(40, ge=1)
    otp_share: float = Field(0.5, ge=0.0, le=1.0)

    def ticker(self, shared: np.random.Generator) -> str:
        """The pumped small cap (the same at every bank)."""
        return T.SMALL_CAPS[int(shared.integers(0, len(T.SMALL_CAPS)))]

    def _generate(
        self,
        ctx: BankContext,
        plan: CampaignPlan,
        shared: np.random.Generator,
        rng: np.random.Generator,
        t0: int,
        t1: int,
        intensity: float,
    ) -> Rows:
        c = ctx.customers
        ticker = self.ticker(shared)
        holders = np.flatnonzero(c.brokerage)
        if holders.size == 0:
            holders = np.arange(c.n)
        v = min(_n(self.accounts, intensity, rng), holders.size)
        victims = rng.choice(holders, size=v, replace=False)
        relay_asn = np.where(rng.random(v) < 0.5, _pick(shared, T.HOSTING_IDX, v), _pick(shared, T.VPN_IDX, v))
        relay_ip = T.random_ips(rng, relay_asn)
        start = (t0 + rng.random(v) * (t1 - t0) * 0.7).astype(np.int64)
        otp = (rng.random(v) < self.otp_share).astype(np.int64)
        ones = np.ones(v, np.int64)
        steps = [Step(T.LOGIN, 200, 0.0), Step(T.OTP_ISSUE, 200, 0.5), Step(T.OTP_VERIFY, 200, 35.0, 0.4),
                 Step(T.PORTFOLIO, 200, 3.0, 0.5), Step(T.TRADE, 200, 20.0, 0.5), Step(T.QUOTE, 200, 8.0, 0.5),
                 Step(T.TRADE, 200, 15.0, 0.5)]  # fmt: skip
        ua = _browser_ua(ctx, rng, v)
        rows, sess, slot = _sessions(
            ctx, rng, steps, [ones, otp, otp, ones, ones, ones, ones], start, ip=(relay_ip,), asn=(relay_asn,),
            ua=(ua,), ja3=None, device=(hex_ids(rng, v, 8),), cust=victims, names=c.user_name.gather(victims),
            unit=np.arange(v), plan=plan,
        )  # fmt: skip
        sell = slot == 4
        buy = slot == 6
        holding = pl.Series(T.LARGE_CAPS).gather(c.holding[victims])
        instr = pl.select(
            pl.when(pl.Series(sell))
            .then(holding.gather(sess))
            .when(pl.Series(buy | (slot == 5)))
            .then(pl.lit(ticker))
            .otherwise(None)
        ).to_series()
        rows.instrument = masked(instr, np.arange(sess.size), sell | buy)
        rows.query = masked(pl.Series([f"symbol={ticker}"]), np.zeros(sess.size, np.int64), slot == 5)
        rows.side = masked(pl.Series(["sell", "buy"]), buy.astype(np.int64), sell | buy)
        proceeds = np.round(lognormal(rng, 1_500_000.0, 0.7, v), -3)[sess]
        amount = np.full(sess.size, np.nan)
        amount[sell] = proceeds[sell]
        amount[buy] = np.round(proceeds[buy] * 0.98, -3)
        rows.amount = amount
        return rows


def _concat(parts: list[Rows]) -> Rows:
    """Concatenate batches of the same campaign."""
    parts = [p for p in parts if len(p)]
    if len(parts) == 1:
        return parts[0]
    out = Rows(
        ts=np.concatenate([p.ts for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
        ip=np.concatenate([p.ip for p in parts]),
        asn=np.concatenate([p.asn for p in parts]),
        ua=np.concatenate([p.ua for p in parts]),
        status=np.concatenate([p.status for p in parts]),
    )
    for name in ("attack_id", "user_name", "user_id", "session_id", "device_id", "obj", "path", "query", "body",
                 "payee", "instrument", "side"):  # fmt: skip
        if any(getattr(p, name) is not None for p in parts):
            setattr(out, name, pl.concat([
                getattr(p, name) if getattr(p, name) is not None
                else pl.repeat(None, len(p), dtype=pl.String, eager=True) for p in parts]))  # fmt: skip
    if any(p.ja3 is not None for p in parts):
        if not all(p.ja3 is not None for p in parts):
            raise ValueError("_concat: set ja3 on every part or none")
        out.ja3 = np.concatenate([p.ja3 for p in parts if p.ja3 is not None])
    if any(p.amount is not None for p in parts):
        out.amount = np.concatenate([p.amount if p.amount is not None else np.full(len(p), np.nan) for p in parts])
    if any(p.referrer is not None for p in parts):
        out.referrer = np.concatenate([p.referrer if p.referrer is not None else np.zeros(len(p), bool) for p in parts])
    return out


#: Generator class of each family.
CAMPAIGN_TYPES: dict[str, type[Campaign]] = {
    cls.family: cls
    for cls in (
        CredentialStuffing,
        CredentialStuffingLowSlow,
        PasswordSpraying,
        AitmPhishing,
        SimSwap,
        InfostealerReplay,
        Scraping,
        BolaEnumeration,
        Injection,
        FakeAccounts,
        BrokeragePump,
    )
}
assert tuple(CAMPAIGN_TYPES) == ATTACK_FAMILIES  # noqa: S101 - a module invariant


# ------------------------------------------------------------------------------------------------ planning
def plan_campaigns(config: SimulationConfig, profiles: list[BankProfile]) -> list[CampaignPlan]:
    """Decide which campaigns run, with which parameters, where and when.

    One campaign per family, hitting every bank whose profile gives the family a positive intensity.
    Windows are drawn independently per bank, except: the low-and-slow stuffing starts at each bank
    ``stagger_hours`` after the previous one (same list, same pool), and the brokerage pump shares one window
    (during Tokyo Stock Exchange hours) across its banks.

    Parameters
    ----------
    config : SimulationConfig
        Seed, period and intensities.
    profiles : list of BankProfile
        The banks and their campaign mixes.

    Returns
    -------
    list of CampaignPlan
        The campaign catalogue, in family order.
    """
    rng = np.random.default_rng([config.seed, 5_000])
    t0 = start_us(config.start)
    period = config.days * DAY_US
    plans: list[CampaignPlan] = []
    generators: dict[str, Campaign] = {}
    for family, cls in CAMPAIGN_TYPES.items():
        try:
            generators[family] = cls.model_validate(config.campaign_params.get(family, {}))
        except ValidationError as exc:
            raise ConfigError(
                f"SimulationConfig.campaign_params[{family!r}] is invalid for {cls.__name__}: {exc}"
            ) from exc
    segment = period // config.waves
    for wave in range(config.waves):
        seg0 = t0 + wave * segment
        for index, (family, gen) in enumerate(generators.items(), start=1):
            number = wave * len(generators) + index
            banks = [p for p in profiles if p.intensity(family) > 0]
            if not banks:
                continue
            duration = int(min(gen.duration_hours * HOUR_US, segment * 0.9))
            targets: dict[str, BankTarget] = {}
            if isinstance(gen, CredentialStuffingLowSlow):
                order = [banks[i] for i in rng.permutation(len(banks))]
                stagger = int(min(gen.stagger_hours * HOUR_US, max(0, segment - duration) / max(1, len(order))))
                first = seg0 + int(rng.uniform(0.05, 0.2) * segment)
                for k, p in enumerate(order):
                    start = min(first + k * stagger, seg0 + segment - duration)
                    targets[p.bank_id] = _target(start, start + duration, p.intensity(family))
            elif isinstance(gen, BrokeragePump):
                start = _market_window(rng, config, duration, seg0, seg0 + segment)
                for p in banks:
                    jitter = int(rng.integers(-5, 6)) * MIN_US
                    targets[p.bank_id] = _target(start + jitter, start + jitter + duration, p.intensity(family))
            else:
                for p in banks:
                    start = seg0 + int(rng.random() * max(1, segment - duration))
                    targets[p.bank_id] = _target(start, start + duration, p.intensity(family))
            plans.append(
                CampaignPlan(
                    campaign_id=f"cmp-{config.seed:04d}-{number:02d}",
                    family=family,
                    number=number,
                    generator=type(gen).__name__,
                    params=gen.model_dump(mode="json"),
                    targets=targets,
                )
            )
    return plans


def _target(s: int, e: int, intensity: float) -> BankTarget:
    return BankTarget(
        start=dt.datetime.fromtimestamp(s / US_PER_S, tz=dt.UTC),
        end=dt.datetime.fromtimestamp(e / US_PER_S, tz=dt.UTC),
        intensity=intensity,
    )


def _market_window(rng: np.random.Generator, config: SimulationConfig, duration: int, lo: int, hi: int) -> int:
    """A start in TSE trading hours (09:00-11:30, 12:30-15:00 JST) on a weekday starting in [lo, hi)."""
    t0 = start_us(config.start)
    days = [d for d in range(config.days) if lo <= t0 + d * DAY_US < hi] or [int((lo - t0) // DAY_US)]
    weekdays = [d for d in days if (config.start + dt.timedelta(days=d)).weekday() < 5] or days
    day = weekdays[int(rng.integers(0, len(weekdays)))]
    hour = float(rng.choice([9.5, 10.0, 12.75, 13.5, 14.0]))
    s = t0 + day * DAY_US + int(hour * HOUR_US)
    return int(min(s, t0 + config.days * DAY_US - duration))


def instantiate(plan: CampaignPlan) -> Campaign:
    """Rebuild the generator of a catalogue entry from its parameters."""
    return CAMPAIGN_TYPES[plan.family].model_validate(plan.params)
