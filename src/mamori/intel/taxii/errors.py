"""TAXII errors: each one is an :class:`mamori.errors.IntelError` that knows its HTTP status.

Domain code raises these; the app's single exception handler turns any :class:`MamoriError` into the
TAXII 2.1 error message (section 3.6.1): ``title``, ``description``, ``error_id``, ``error_code``,
``http_status``, ``details``.
"""

from __future__ import annotations

from typing import Any

from mamori.errors import IntelError

__all__ = [
    "BadRequestError",
    "NotAcceptableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "TaxiiError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
]


class TaxiiError(IntelError):
    """A TAXII request that cannot be served.

    Parameters
    ----------
    description : str
        What went wrong and what to do (no secrets, no customer data).
    details : dict or None, default=None
        Machine-readable details for the error body.
    """

    http_status = 400
    title = "Bad request"
    error_code = "bad-request"

    def __init__(self, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.details = details or {}


class BadRequestError(TaxiiError):
    """Malformed JSON, a bad envelope, invalid STIX or a bad query parameter (400)."""


class UnauthorizedError(TaxiiError):
    """No, an unknown or a revoked API key (401)."""

    http_status = 401
    title = "Authentication required"
    error_code = "unauthorized"


class PermissionDeniedError(TaxiiError):
    """The member may not read or write this collection or resource (403)."""

    http_status = 403
    title = "Forbidden"
    error_code = "forbidden"


class NotFoundError(TaxiiError):
    """Unknown API root, collection, object or status (404)."""

    http_status = 404
    title = "Not found"
    error_code = "not-found"


class NotAcceptableError(TaxiiError):
    """The ``Accept`` header names no media type this server produces (406)."""

    http_status = 406
    title = "Not acceptable"
    error_code = "not-acceptable"


class PayloadTooLargeError(TaxiiError):
    """The request body exceeds ``max_content_length`` (413)."""

    http_status = 413
    title = "Request entity too large"
    error_code = "payload-too-large"


class UnsupportedMediaTypeError(TaxiiError):
    """The ``Content-Type`` of a POST is not ``application/taxii+json;version=2.1`` (415)."""

    http_status = 415
    title = "Unsupported media type"
    error_code = "unsupported-media-type"


class RateLimitedError(TaxiiError):
    """The member exceeded its request rate (429).

    Parameters
    ----------
    description : str
        Message.
    retry_after : float
        Seconds until a request will be accepted again.
    """

    http_status = 429
    title = "Too many requests"
    error_code = "rate-limited"

    def __init__(self, description: str, retry_after: float) -> None:
        super().__init__(description, {"retry_after_seconds": round(retry_after, 2)})
        self.retry_after = retry_after
