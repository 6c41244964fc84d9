"""Objects of a collection: get (paged), add, get one, delete one, versions of one."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.dependencies import (
    check_accept,
    check_content_type,
    get_config,
    get_readable_collection,
    get_repository,
    get_writable_collection,
    object_query,
    require_member,
)
from mamori.intel.taxii.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from mamori.intel.taxii.ingest import parse_envelope
from mamori.intel.taxii.members import Member
from mamori.intel.taxii.repository import Collection, ObjectQuery, TaxiiRepository
from mamori.intel.taxii.responses import TaxiiResponse, envelope_response, taxii_json, versions_response
from mamori.store import utc_now

logger = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(require_member), Depends(check_accept)])

_DRAIN_LIMIT = 256 * 1024 * 1024  # read and drop at most this much of an oversized body before answering 413


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 once it passes ``limit`` bytes (the rest is drained, not kept)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError as exc:
            raise BadRequestError(f"Content-Length {declared[:30]!r} is not a number") from exc
    else:
        too_big = False
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            too_big = True
        if too_big:
            chunks.clear()
            if size > _DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if too_big:
        raise PayloadTooLargeError(f"the request body ({declared or size} bytes) exceeds max_content_length "
                                   f"{limit}; split the objects into smaller envelopes",
                                   {"max_content_length": limit})
    return b"".join(chunks)


@router.get("/{api_root}/collections/{collection_id}/objects/")
async def get_objects(collection: Annotated[Collection, Depends(get_readable_collection)],
                      member: Annotated[Member, Depends(require_member)],
                      query: Annotated[ObjectQuery, Depends(object_query)],
                      repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """Objects the member may read, in date_added order, with filters and paging."""
    return envelope_response(await run_in_threadpool(repo.page, collection, member, query))


@router.post("/{api_root}/collections/{collection_id}/objects/", status_code=202,
             dependencies=[Depends(check_content_type)])
async def add_objects(request: Request, collection: Annotated[Collection, Depends(get_writable_collection)],
                      member: Annotated[Member, Depends(require_member)],
                      config: Annotated[TaxiiConfig, Depends(get_config)],
                      repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """Add an envelope of objects; all-or-nothing; committed before the status resource is returned."""
    received = utc_now()
    body = await _read_body(request, config.max_content_length)
    incoming = await run_in_threadpool(parse_envelope, body, config)
    status = await run_in_threadpool(repo.add, collection, member, incoming, received)
    return taxii_json(status, status_code=202)


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/")
async def get_object(object_id: str, collection: Annotated[Collection, Depends(get_readable_collection)],
                     member: Annotated[Member, Depends(require_member)],
                     query: Annotated[ObjectQuery, Depends(object_query)],
                     repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """The versions of one object selected by ``match[version]`` (default: the last)."""
    page = await run_in_threadpool(repo.page, collection, member, query, object_id=object_id)
    if not page.rows and not query.next and not await run_in_threadpool(repo.exists, collection, member, object_id):
        raise NotFoundError(f"object {object_id} is not in collection {collection.id} (or not visible to "
                            f"{member.name})", {"object": object_id})
    return envelope_response(page)


@router.delete("/{api_root}/collections/{collection_id}/objects/{object_id}/")
async def delete_object(object_id: str, collection: Annotated[Collection, Depends(get_writable_collection)],
                        member: Annotated[Member, Depends(require_member)],
                        query: Annotated[ObjectQuery, Depends(object_query)],
                        repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> Response:
    """Delete versions of an object (all unless filtered); authors and admins only."""
    await run_in_threadpool(repo.delete, collection, member, object_id, query)
    return TaxiiResponse(b"", status_code=200)


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/versions/")
async def get_versions(object_id: str, collection: Annotated[Collection, Depends(get_readable_collection)],
                       member: Annotated[Member, Depends(require_member)],
                       query: Annotated[ObjectQuery, Depends(object_query)],
                       repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """Every version of one object (paged)."""
    page = await run_in_threadpool(repo.page, collection, member, query, object_id=object_id, default_all=True)
    if not page.rows and not query.next:
        raise NotFoundError(f"object {object_id} is not in collection {collection.id} (or not visible to "
                            f"{member.name})", {"object": object_id})
    return versions_response(page)
