"""Shared FastAPI dependencies of the TAXII server: settings, store, member authentication, media types."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated

from fastapi import Depends, Request

from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.errors import (
    BadRequestError,
    NotAcceptableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from mamori.intel.taxii.members import Member, authenticate
from mamori.intel.taxii.ratelimit import RateLimiter
from mamori.intel.taxii.repository import (
    Collection,
    ObjectQuery,
    TaxiiRepository,
    get_collection,
    normalize_timestamp,
)
from mamori.store import Store

__all__ = [
    "TAXII_MEDIA_TYPE",
    "check_accept",
    "check_content_type",
    "get_config",
    "get_readable_collection",
    "get_repository",
    "get_store",
    "object_query",
    "require_member",
]

logger = logging.getLogger(__name__)

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


def get_config(request: Request) -> TaxiiConfig:
    """The server's settings (set by the app factory; tests may override this dependency)."""
    return request.app.state.config  # type: ignore[no-any-return]


def get_store(request: Request) -> Store:
    """The open store."""
    return request.app.state.store  # type: ignore[no-any-return]


def get_repository(request: Request) -> TaxiiRepository:
    """The TAXII repository over the store."""
    return request.app.state.repository  # type: ignore[no-any-return]


def _limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter  # type: ignore[no-any-return]


def _taxii_type(value: str) -> bool:
    """Whether one media range is ``application/taxii+json`` with version 2.1 or no version."""
    parts = [p.strip().lower() for p in value.split(";")]
    if parts[0] != "application/taxii+json":
        return False
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return params.get("version", "2.1").strip('"') == "2.1"


def check_accept(request: Request) -> None:
    """406 unless ``Accept`` lists ``application/taxii+json`` (version 2.1 or unversioned)."""
    accept = request.headers.get("accept", "")
    if not any(_taxii_type(v) for v in accept.split(",")):
        raise NotAcceptableError(f"this server only produces {TAXII_MEDIA_TYPE}; the Accept header was "
                                 f"{accept[:100]!r}", {"accept": accept[:200]})


def check_content_type(request: Request) -> None:
    """415 unless ``Content-Type`` is ``application/taxii+json;version=2.1`` (or unversioned)."""
    ctype = request.headers.get("content-type", "")
    if not _taxii_type(ctype):
        raise UnsupportedMediaTypeError(f"POST bodies must be {TAXII_MEDIA_TYPE}; got Content-Type {ctype[:100]!r}",
                                        {"content_type": ctype[:200]})


def _credentials(request: Request) -> tuple[str | None, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return None, value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user, sep, key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UnauthorizedError("the Basic credentials are not base64 'name:key'") from exc
        if sep and key:
            return user, key
    raise UnauthorizedError("send the member's API key: HTTP Basic (member name, key) or 'Authorization: Bearer <key>'")


def require_member(request: Request, store: Annotated[Store, Depends(get_store)]) -> Member:
    """The authenticated, non-revoked member within its rate limit (else 401 / 429)."""
    name, key = _credentials(request)
    member = authenticate(store, key, name)
    if member is None:
        raise UnauthorizedError("unknown or revoked API key (or it does not belong to this member name)")
    wait = _limiter(request).acquire(member.name, member.rate_limit)
    if wait > 0:
        raise RateLimitedError(f"member {member.name} exceeded {member.rate_limit} requests per minute; retry in "
                               f"{wait:.1f} s", wait)
    request.state.member = member
    return member


def check_api_root(api_root: str, config: Annotated[TaxiiConfig, Depends(get_config)]) -> str:
    """404 unless the path names this server's API root."""
    if api_root != config.api_root:
        raise NotFoundError(f"API root {api_root!r} does not exist; discovery at /taxii2/ lists "
                            f"/{config.api_root}/", {"api_root": api_root})
    return api_root


def get_any_collection(collection_id: str, api_root: Annotated[str, Depends(check_api_root)],
                       store: Annotated[Store, Depends(get_store)]) -> Collection:
    """The collection named in the path (404 if unknown)."""
    return get_collection(store, api_root, collection_id)


def get_readable_collection(collection: Annotated[Collection, Depends(get_any_collection)],
                            member: Annotated[Member, Depends(require_member)]) -> Collection:
    """The collection named in the path, if the member may read it (else 403)."""
    if not member.may_read(collection.id, collection.alias):
        raise PermissionDeniedError(f"member {member.name} may not read collection {collection.id}",
                                    {"collection": collection.id})
    return collection


def get_writable_collection(collection: Annotated[Collection, Depends(get_any_collection)],
                            member: Annotated[Member, Depends(require_member)]) -> Collection:
    """The collection named in the path, if the member may write to it (else 403)."""
    if not member.may_write(collection.id, collection.alias):
        raise PermissionDeniedError(f"member {member.name} may not add to or delete from collection "
                                    f"{collection.id}", {"collection": collection.id})
    return collection


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def object_query(request: Request, config: Annotated[TaxiiConfig, Depends(get_config)]) -> ObjectQuery:
    """Parse ``added_after``, ``limit``, ``next`` and ``match[...]`` (400 on bad values)."""
    params = request.query_params
    known = {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"}
    unknown = sorted(k for k in params if k not in known)
    if unknown:
        raise BadRequestError(f"unsupported query parameter(s) {', '.join(unknown)}; supported: "
                              f"{', '.join(sorted(known))}", {"parameters": unknown})
    limit = config.default_page_size
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError as exc:
            raise BadRequestError(f"limit must be a positive integer, got {params['limit']!r}") from exc
        if limit < 1:
            raise BadRequestError(f"limit must be a positive integer, got {limit}")
    cursor = 0
    if params.get("next"):
        try:
            cursor = int(params["next"])
        except ValueError as exc:
            raise BadRequestError(f"next={params['next']!r} is not a cursor this server issued") from exc
    versions: list[str] = []
    for v in _split(params.get("match[version]")):
        versions.append(v if v in ("first", "last", "all") else normalize_timestamp(v, "match[version]"))
    added_after = params.get("added_after")
    return ObjectQuery(
        added_after=normalize_timestamp(added_after, "added_after") if added_after else None,
        limit=min(limit, config.max_page_size), next=cursor, ids=_split(params.get("match[id]")),
        types=_split(params.get("match[type]")), versions=tuple(versions),
        spec_versions=_split(params.get("match[spec_version]")))
