"""The one place where errors become TAXII error messages (spec section 3.6.1)."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mamori.errors import ConfigError, IntelError, MamoriError, SchemaError, StoreError
from mamori.intel.taxii.errors import RateLimitedError, TaxiiError, UnauthorizedError
from mamori.intel.taxii.responses import TaxiiResponse, taxii_json

__all__ = ["error_body", "install_exception_handlers"]

logger = logging.getLogger(__name__)


def error_body(status: int, title: str, description: str, code: str, details: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """A TAXII 2.1 error message.

    Parameters
    ----------
    status : int
        HTTP status.
    title, description, code : str
        Human title, explanation, and a stable machine code.
    details : dict or None, default=None
        Extra machine-readable details.

    Returns
    -------
    dict
    """
    body: dict[str, Any] = {"title": title, "description": description, "error_id": str(uuid.uuid4()),
                            "error_code": code, "http_status": str(status)}
    if details:
        body["details"] = details
    return body


async def mamori_error_handler(request: Request, exc: Exception) -> TaxiiResponse:
    """Map every :class:`MamoriError` subclass to an HTTP status and a TAXII error body."""
    headers: dict[str, str] = {}
    if isinstance(exc, TaxiiError):
        status, title, code, details = exc.http_status, exc.title, exc.error_code, exc.details
        if isinstance(exc, UnauthorizedError):
            headers["WWW-Authenticate"] = 'Basic realm="mamori", Bearer realm="mamori"'
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, StoreError):
        logger.error("store failure on %s %s: %s", request.method, request.url.path, exc)
        status, title, code, details = 503, "Storage unavailable", "store-error", {}
    elif isinstance(exc, IntelError | ConfigError | SchemaError):
        status, title, code, details = 400, "Bad request", "bad-request", {}
    else:
        status, title, code, details = 500, "Internal error", "internal-error", {}
    description = str(exc) if status != 503 else "the database could not be read or written; try again later"
    return taxii_json(error_body(status, title, description, code, details), status, headers)


async def http_error_handler(request: Request, exc: Exception) -> TaxiiResponse:
    """Unknown paths (404) and methods (405) get a TAXII error body too."""
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return taxii_json(error_body(exc.status_code, title, f"{request.method} {request.url.path}: {exc.detail}",
                                 title.lower().replace(" ", "-")), exc.status_code, dict(exc.headers or {}))


async def validation_error_handler(request: Request, exc: Exception) -> TaxiiResponse:
    """Malformed parameters FastAPI itself rejects."""
    assert isinstance(exc, RequestValidationError)
    return taxii_json(error_body(400, "Bad request", f"invalid request parameters: {exc.errors()!s:.300}",
                                 "bad-request"), 400)


async def unexpected_error_handler(request: Request, exc: Exception) -> TaxiiResponse:
    """Anything unforeseen: logged with its traceback, answered with a spec-shaped 500."""
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return taxii_json(error_body(500, "Internal error", "the server failed to handle this request",
                                 "internal-error"), 500)


def install_exception_handlers(app: FastAPI) -> None:
    """Register the handlers on an app.

    Parameters
    ----------
    app : fastapi.FastAPI
        The TAXII app.
    """
    app.add_exception_handler(MamoriError, mamori_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
