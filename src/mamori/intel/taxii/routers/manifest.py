"""``GET /{api-root}/collections/{id}/manifest/``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from mamori.intel.taxii.dependencies import (
    check_accept,
    get_readable_collection,
    get_repository,
    object_query,
    require_member,
)
from mamori.intel.taxii.members import Member
from mamori.intel.taxii.repository import Collection, ObjectQuery, TaxiiRepository
from mamori.intel.taxii.responses import TaxiiResponse, manifest_response

router = APIRouter(dependencies=[Depends(require_member), Depends(check_accept)])


@router.get("/{api_root}/collections/{collection_id}/manifest/")
async def get_manifest(collection: Annotated[Collection, Depends(get_readable_collection)],
                       member: Annotated[Member, Depends(require_member)],
                       query: Annotated[ObjectQuery, Depends(object_query)],
                       repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """Id, version and date_added of the objects the member may read, paged like the objects endpoint."""
    return manifest_response(await run_in_threadpool(repo.page, collection, member, query))
