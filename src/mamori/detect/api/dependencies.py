"""Shared dependencies of the scoring API's routers."""

from __future__ import annotations

from fastapi import Request

from mamori.detect.api.schemas import ModelInfo
from mamori.detect.service import ScoringService

__all__ = ["get_service", "model_dict", "model_info"]


async def get_service(request: Request) -> ScoringService:
    """The app's scoring service (async: FastAPI runs a sync dependency in a worker thread, per request)."""
    service: ScoringService = request.app.state.service
    return service


def model_info(service: ScoringService) -> ModelInfo:
    """Describe the model in use (cached per model)."""
    m = service.scorer.model
    cached = _INFO.get(id(m))
    if cached is not None and cached[0] is m:
        return cached[1]
    info = ModelInfo(name=m.name, version=m.version, sha256=service.scorer.model_sha256, threshold=m.threshold,
                     n_features=m.spec.n_features, spec_fingerprint=m.spec.fingerprint(), families=list(m.families))
    _INFO.clear()
    _INFO[id(m)] = (m, info)
    return info


def model_dict(service: ScoringService) -> dict[str, object]:
    """:func:`model_info` as a plain dict (cached per model: every score response carries it)."""
    info = model_info(service)
    cached = _DICT.get(id(info))
    if cached is None or cached[0] is not info:
        cached = (info, info.model_dump())
        _DICT.clear()
        _DICT[id(info)] = cached
    return cached[1]


_INFO: dict[int, tuple[object, ModelInfo]] = {}
_DICT: dict[int, tuple[ModelInfo, dict[str, object]]] = {}
