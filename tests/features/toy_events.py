"""Hand-built canonical events for feature and model tests (vectorised, so it also scales to 1M rows)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from mamori.events import conform

START = dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC)

# One benign session: (action, method, path template, status, outcome)
_SESSION = [
    ("login", "POST", "/api/v1/auth/login", 200, "success"),
    ("otp_issue", "POST", "/api/v1/auth/otp", 200, "success"),
    ("otp_verify", "POST", "/api/v1/auth/otp/verify", 200, "success"),
    (None, "GET", "/api/v1/accounts/{acct}/summary", 200, None),
    (None, "GET", "/api/v1/accounts/{acct}/history", 200, None),
    ("payee_add", "POST", "/api/v1/payees", 201, "success"),
    ("transfer", "POST", "/api/v1/transfers", 201, "success"),
    ("logout", "POST", "/api/v1/auth/logout", 200, "success"),
]


def _frame(columns: dict[str, object]) -> pl.DataFrame:
    """Build a frame, turning NumPy object arrays into lists so polars infers strings."""
    fixed = {k: (v.tolist() if isinstance(v, np.ndarray) and v.dtype == object else v) for k, v in columns.items()}
    return pl.DataFrame(fixed, strict=False)


def _ts(seconds: np.ndarray) -> pl.Series:
    base = int(START.timestamp() * 1e6)
    us = base + (np.asarray(seconds) * 1e6).astype(np.int64)
    return pl.Series("@timestamp", us).cast(pl.Datetime("us", "UTC"))


def benign(n_sessions: int = 200, n_users: int = 60, span_s: float = 86400.0, seed: int = 0) -> pl.DataFrame:
    """Normal customer sessions: each user has a home IP, ASN and device; lognormal think times."""
    rng = np.random.default_rng(seed)
    k = len(_SESSION)
    user = rng.integers(0, n_users, n_sessions)
    start = np.sort(rng.uniform(0, span_s, n_sessions))
    gaps = rng.lognormal(mean=2.0, sigma=0.8, size=(n_sessions, k))
    gaps[:, 0] = 0.0
    times = (start[:, None] + np.cumsum(gaps, axis=1)).ravel()
    u = np.repeat(user, k)
    step = np.tile(np.arange(k), n_sessions)
    sess = np.repeat(np.arange(n_sessions), k)
    # A third of the sessions skip the payee and transfer steps.
    keep = ~((np.repeat(rng.random(n_sessions) < 0.33, k)) & np.isin(step, [5, 6]))
    # Occasional mistyped password: the login fails once.
    acts = np.array([s[0] or "" for s in _SESSION], dtype=object)[step]
    status = np.array([s[3] for s in _SESSION])[step]
    outcome = np.array([s[4] or "" for s in _SESSION], dtype=object)[step]
    typo = (step == 0) & (rng.random(step.size) < 0.05)
    status = np.where(typo, 401, status)
    outcome = np.where(typo, "failure", outcome)
    paths = np.array([s[2] for s in _SESSION], dtype=object)[step]
    acct = (10_000_000 + u * 7919).astype(str)
    paths = np.array([p.replace("{acct}", a) for p, a in zip(paths, acct, strict=True)], dtype=object)
    amount = np.where(step == 6, np.round(rng.lognormal(10.0, 0.6, step.size)), np.nan)
    frame = _frame(
        {
            "@timestamp": _ts(times),
            "organization.id": "bank-a",
            "source.ip": np.char.add("198.51.100.", (u % 250).astype(str)).astype(object),
            "source.as.number": 2516 + (u % 3),
            "source.as.organization.name": "KDDI residential",
            "url.path": paths,
            "url.query": None,
            "http.request.method": np.array([s[1] for s in _SESSION], dtype=object)[step],
            "http.request.body.content": np.where(step == 6, '{"amount": 1000}', None),
            "http.response.status_code": status.astype(np.int32),
            "user_agent.original": "MamoriBank-iOS/5.2 (iPhone; iOS 18.1)",
            "tls.client.ja3": "ja3-ios",
            "user.name": np.char.add("customer", u.astype(str)).astype(object),
            "user.id": np.char.add("u", u.astype(str)).astype(object),
            "session.id": np.char.add("s", sess.astype(str)).astype(object),
            "device.id": np.char.add("d", u.astype(str)).astype(object),
            "event.action": np.where(acts == "", None, acts),
            "event.outcome": np.where(outcome == "", None, outcome),
            "banking.amount": amount,
            "banking.payee.id": np.where(step >= 5, np.char.add("p", (u % 5).astype(str)), None),
            "labels.is_attack": False,
            "labels.attack_family": None,
        }
    ).filter(pl.Series(keep))
    return conform(frame)


def stuffing_burst(n_tries: int = 50, at_s: float = 40_000.0, gap_s: float = 2.0, seed: int = 1) -> pl.DataFrame:
    """One hosting-provider IP tries ``n_tries`` different usernames at a regular pace; all get 401."""
    rng = np.random.default_rng(seed)
    times = at_s + np.arange(n_tries) * gap_s + rng.uniform(0, 0.05, n_tries)
    frame = _frame(
        {
            "@timestamp": _ts(times),
            "organization.id": "bank-a",
            "source.ip": "203.0.113.7",
            "source.as.number": 14061,
            "source.as.organization.name": "DigitalOcean",
            "url.path": "/api/v1/auth/login",
            "http.request.method": "POST",
            "http.response.status_code": np.full(n_tries, 401, dtype=np.int32),
            "user_agent.original": "python-requests/2.32",
            "tls.client.ja3": "ja3-python",
            "user.name": [f"victim{i}@example.jp" for i in range(n_tries)],
            "event.action": "login",
            "event.outcome": "failure",
            "labels.is_attack": True,
            "labels.attack_family": "credential_stuffing",
        }
    )
    return conform(frame)


def sqli_probe(n: int = 30, at_s: float = 60_000.0, seed: int = 2) -> pl.DataFrame:
    """A scanner sending SQL injection and traversal payloads in query strings."""
    rng = np.random.default_rng(seed)
    payloads = [
        "id=1%27%20OR%20%271%27%3D%271",
        "q=1 UNION SELECT username,password FROM users--",
        "file=../../../../etc/passwd",
        "name=<script>alert(document.cookie)</script>",
        "id=1;SELECT pg_sleep(5)",
    ]
    times = at_s + np.cumsum(rng.uniform(0.5, 3.0, n))
    frame = _frame(
        {
            "@timestamp": _ts(times),
            "organization.id": "bank-a",
            "source.ip": "192.0.2.66",
            "source.as.number": 16276,
            "url.path": "/api/v1/search",
            "url.query": [payloads[i % len(payloads)] for i in range(n)],
            "http.request.method": "GET",
            "http.response.status_code": np.full(n, 400, dtype=np.int32),
            "user_agent.original": "sqlmap/1.8",
            "labels.is_attack": True,
            "labels.attack_family": "injection",
        }
    )
    return conform(frame)


def toy_bank(n_sessions: int = 200, n_users: int = 60, seed: int = 0) -> pl.DataFrame:
    """Benign traffic plus one stuffing burst and one injection probe, in time order."""
    return pl.concat(
        [benign(n_sessions, n_users, seed=seed), stuffing_burst(seed=seed + 1), sqli_probe(seed=seed + 2)]
    ).sort("@timestamp", maintain_order=True)
