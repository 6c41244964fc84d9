"""Consortium members of the TAXII server: API keys, organisations, collection permissions, rate limits."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from mamori.errors import IntelError
from mamori.intel.stix import identity
from mamori.store import Store, utc_now
from mamori.store.tables import MemberRow

__all__ = ["Member", "add_member", "authenticate", "get_member", "list_members", "revoke_member"]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
KEY_PREFIX = "mamori_"


@dataclass(frozen=True)
class Member:
    """A member as the server sees it (never holds the key itself).

    Attributes
    ----------
    name : str
        Login name (HTTP Basic user name).
    organization : str
        The member's organisation; TLP:AMBER+STRICT objects stay inside it.
    identity_id : str
        The STIX ``identity`` id of the organisation.
    can_read, can_write : tuple of str
        Collection ids or aliases, or ``"*"`` for all.
    rate_limit : int
        Requests per minute (0 = unlimited).
    admin : bool
        May read every status resource and delete any object.
    revoked : bool
        Revoked members cannot authenticate.
    created_at : str
        When the member was added.
    """

    name: str
    organization: str
    identity_id: str
    can_read: tuple[str, ...]
    can_write: tuple[str, ...]
    rate_limit: int
    admin: bool
    revoked: bool
    created_at: str

    def may_read(self, collection_id: str, alias: str | None = None) -> bool:
        """Whether this member may read a collection.

        Parameters
        ----------
        collection_id : str
            Collection id.
        alias : str or None, default=None
            Collection alias.

        Returns
        -------
        bool
        """
        return _allowed(self.can_read, collection_id, alias)

    def may_write(self, collection_id: str, alias: str | None = None) -> bool:
        """Whether this member may add objects to a collection.

        Parameters
        ----------
        collection_id : str
            Collection id.
        alias : str or None, default=None
            Collection alias.

        Returns
        -------
        bool
        """
        return _allowed(self.can_write, collection_id, alias)


def _allowed(grants: Sequence[str], collection_id: str, alias: str | None) -> bool:
    return "*" in grants or collection_id in grants or (alias is not None and alias in grants)


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _member(row: MemberRow) -> Member:
    return Member(row.name, row.organization, row.identity_id, tuple(json.loads(row.can_read)),
                  tuple(json.loads(row.can_write)), row.rate_limit, bool(row.admin), bool(row.revoked),
                  row.created_at)


def add_member(store: Store, name: str, organization: str, *, read: Sequence[str] = ("*",),
               write: Sequence[str] = (), rate_limit: int = 600, admin: bool = False,
               actor: str = "cli") -> tuple[Member, str]:
    """Add a member and return it with its new API key (shown once; only its SHA-256 is stored).

    Parameters
    ----------
    store : Store
        The open store.
    name : str
        Login name: letters, digits, ``_.@-``, at most 100 characters.
    organization : str
        Organisation name.
    read, write : sequence of str, default=("*",) and ()
        Collections (ids or aliases, ``"*"`` = all) the member may read / write.
    rate_limit : int, default=600
        Requests per minute, 0 = unlimited.
    admin : bool, default=False
        Administrator rights.
    actor : str, default="cli"
        Who adds the member (audit log).

    Returns
    -------
    tuple of (Member, str)
        The member and its API key.

    Raises
    ------
    IntelError
        When the name is malformed or already taken.
    """
    if not _NAME_RE.match(name):
        raise IntelError(f"add_member: member name {name!r} must be 1-100 characters of letters, digits, '_.@-'")
    if not organization:
        raise IntelError(f"add_member: member {name!r} needs an organization")
    if rate_limit < 0:
        raise IntelError(f"add_member: rate_limit must be >= 0 requests/minute, got {rate_limit}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with store.write() as session:
        if session.scalars(select(MemberRow).where(MemberRow.name == name)).first() is not None:
            raise IntelError(f"add_member: a member named {name!r} exists already; revoke it or pick another name")
        row = MemberRow(name=name, organization=organization, identity_id=identity(organization).id,
                        key_hash=_hash_key(key), can_read=json.dumps(list(read)), can_write=json.dumps(list(write)),
                        rate_limit=rate_limit, admin=admin, revoked=False, created_at=utc_now())
        session.add(row)
        session.flush()
        store.audit.append(actor, "member.add", f"member:{name}",
                           {"organization": organization, "read": list(read), "write": list(write),
                            "rate_limit": rate_limit, "admin": admin}, session=session)
        member = _member(row)
    logger.info("member %s (%s) added", name, organization)
    return member, key


def list_members(store: Store, *, include_revoked: bool = True) -> list[Member]:
    """Every member, in the order they were added.

    Parameters
    ----------
    store : Store
        The open store.
    include_revoked : bool, default=True
        Also list revoked members.

    Returns
    -------
    list of Member
    """
    with store.read() as session:
        stmt = select(MemberRow).order_by(MemberRow.id)
        if not include_revoked:
            stmt = stmt.where(MemberRow.revoked.is_(False))
        return [_member(r) for r in session.scalars(stmt)]


def get_member(store: Store, name: str) -> Member:
    """One member by name.

    Parameters
    ----------
    store : Store
        The open store.
    name : str
        Member name.

    Returns
    -------
    Member

    Raises
    ------
    IntelError
        When there is no such member.
    """
    with store.read() as session:
        row = session.scalars(select(MemberRow).where(MemberRow.name == name)).first()
        if row is None:
            raise IntelError(f"no member named {name!r}; see `mamori intel members list`")
        return _member(row)


def revoke_member(store: Store, name: str, *, actor: str = "cli") -> Member:
    """Revoke a member's API key; it can no longer authenticate.

    Parameters
    ----------
    store : Store
        The open store.
    name : str
        Member name.
    actor : str, default="cli"
        Who revokes (audit log).

    Returns
    -------
    Member
        The member, now revoked.

    Raises
    ------
    IntelError
        When there is no such member.
    """
    with store.write() as session:
        row = session.scalars(select(MemberRow).where(MemberRow.name == name)).first()
        if row is None:
            raise IntelError(f"revoke_member: no member named {name!r}; see `mamori intel members list`")
        row.revoked = True
        store.audit.append(actor, "member.revoke", f"member:{name}", {}, session=session)
        session.flush()
        member = _member(row)
    logger.info("member %s revoked", name)
    return member


def authenticate(store: Store, key: str, name: str | None = None) -> Member | None:
    """The member holding this API key, or None (unknown key, revoked member, or a name that does not match).

    Parameters
    ----------
    store : Store
        The open store.
    key : str
        The API key presented.
    name : str or None, default=None
        The user name presented with HTTP Basic; must match the key's member when given.

    Returns
    -------
    Member or None
    """
    digest = _hash_key(key)
    with store.read() as session:
        row = session.scalars(select(MemberRow).where(MemberRow.key_hash == digest)).first()
        if row is None or row.revoked or (name is not None and not secrets.compare_digest(name, row.name)):
            return None
        return _member(row)
