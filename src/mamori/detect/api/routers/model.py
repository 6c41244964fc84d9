"""``GET /v1/model``: the model in use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mamori.detect.api.dependencies import get_service, model_info
from mamori.detect.api.schemas import ModelInfo
from mamori.detect.service import ScoringService

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, summary="The model in use: version, hash, threshold")
async def get_model(service: Annotated[ScoringService, Depends(get_service)]) -> ModelInfo:
    """Name, version, SHA-256, threshold and feature-spec fingerprint of the model scoring now."""
    return model_info(service)
