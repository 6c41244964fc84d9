"""A TAXII 2.1 server (FastAPI) with persistence in :mod:`mamori.store` and member access control."""

from mamori.intel.taxii.app import create_app
from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.errors import (
    BadRequestError,
    NotAcceptableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    TaxiiError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from mamori.intel.taxii.members import Member, add_member, authenticate, get_member, list_members, revoke_member
from mamori.intel.taxii.repository import (
    Collection,
    TaxiiRepository,
    create_collection,
    get_collection,
    list_collections,
)
from mamori.intel.taxii.server import serve

__all__ = [
    "BadRequestError",
    "Collection",
    "Member",
    "NotAcceptableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "TaxiiConfig",
    "TaxiiError",
    "TaxiiRepository",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "add_member",
    "authenticate",
    "create_app",
    "create_collection",
    "get_collection",
    "get_member",
    "list_collections",
    "list_members",
    "revoke_member",
    "serve",
]
