"""Security controls and logging, as the assessment finds them: PKI state, audit-log verification, retention.

Nothing here changes anything: the PKI directory and the store are only read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from mamori.errors import ConfigError

__all__ = ["inspect_pki", "inspect_store"]

logger = logging.getLogger(__name__)


def _days_between(first: str | None, last: str | None) -> float:
    if not first or not last:
        return 0.0
    a, b = dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(last)
    return (b - a).total_seconds() / 86400.0


def inspect_pki(directory: Path | None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Report the state of the consortium's PKI directory (``mamori pki init``): CA, coordinator cert, members.

    Parameters
    ----------
    directory : pathlib.Path or None
        The PKI directory; None reports that no PKI was given.
    now : datetime.datetime or None, default=None
        The time certificate validity is judged at (UTC); None means now.

    Returns
    -------
    dict
        ``configured`` (bool), ``directory``; when configured: ``ca`` and ``server`` (subject, ``not_after``,
        ``days_left``, ``sha256`` fingerprint; None when the file is missing), ``members_active``,
        ``members_revoked``, ``members`` (name, status, fingerprint; no key material) and
        ``private_key_files_mode_ok`` (every ``*.key`` file readable by its owner only).

    Raises
    ------
    ConfigError
        If ``directory`` is not a directory, or a certificate or the member registry cannot be read.
    """
    if directory is None:
        return {"configured": False, "directory": None, "members_active": 0, "members_revoked": 0}
    if not directory.is_dir():
        raise ConfigError(f"inspect_pki: {directory} is not a directory; pass the PKI directory of "
                          "'mamori pki init --dir DIR' (or leave it out to report that no PKI was given).")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from mamori.deploy import PKIPaths, list_members

    now = now or dt.datetime.now(dt.UTC)
    paths = PKIPaths(directory)

    def cert(path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            c = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"inspect_pki: {path} is not a PEM certificate ({exc}).") from exc
        return {"subject": c.subject.rfc4514_string(), "not_after": c.not_valid_after_utc.isoformat(),
                "days_left": (c.not_valid_after_utc - now).total_seconds() / 86400.0,
                "sha256": c.fingerprint(hashes.SHA256()).hex()}

    members = list_members(directory)
    keys = sorted(directory.rglob("*.key"))
    return {
        "configured": True,
        "directory": str(directory),
        "ca": cert(paths.ca_cert),
        "server": cert(paths.server_cert),
        "members_active": sum(m.status == "active" for m in members),
        "members_revoked": sum(m.status == "revoked" for m in members),
        "members": [{"name": m.name, "status": m.status, "fingerprint": m.fingerprint} for m in members],
        "private_key_files": len(keys),
        "private_key_files_mode_ok": all((k.stat().st_mode & 0o077) == 0 for k in keys),
    }


def inspect_store(db: str | None) -> dict[str, Any]:
    """Verify the audit log and measure what the store retains (audit rows, model checkpoints, privacy ledger).

    Parameters
    ----------
    db : str or None
        Store URL; None reports that no store was given.

    Returns
    -------
    dict
        ``source``; with a store: ``audit_log`` (verification result, rows, first/last entry time, actions),
        ``retention`` (per kind of record: rows, oldest, newest, span in days; ``automatic_expiry``: False,
        since mamori deletes nothing by itself), ``rounds`` (global-model hash per registered round) and
        ``epsilon_ledger`` (privacy-ledger totals per member and unit).
    """
    if db is None:
        return {"source": "none"}
    from mamori.store import AuditLog, ModelRegistry, PrivacyLedger, open_store

    store = open_store(db)
    try:
        audit = AuditLog(store)
        report = audit.verify()
        n_audit = audit.count()
        first = audit.entries(limit=1)
        last = audit.entries(since_id=max(n_audit - 1, 0), limit=1) if n_audit else []
        actions = Counter(e.action for e in audit.entries())
        records = ModelRegistry(store).list()
        ledger = PrivacyLedger(store)
        entries = ledger.entries()
        totals = ledger.totals()
    finally:
        store.close()
    first_at = first[0].at if first else None
    last_at = last[-1].at if last else None
    created = sorted(r.created_at for r in records)
    recorded = sorted(e.recorded_at for e in entries)
    return {
        "source": db,
        "audit_log": {"ok": bool(report.ok), "rows_checked": int(report.rows_checked), "rows": n_audit,
                      "first_bad_id": report.first_bad_id, "reason": report.reason, "head_hash": report.head_hash,
                      "first_at": first_at, "last_at": last_at, "actions": dict(sorted(actions.items()))},
        "retention": {
            "automatic_expiry": False,
            "kinds": [
                {"kind": "audit-log rows", "rows": n_audit, "oldest": first_at, "newest": last_at,
                 "span_days": _days_between(first_at, last_at)},
                {"kind": "model checkpoints", "rows": len(records), "oldest": created[0] if created else None,
                 "newest": created[-1] if created else None,
                 "span_days": _days_between(created[0], created[-1]) if created else 0.0},
                {"kind": "privacy-ledger entries", "rows": len(entries), "oldest": recorded[0] if recorded else None,
                 "newest": recorded[-1] if recorded else None,
                 "span_days": _days_between(recorded[0], recorded[-1]) if recorded else 0.0},
            ],
        },
        "rounds": [{"name": r.name, "round": int(r.version), "sha256": r.sha256, "created_at": r.created_at}
                   for r in records],
        "epsilon_ledger": [{"member": t.member, "unit": t.unit, "epsilon": float(t.epsilon), "delta": float(t.delta),
                            "runs": int(t.runs), "rounds": int(t.rounds), "mechanisms": list(t.mechanisms)}
                           for t in totals],
    }
