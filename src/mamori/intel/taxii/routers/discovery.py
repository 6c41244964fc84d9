"""``GET /taxii2/``: the discovery resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.dependencies import check_accept, get_config, require_member
from mamori.intel.taxii.responses import TaxiiResponse, taxii_json

router = APIRouter(dependencies=[Depends(require_member), Depends(check_accept)])


@router.get("/taxii2/")
def get_discovery(request: Request, config: Annotated[TaxiiConfig, Depends(get_config)]) -> TaxiiResponse:
    """Server title, description, contact, default and API roots (absolute URLs)."""
    root = f"{str(request.base_url).rstrip('/')}/{config.api_root}/"
    body = {"title": config.title, "description": config.description, "default": root, "api_roots": [root]}
    if config.contact:
        body["contact"] = config.contact
    return taxii_json(body)
