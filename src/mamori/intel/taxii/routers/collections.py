"""``GET /{api-root}/collections/`` and ``GET /{api-root}/collections/{id}/``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mamori.intel.taxii.dependencies import check_accept, check_api_root, get_any_collection, get_store, require_member
from mamori.intel.taxii.errors import PermissionDeniedError
from mamori.intel.taxii.members import Member
from mamori.intel.taxii.repository import Collection, list_collections
from mamori.intel.taxii.responses import TaxiiResponse, taxii_json
from mamori.store import Store

router = APIRouter(dependencies=[Depends(require_member), Depends(check_accept)])


@router.get("/{api_root}/collections/")
def get_collections(api_root: Annotated[str, Depends(check_api_root)],
                    member: Annotated[Member, Depends(require_member)],
                    store: Annotated[Store, Depends(get_store)]) -> TaxiiResponse:
    """The collections this member may read or write."""
    visible = [c.resource(member) for c in list_collections(store, api_root)
               if member.may_read(c.id, c.alias) or member.may_write(c.id, c.alias)]
    return taxii_json({"collections": visible} if visible else {})


@router.get("/{api_root}/collections/{collection_id}/")
def get_collection_resource(collection: Annotated[Collection, Depends(get_any_collection)],
                            member: Annotated[Member, Depends(require_member)]) -> TaxiiResponse:
    """One collection (403 if the member may neither read nor write it)."""
    if not (member.may_read(collection.id, collection.alias) or member.may_write(collection.id, collection.alias)):
        raise PermissionDeniedError(f"member {member.name} has no access to collection {collection.id}",
                                    {"collection": collection.id})
    return taxii_json(collection.resource(member))
