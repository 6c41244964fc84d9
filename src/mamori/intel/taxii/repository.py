"""TAXII resources in the store: collections, object versions, status resources, with TLP visibility."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select
from sqlalchemy.orm import aliased

from mamori.errors import IntelError
from mamori.intel.stix import to_datetime
from mamori.intel.taxii.errors import BadRequestError, NotFoundError, PermissionDeniedError
from mamori.intel.taxii.members import Member
from mamori.store import Store, utc_now
from mamori.store.tables import CollectionRow, StatusRow, StixObjectRow

__all__ = [
    "Collection",
    "IncomingObject",
    "ObjectQuery",
    "Page",
    "TaxiiRepository",
    "create_collection",
    "get_collection",
    "list_collections",
    "normalize_timestamp",
]

logger = logging.getLogger(__name__)

T = StixObjectRow
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
_OPEN_TLP = ("clear", "green", "amber")


def normalize_timestamp(value: str, what: str = "timestamp") -> str:
    """A timestamp in mamori's fixed-width form (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), which sorts as text.

    Parameters
    ----------
    value : str
        RFC 3339 timestamp, any fractional precision.
    what : str, default="timestamp"
        Name of the parameter (for the error message).

    Returns
    -------
    str

    Raises
    ------
    BadRequestError
        When ``value`` is not a timestamp.
    """
    try:
        return to_datetime(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (IntelError, ValueError, OverflowError) as exc:
        raise BadRequestError(f"{what}: {value!r} is not an RFC 3339 timestamp such as 2026-05-01T00:00:00.000Z",
                              {"parameter": what}) from exc


@dataclass(frozen=True)
class Collection:
    """A TAXII collection.

    Attributes
    ----------
    id : str
        UUID.
    api_root : str
        API root name.
    title, description : str
        Human-readable.
    alias : str or None
        Short name usable instead of the id.
    created_at : str
        Creation time.
    """

    id: str
    api_root: str
    title: str
    description: str
    alias: str | None
    created_at: str

    def resource(self, member: Member) -> dict[str, Any]:
        """The TAXII collection resource as seen by one member.

        Parameters
        ----------
        member : Member
            The requester.

        Returns
        -------
        dict
        """
        out: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.description:
            out["description"] = self.description
        if self.alias:
            out["alias"] = self.alias
        out |= {"can_read": member.may_read(self.id, self.alias), "can_write": member.may_write(self.id, self.alias),
                "media_types": [STIX_MEDIA_TYPE]}
        return out


def _collection(row: CollectionRow) -> Collection:
    return Collection(row.id, row.api_root, row.title, row.description, row.alias, row.created_at)


def create_collection(store: Store, title: str, *, description: str = "", alias: str | None = None,
                      api_root: str = "mamori", collection_id: str | None = None, actor: str = "cli") -> Collection:
    """Create a collection.

    Parameters
    ----------
    store : Store
        The open store.
    title : str
        Title.
    description : str, default=""
        Description.
    alias : str or None, default=None
        Unique short name.
    api_root : str, default="mamori"
        API root it belongs to.
    collection_id : str or None, default=None
        A UUID to use; a new one when None.
    actor : str, default="cli"
        Who creates it (audit log).

    Returns
    -------
    Collection

    Raises
    ------
    IntelError
        When the id or alias is taken or the id is not a UUID.
    """
    try:
        cid = str(uuid.UUID(collection_id)) if collection_id else str(uuid.uuid4())
    except ValueError as exc:
        raise IntelError(f"create_collection: collection id {collection_id!r} is not a UUID") from exc
    with store.write() as session:
        clash = session.scalars(select(CollectionRow).where(
            or_(CollectionRow.id == cid, and_(CollectionRow.alias.is_not(None), CollectionRow.alias == alias)))).first()
        if clash is not None:
            raise IntelError(f"create_collection: a collection with id {cid} or alias {alias!r} exists already")
        row = CollectionRow(id=cid, api_root=api_root, title=title, description=description, alias=alias,
                            created_at=utc_now())
        session.add(row)
        store.audit.append(actor, "collection.create", f"collection:{cid}",
                           {"title": title, "alias": alias, "api_root": api_root}, session=session)
        session.flush()
        return _collection(row)


def list_collections(store: Store, api_root: str | None = None) -> list[Collection]:
    """Every collection (of one API root), oldest first.

    Parameters
    ----------
    store : Store
        The open store.
    api_root : str or None, default=None
        Only this API root.

    Returns
    -------
    list of Collection
    """
    with store.read() as session:
        stmt = select(CollectionRow).order_by(CollectionRow.created_at, CollectionRow.id)
        if api_root is not None:
            stmt = stmt.where(CollectionRow.api_root == api_root)
        return [_collection(r) for r in session.scalars(stmt)]


def get_collection(store: Store, api_root: str, id_or_alias: str) -> Collection:
    """One collection by id or alias.

    Parameters
    ----------
    store : Store
        The open store.
    api_root : str
        The API root.
    id_or_alias : str
        Collection id or alias.

    Returns
    -------
    Collection

    Raises
    ------
    NotFoundError
        When there is no such collection in that API root.
    """
    with store.read() as session:
        row = session.scalars(select(CollectionRow).where(
            CollectionRow.api_root == api_root,
            or_(CollectionRow.id == id_or_alias, CollectionRow.alias == id_or_alias))).first()
    if row is None:
        raise NotFoundError(f"collection {id_or_alias!r} does not exist in API root {api_root!r}; "
                            "list them at GET /{api_root}/collections/".replace("{api_root}", api_root),
                            {"collection": id_or_alias})
    return _collection(row)


@dataclass(frozen=True)
class ObjectQuery:
    """Filters and paging of a TAXII GET (objects, manifest, versions).

    Attributes
    ----------
    added_after : str or None
        Normalised timestamp; only objects added strictly later.
    limit : int
        Page size.
    next : int
        Cursor from a previous page (0 = start).
    ids, types, spec_versions : tuple of str
        ``match[id]``, ``match[type]``, ``match[spec_version]`` (empty = any).
    versions : tuple of str
        ``match[version]``: ``"last"``, ``"first"``, ``"all"`` or normalised timestamps.
    """

    added_after: str | None = None
    limit: int = 100
    next: int = 0
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()


@dataclass
class Page:
    """One page of object versions.

    Attributes
    ----------
    rows : list of tuple
        ``(seq, object_id, version, date_added, body)`` in ``date_added`` order.
    more : bool
        Whether another page follows.
    next : str or None
        Cursor for the next page.
    """

    rows: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    more: bool = False
    next: str | None = None


@dataclass(frozen=True)
class IncomingObject:
    """A validated object ready to store.

    Attributes
    ----------
    object_id, type, spec_version : str
        From the object.
    version : str
        Normalised ``modified`` (or ``created``; empty for objects with neither: the date added is used).
    raw_version : str
        The version as the object states it.
    tlp : str
        TLP 2.0 level that governs who may read it.
    body : str
        Compact JSON text, stored and served as is.
    created_by : str or None, default=None
        The object's ``created_by_ref``.
    """

    object_id: str
    type: str
    spec_version: str
    version: str
    raw_version: str
    tlp: str
    body: str
    created_by: str | None = None


def _lock_key(collection_id: str) -> int:
    return int.from_bytes(hashlib.sha256(collection_id.encode()).digest()[:7], "big")


class TaxiiRepository:
    """Reads and writes TAXII resources for members, enforcing TLP visibility.

    Visibility: CLEAR, GREEN and AMBER objects are readable by every member with read access to the
    collection; AMBER+STRICT only by members of the author's organisation; RED only by its author.

    Parameters
    ----------
    store : Store
        The open store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _visible(t: Any, member: Member) -> ColumnElement[bool]:
        return or_(t.tlp.in_(_OPEN_TLP),
                   and_(t.tlp == "amber+strict", t.author_org == member.organization),
                   and_(t.tlp == "red", t.author_member == member.name))

    def _filters(self, collection_id: str, member: Member, q: ObjectQuery, object_id: str | None,
                 default_all: bool = False) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [T.collection_id == collection_id, self._visible(T, member)]
        if object_id is not None:
            conds.append(T.object_id == object_id)
        if q.ids:
            conds.append(T.object_id.in_(q.ids))
        if q.types:
            conds.append(T.type.in_(q.types))
        if q.spec_versions:
            conds.append(T.spec_version.in_(q.spec_versions))
        if q.added_after:
            conds.append(T.date_added > q.added_after)
        versions = q.versions or (("all",) if default_all else ("last",))
        if "all" not in versions:
            alts: list[ColumnElement[bool]] = []
            stamps = [v for v in versions if v not in ("first", "last")]
            if stamps:
                alts.append(T.version.in_(stamps))
            for which in ("first", "last"):
                if which in versions:
                    t2 = aliased(StixObjectRow)
                    agg = func.max(t2.version) if which == "last" else func.min(t2.version)
                    sub_conds = [t2.collection_id == T.collection_id, t2.object_id == T.object_id,
                                 self._visible(t2, member)]
                    if q.spec_versions:
                        sub_conds.append(t2.spec_version.in_(q.spec_versions))
                    alts.append(T.version == select(agg).where(*sub_conds).scalar_subquery())
            conds.append(or_(*alts))
        return conds

    def page(self, collection: Collection, member: Member, q: ObjectQuery, *, object_id: str | None = None,
             default_all: bool = False) -> Page:
        """One page of the object versions a member may see.

        Parameters
        ----------
        collection : Collection
            The collection.
        member : Member
            The reader (TLP visibility).
        q : ObjectQuery
            Filters and paging.
        object_id : str or None, default=None
            Only versions of this object.
        default_all : bool, default=False
            Without ``match[version]``, return every version (the versions endpoint) instead of the last.

        Returns
        -------
        Page
        """
        conds = self._filters(collection.id, member, q, object_id, default_all)
        stmt = (select(T.seq, T.object_id, T.version, T.date_added, T.body).where(*conds, T.seq > q.next)
                .order_by(T.seq).limit(q.limit + 1))
        with self.store.read() as session:
            rows = [tuple(r) for r in session.execute(stmt)]
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return Page(rows=rows, more=more, next=str(rows[-1][0]) if more else None)  # type: ignore[arg-type]

    def exists(self, collection: Collection, member: Member, object_id: str) -> bool:
        """Whether any version of an object is visible to the member.

        Parameters
        ----------
        collection : Collection
            The collection.
        member : Member
            The reader.
        object_id : str
            STIX id.

        Returns
        -------
        bool
        """
        with self.store.read() as session:
            stmt = select(T.seq).where(T.collection_id == collection.id, T.object_id == object_id,
                                       self._visible(T, member)).limit(1)
            return session.execute(stmt).first() is not None

    def add(self, collection: Collection, member: Member, objects: Sequence[IncomingObject],
            request_timestamp: str) -> dict[str, Any]:
        """Store validated objects and return the completed status resource.

        Everything (objects, status, audit entry) is committed in one transaction before this returns, so
        an acknowledged add survives a crash of the server.

        Parameters
        ----------
        collection : Collection
            Target collection.
        member : Member
            The author.
        objects : sequence of IncomingObject
            Validated objects.
        request_timestamp : str
            When the request arrived.

        Returns
        -------
        dict
            The TAXII status resource.

        Raises
        ------
        PermissionDeniedError
            When a non-admin member publishes an object whose ``created_by_ref`` is not its organisation's
            identity (objects without ``created_by_ref`` are accepted).
        """
        foreign = [{"id": o.object_id, "created_by_ref": o.created_by} for o in objects
                   if o.created_by is not None and o.created_by != member.identity_id]
        if foreign and not member.admin:
            raise PermissionDeniedError(
                f"member {member.name} may only publish objects created by its own organisation "
                f"({member.identity_id}); {len(foreign)} object(s) name another creator, e.g. "
                f"{foreign[0]['id']} created_by_ref {foreign[0]['created_by_ref']}; nothing was stored",
                {"foreign_objects": foreign[:50]})
        status_id = str(uuid.uuid4())
        successes: list[dict[str, str]] = []
        with self.store.write() as session:
            self.store.lock(session, _lock_key(collection.id))
            last = session.scalar(select(T.date_added).where(T.collection_id == collection.id)
                                  .order_by(T.seq.desc()).limit(1))
            date_added = max(utc_now(), last or "")  # never goes backwards, so seq order = date_added order
            existing: set[tuple[str, str]] = set()
            ids = sorted({o.object_id for o in objects})
            for i in range(0, len(ids), 500):
                existing.update((a, b) for a, b in session.execute(
                    select(T.object_id, T.version).where(T.collection_id == collection.id,
                                                         T.object_id.in_(ids[i:i + 500]))))
            rows: list[dict[str, Any]] = []
            for o in objects:
                version = o.version or date_added
                key = (o.object_id, version)
                if key in existing:
                    successes.append({"id": o.object_id, "version": o.raw_version or version,
                                      "message": "already present; not added again"})
                    continue
                existing.add(key)
                rows.append({"collection_id": collection.id, "object_id": o.object_id, "type": o.type,
                             "spec_version": o.spec_version, "version": version, "date_added": date_added,
                             "tlp": o.tlp, "author_member": member.name, "author_org": member.organization,
                             "body": o.body})
                successes.append({"id": o.object_id, "version": o.raw_version or version})
            if rows:
                session.execute(insert(StixObjectRow), rows)
            status = {"id": status_id, "status": "complete", "request_timestamp": request_timestamp,
                      "total_count": len(objects), "success_count": len(successes), "successes": successes,
                      "failure_count": 0, "failures": [], "pending_count": 0, "pendings": []}
            session.add(StatusRow(id=status_id, api_root=collection.api_root, member=member.name,
                                  request_timestamp=request_timestamp, body=json.dumps(status)))
            digest = hashlib.sha256("\n".join(f"{r['object_id']} {r['version']}" for r in rows).encode()).hexdigest()
            self.store.audit.append(f"member:{member.name}", "taxii.add_objects", f"collection:{collection.id}",
                                    {"status": status_id, "received": len(objects), "added": len(rows),
                                     "date_added": date_added, "objects_sha256": digest,
                                     "first": rows[0]["object_id"] if rows else None,
                                     "last": rows[-1]["object_id"] if rows else None}, session=session)
        logger.info("collection %s: %s added %d of %d objects", collection.id, member.name, len(rows), len(objects))
        return status

    def delete(self, collection: Collection, member: Member, object_id: str, q: ObjectQuery) -> int:
        """Delete versions of an object (all unless ``match[version]``/``match[spec_version]`` narrow it).

        Parameters
        ----------
        collection : Collection
            The collection.
        member : Member
            Who deletes; must be the author of every matched version, or an admin.
        object_id : str
            STIX id.
        q : ObjectQuery
            Version filters.

        Returns
        -------
        int
            Versions deleted.

        Raises
        ------
        NotFoundError
            When no visible version matches.
        PermissionDeniedError
            When some matched version was written by another member.
        """
        conds = self._filters(collection.id, member, q, object_id, default_all=True)
        with self.store.write() as session:
            self.store.lock(session, _lock_key(collection.id))
            found = list(session.execute(select(T.seq, T.author_member, T.version).where(*conds)))
            if not found:
                raise NotFoundError(f"object {object_id} (with these filters) is not in collection {collection.id}",
                                    {"object": object_id})
            if not member.admin and any(author != member.name for _, author, _ in found):
                raise PermissionDeniedError(f"member {member.name} may only delete versions it added itself",
                                            {"object": object_id})
            session.execute(delete(StixObjectRow).where(StixObjectRow.seq.in_([s for s, _, _ in found])))
            self.store.audit.append(f"member:{member.name}", "taxii.delete_object", f"collection:{collection.id}",
                                    {"object": object_id, "versions": sorted(v for _, _, v in found)},
                                    session=session)
        return len(found)

    def status(self, api_root: str, status_id: str, member: Member) -> dict[str, Any]:
        """A status resource; only its requester (or an admin) may read it.

        Parameters
        ----------
        api_root : str
            API root.
        status_id : str
            Status id.
        member : Member
            The reader.

        Returns
        -------
        dict

        Raises
        ------
        NotFoundError
            When there is no such status for this member.
        """
        with self.store.read() as session:
            row = session.get(StatusRow, status_id)
        if row is None or row.api_root != api_root or (row.member != member.name and not member.admin):
            raise NotFoundError(f"status {status_id} does not exist in API root {api_root}", {"status": status_id})
        return dict(json.loads(row.body))

    def count(self, collection: Collection) -> int:
        """Number of stored object versions in a collection (all TLP levels).

        Parameters
        ----------
        collection : Collection
            The collection.

        Returns
        -------
        int
        """
        with self.store.read() as session:
            return int(session.scalar(select(func.count()).where(T.collection_id == collection.id)) or 0)
