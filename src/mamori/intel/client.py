"""Push, pull and list STIX objects on a TAXII 2.1 server, on top of ``taxii2-client``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, Server, as_pages

from mamori.errors import IntelError
from mamori.intel.stix import merge, serialize

__all__ = ["PushResult", "TaxiiClient"]

logger = logging.getLogger(__name__)

_R = TypeVar("_R")


@dataclass
class PushResult:
    """What :meth:`TaxiiClient.push` did.

    Attributes
    ----------
    sent : int
        Objects sent to the server.
    unchanged : int
        Objects skipped because the server already holds the same content.
    new_versions : int
        Objects sent as a new version of an existing object (deduplication).
    status_ids : list of str
        Status resource ids, one per envelope.
    """

    sent: int = 0
    unchanged: int = 0
    new_versions: int = 0
    status_ids: list[str] = field(default_factory=list)


def _explain(exc: Exception, what: str) -> IntelError:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        try:
            body = exc.response.json()
            reason = f"{body.get('title')}: {body.get('description')}"
        except ValueError:
            reason = exc.response.text[:200]
        return IntelError(f"{what} failed with HTTP {exc.response.status_code}: {reason}")
    return IntelError(f"{what} failed: {exc.__class__.__name__}: {exc}")


def _call(what: str, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    try:
        return fn(*args, **kwargs)
    except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
        raise _explain(exc, what) from exc


class TaxiiClient:
    """A member's client of a TAXII 2.1 server (mamori's or any other).

    Parameters
    ----------
    url : str
        Discovery URL, e.g. ``"http://127.0.0.1:8021/taxii2/"``.
    member : str
        Member name (HTTP Basic user).
    api_key : str
        The member's API key.
    verify : bool or str, default=True
        TLS verification (or a CA bundle path).
    """

    def __init__(self, url: str, member: str, api_key: str, verify: bool | str = True) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._server = Server(self.url, user=member, password=api_key, verify=verify)

    def _api_root(self) -> Any:
        root = _call(f"discovery at {self.url}",
                     lambda: self._server.default or next(iter(self._server.api_roots), None))
        if root is None:
            raise IntelError(f"the TAXII server at {self.url} lists no API root")
        return root

    def collections(self) -> list[dict[str, Any]]:
        """The collections visible to this member.

        Returns
        -------
        list of dict
            ``id``, ``title``, ``alias``, ``can_read``, ``can_write`` of each.
        """
        root = self._api_root()
        cols = _call("listing collections", lambda: root.collections)
        return [{"id": c.id, "title": c.title, "alias": c.alias, "can_read": c.can_read, "can_write": c.can_write}
                for c in cols]

    def collection(self, id_or_alias: str) -> Collection:
        """A ``taxii2client`` collection by id, alias or title.

        Parameters
        ----------
        id_or_alias : str
            Id, alias or title.

        Returns
        -------
        taxii2client.v21.Collection

        Raises
        ------
        IntelError
            When no visible collection matches.
        """
        root = self._api_root()
        for c in _call("listing collections", lambda: root.collections):
            if id_or_alias in (c.id, c.alias, c.title):
                return c
        raise IntelError(f"no collection {id_or_alias!r} visible to this member at {self.url}; "
                         "see `mamori intel list`")

    def latest(self, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest version the server holds of each of ``ids`` (those it has).

        Parameters
        ----------
        collection : str
            Collection id or alias.
        ids : sequence of str
            STIX ids.

        Returns
        -------
        dict
            id → object.
        """
        col = self.collection(collection)
        out: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for i in range(0, len(unique), 50):
            chunk = unique[i:i + 50]
            for env in _call("reading current versions", lambda c=chunk: list(as_pages(col.get_objects, 500, id=c))):
                for obj in env.get("objects", []):
                    out[obj["id"]] = obj
        return out

    def push(self, collection: str, objects: Iterable[Any], *, envelope_size: int = 500,
             deduplicate: bool = True) -> PushResult:
        """Add objects; with ``deduplicate`` re-published objects become new versions and sightings accumulate.

        Parameters
        ----------
        collection : str
            Collection id or alias.
        objects : iterable of stix2 object or dict
            What to publish.
        envelope_size : int, default=500
            Objects per request.
        deduplicate : bool, default=True
            Fetch the server's latest versions first and :func:`mamori.intel.stix.merge` against them.

        Returns
        -------
        PushResult

        Raises
        ------
        IntelError
            When the server refuses a request (the message carries its TAXII error).
        """
        result = PushResult()
        items = [serialize(o) for o in objects]
        col = self.collection(collection)
        if deduplicate and items:
            known = self.latest(collection, [o["id"] for o in items])
            merged = []
            for obj in items:
                out = merge(known.get(obj["id"]), obj)
                if out is None:
                    result.unchanged += 1
                    continue
                out = serialize(out)
                if obj["id"] in known:
                    result.new_versions += 1
                known[obj["id"]] = out
                merged.append(out)
            items = merged
        for i in range(0, len(items), envelope_size):
            batch = items[i:i + envelope_size]
            status = _call("adding objects", col.add_objects, json.dumps({"objects": batch}),
                           wait_for_completion=False)
            result.sent += len(batch)
            result.status_ids.append(status.id)
        logger.info("pushed %d objects to %s (%d unchanged)", result.sent, collection, result.unchanged)
        return result

    def pull(self, collection: str, *, added_after: datetime | str | None = None, page_size: int = 500,
             **match: Any) -> Iterator[dict[str, Any]]:
        """Every object of a collection the member may read, page by page.

        Parameters
        ----------
        collection : str
            Collection id or alias.
        added_after : datetime or str or None, default=None
            Only objects added after this time.
        page_size : int, default=500
            Objects per request.
        **match
            ``type=``, ``id=``, ``version=``, ``spec_version=`` filters (taxii2-client style).

        Yields
        ------
        dict
            STIX objects.
        """
        col = self.collection(collection)
        kwargs = dict(match)
        if added_after is not None:
            kwargs["added_after"] = added_after
        pages = as_pages(col.get_objects, page_size, **kwargs)
        while True:
            try:
                env = next(pages)
            except StopIteration:
                return
            except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
                raise _explain(exc, f"pulling {collection}") from exc
            yield from env.get("objects", [])
