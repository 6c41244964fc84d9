"""Domain-constrained evasion: the attacker may change only what it controls, mapped to feature columns by name.

An attacker against a bank's API cannot change which endpoint it must call, whether the victim's login fails,
or the victim's history. It can change how fast and when it sends requests, which IP addresses and networks
(ASNs) it sends them from, the user agent and TLS client it presents, and how it encodes its payloads. Each
such capability is mapped here to the :class:`~mamori.features.FeatureSpec` columns it moves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mamori.errors import ConfigError
from mamori.features import FeatureSpec

__all__ = ["ATTACKER_CONTROLS", "controlled_columns", "mimicry_evasion"]

logger = logging.getLogger(__name__)

#: Capability -> (plain-language description, exact column names, column-name prefixes, whole feature groups).
ATTACKER_CONTROLS: dict[str, dict[str, Any]] = {
    "rate_timing": {
        "description": "request rate and timing (slowing down, spreading requests over the day)",
        "names": ("ip_requests_short", "ip_requests_long", "ip_gap_seconds", "ip_gap_cv", "session_requests",
                  "session_requests_short", "session_gap_seconds", "session_gap_cv", "session_age_seconds",
                  "hour_sin", "hour_cos", "is_night", "is_weekend", "asn_requests_long", "ja3_requests_long"),
        "prefixes": (),
        "groups": (),
    },
    "ip_asn_rotation": {
        "description": "IP address and network (ASN) rotation, residential proxies instead of hosting networks",
        "names": ("hosting_asn", "session_distinct_ips", "session_distinct_asns", "session_hosting_at_login",
                  "user_new_asn", "user_hosting_share", "user_distinct_ips_day", "username_distinct_ips_day"),
        "prefixes": (),
        "groups": ("ip", "asn"),
    },
    "user_agent": {
        "description": "user agent and TLS client fingerprint (looking like a common browser)",
        "names": ("ua_missing", "ua_length", "ua_scripted", "session_distinct_user_agents"),
        "prefixes": (),
        "groups": ("fingerprint",),
    },
    "payload_encoding": {
        "description": "payload encoding and obfuscation (case, percent-encoding, comments, whitespace)",
        "names": (),
        "prefixes": ("query_", "body_", "kw_"),
        "groups": ("ngram_payload",),
    },
}


def controlled_columns(spec: FeatureSpec, controls: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Return, per attacker capability, the indices of the feature columns it moves.

    Parameters
    ----------
    spec : FeatureSpec
        The model's columns.
    controls : sequence of str or None, default=None
        Capabilities from :data:`ATTACKER_CONTROLS`; None means all of them.

    Returns
    -------
    dict of str to numpy.ndarray
        Sorted int64 column indices per capability (possibly empty when the model lacks those columns).

    Raises
    ------
    ConfigError
        If a capability is unknown.
    """
    names = list(controls) if controls is not None else list(ATTACKER_CONTROLS)
    unknown = [c for c in names if c not in ATTACKER_CONTROLS]
    if unknown:
        raise ConfigError(f"controlled_columns: unknown capabilities {unknown}; known: {sorted(ATTACKER_CONTROLS)}.")
    out: dict[str, np.ndarray] = {}
    for control in names:
        rule = ATTACKER_CONTROLS[control]
        idx = [
            i for i, (name, group) in enumerate(zip(spec.names, spec.groups, strict=True))
            if name in rule["names"] or group in rule["groups"] or name.startswith(tuple(rule["prefixes"]) or ("\0",))
        ]
        out[control] = np.asarray(sorted(idx), dtype=np.int64)
    return out


def mimicry_evasion(
    score: Callable[[np.ndarray], np.ndarray],
    X_attack: np.ndarray,  # noqa: N803
    X_benign: np.ndarray,  # noqa: N803
    threshold: float,
    columns: np.ndarray | None,
    efforts: Sequence[float],
    *,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Black-box mimicry: move the controlled columns of detected attack rows towards real benign rows.

    For effort ``a`` each attack row's controlled columns become ``(1 - a) * attack + a * donor`` where the donor
    is a benign row drawn at random from ``X_benign`` (the attacker copies how ordinary customers look). Columns
    outside ``columns`` keep the attack's values. ``a = 1`` means the controlled behaviour is fully copied.

    Parameters
    ----------
    score : callable
        ``score(X) -> logits`` on raw (unstandardised) feature rows.
    X_attack : numpy.ndarray
        Shape ``(n, d)``: attack rows the model currently detects (raw features).
    X_benign : numpy.ndarray
        Shape ``(m, d)``: benign rows to copy from (raw features), ``m >= 1``.
    threshold : float
        Alert when ``score > threshold``.
    columns : numpy.ndarray or None
        Column indices the attacker controls; None means every column (the unconstrained reference).
    efforts : sequence of float
        Values of ``a`` in ``[0, 1]``.
    seed : int, default=0
        Seeds the donor draw.

    Returns
    -------
    list of dict
        Per effort: ``effort``, ``success_rate`` (share of the rows no longer alerted) and ``n``.

    Raises
    ------
    ConfigError
        If there are no attack or no benign rows, or an effort is outside ``[0, 1]``.
    """
    if len(X_attack) == 0 or len(X_benign) == 0:
        raise ConfigError(
            f"mimicry_evasion: needs detected attack rows and benign rows; got {len(X_attack)} and {len(X_benign)}."
        )
    rng = np.random.default_rng(seed)
    donors = X_benign[rng.integers(0, len(X_benign), size=len(X_attack))]
    mask = np.zeros(X_attack.shape[1], dtype=bool)
    if columns is None:
        mask[:] = True
    else:
        mask[columns] = True
    rows = []
    for a in efforts:
        if not 0.0 <= a <= 1.0:
            raise ConfigError(f"mimicry_evasion: efforts must be in [0, 1]; got {a}.")
        X = X_attack.copy()  # noqa: N806
        X[:, mask] = (1.0 - a) * X_attack[:, mask] + a * donors[:, mask]
        evaded = score(X.astype(np.float32)) <= threshold
        rows.append({"effort": float(a), "success_rate": float(evaded.mean()), "n": int(len(X))})
    return rows
