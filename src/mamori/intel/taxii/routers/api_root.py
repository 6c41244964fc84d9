"""``GET /{api-root}/`` and ``GET /{api-root}/status/{status-id}/``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.dependencies import check_accept, check_api_root, get_config, get_repository, require_member
from mamori.intel.taxii.members import Member
from mamori.intel.taxii.repository import TaxiiRepository
from mamori.intel.taxii.responses import TAXII_MEDIA_TYPE, TaxiiResponse, taxii_json

router = APIRouter(dependencies=[Depends(require_member), Depends(check_accept)])


@router.get("/{api_root}/")
def get_api_root(api_root: Annotated[str, Depends(check_api_root)],
                 config: Annotated[TaxiiConfig, Depends(get_config)]) -> TaxiiResponse:
    """API root information: title, versions, max_content_length."""
    return taxii_json({"title": f"{config.title}: {api_root}", "description": config.description,
                       "versions": [TAXII_MEDIA_TYPE], "max_content_length": config.max_content_length})


@router.get("/{api_root}/status/{status_id}/")
async def get_status(status_id: str, api_root: Annotated[str, Depends(check_api_root)],
                     member: Annotated[Member, Depends(require_member)],
                     repo: Annotated[TaxiiRepository, Depends(get_repository)]) -> TaxiiResponse:
    """The status resource of an add-objects request (its requester or an admin only)."""
    return taxii_json(await run_in_threadpool(repo.status, api_root, status_id, member))
