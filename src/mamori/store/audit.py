"""The hash-chained audit log: who did what to which subject, and when.

Each row carries the SHA-256 of the previous row (``prev_hash``) and its own hash over its id, time,
actor, action, subject, canonical details and ``prev_hash``. Changing, inserting or deleting any row
in the middle breaks the chain at that row; :meth:`AuditLog.verify` finds the first such row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mamori.errors import StoreError
from mamori.store.store import utc_now
from mamori.store.tables import AuditRow

if TYPE_CHECKING:
    from mamori.store.store import Store

__all__ = ["GENESIS_HASH", "AuditEntry", "AuditLog", "AuditReport"]

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
_AUDIT_LOCK = 7_270_002


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log row as read back.

    Attributes
    ----------
    id : int
        Position in the chain (1, 2, ...).
    at : str
        UTC time, RFC 3339 with microseconds.
    actor, action, subject : str
        Who did what to which thing (``"member:bank-a"``, ``"taxii.add"``, ``"collection:<id>"``).
    details : dict
        Free-form JSON details.
    prev_hash, hash : str
        SHA-256 hex digests linking the chain.
    """

    id: int
    at: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditReport:
    """The outcome of :meth:`AuditLog.verify`.

    Attributes
    ----------
    ok : bool
        True when every row checks out.
    rows_checked : int
        Rows read before stopping.
    first_bad_id : int or None
        Id of the first row that does not check out.
    reason : str
        Why that row fails, or ``""``.
    head_hash : str
        Hash of the last good row (the chain head when ``ok``).
    """

    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    reason: str = ""
    head_hash: str = field(default=GENESIS_HASH)


def _canonical(details: Mapping[str, Any]) -> str:
    try:
        return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"audit details must be JSON-serialisable; {exc}") from exc


def row_hash(id_: int, at: str, actor: str, action: str, subject: str, details: str, prev_hash: str) -> str:
    """SHA-256 of one audit row's fields (``details`` already canonical JSON).

    Parameters
    ----------
    id_ : int
        Row id.
    at, actor, action, subject, details, prev_hash : str
        The row's fields.

    Returns
    -------
    str
        Hex digest.
    """
    material = json.dumps([id_, at, actor, action, subject, details, prev_hash], separators=(",", ":"),
                          ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class AuditLog:
    """Append-only, hash-chained log of every write.

    Parameters
    ----------
    store : Store
        The open store the log lives in.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, actor: str, action: str, subject: str, details: Mapping[str, Any] | None = None,
               *, session: Session | None = None) -> AuditEntry:
        """Append one entry and return it.

        Parameters
        ----------
        actor : str
            Who acted, e.g. ``"member:bank-a"`` or ``"cli:alice"``.
        action : str
            What they did, e.g. ``"taxii.add_objects"``.
        subject : str
            What it was done to, e.g. ``"collection:<uuid>"``.
        details : mapping, default=None
            JSON-serialisable details (no customer data).
        session : sqlalchemy.orm.Session or None, default=None
            A session from :meth:`Store.write` to append inside that transaction (so the audit row commits
            or rolls back with the change it records); by default a transaction of its own.

        Returns
        -------
        AuditEntry
            The stored row.

        Raises
        ------
        StoreError
            When the row cannot be written.
        """
        canonical = _canonical(details or {})
        if session is not None:
            return self._append(session, actor, action, subject, canonical)
        with self.store.write() as own:
            return self._append(own, actor, action, subject, canonical)

    def _append(self, session: Session, actor: str, action: str, subject: str, details: str) -> AuditEntry:
        self.store.lock(session, _AUDIT_LOCK)
        last = session.execute(select(AuditRow.id, AuditRow.hash).order_by(AuditRow.id.desc()).limit(1)).first()
        prev_id, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
        new_id = prev_id + 1
        at = utc_now()
        digest = row_hash(new_id, at, actor, action, subject, details, prev_hash)
        session.add(AuditRow(id=new_id, at=at, actor=actor, action=action, subject=subject, details=details,
                             prev_hash=prev_hash, hash=digest))
        session.flush()
        logger.debug("audit %d %s %s %s", new_id, actor, action, subject)
        return AuditEntry(new_id, at, actor, action, subject, json.loads(details), prev_hash, digest)

    def entries(self, *, since_id: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Read entries in chain order.

        Parameters
        ----------
        since_id : int, default=0
            Return rows with an id greater than this.
        limit : int or None, default=None
            At most this many rows.

        Returns
        -------
        list of AuditEntry
        """
        with self.store.read() as session:
            stmt = select(AuditRow).where(AuditRow.id > since_id).order_by(AuditRow.id)
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_entry(r) for r in session.scalars(stmt)]

    def count(self) -> int:
        """Number of rows in the log."""
        with self.store.read() as session:
            return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)

    def _iter_rows(self, batch: int = 5000) -> Iterator[AuditRow]:
        last = 0
        while True:
            with self.store.read() as session:
                rows = list(session.scalars(select(AuditRow).where(AuditRow.id > last).order_by(AuditRow.id)
                                            .limit(batch)))
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def verify(self) -> AuditReport:
        """Recompute the chain and report the first row that was changed, inserted or removed.

        Returns
        -------
        AuditReport
            ``ok`` is False and ``first_bad_id`` names the row when the chain is broken.

        Raises
        ------
        StoreError
            When the log cannot be read.

        Notes
        -----
        Removing rows from the *end* of the log cannot be seen from the chain alone; keep the head hash
        (``AuditReport.head_hash``) somewhere else (a ticket, a signed report) to detect truncation.
        """
        expected_prev = GENESIS_HASH
        expected_id = 1
        checked = 0
        for row in self._iter_rows():
            checked += 1
            if row.id != expected_id:
                return AuditReport(False, checked, row.id, f"row id {row.id} follows {expected_id - 1}: rows "
                                   "were removed or inserted", expected_prev)
            if row.prev_hash != expected_prev:
                return AuditReport(False, checked, row.id, "prev_hash does not match the hash of the row before",
                                   expected_prev)
            digest = row_hash(row.id, row.at, row.actor, row.action, row.subject, row.details, row.prev_hash)
            if digest != row.hash:
                return AuditReport(False, checked, row.id, "row content does not match its hash (row was edited)",
                                   expected_prev)
            expected_prev = row.hash
            expected_id += 1
        return AuditReport(True, checked, None, "", expected_prev)


def _entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(r.id, r.at, r.actor, r.action, r.subject, json.loads(r.details), r.prev_hash, r.hash)
