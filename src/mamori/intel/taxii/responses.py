"""TAXII responses: the media type, envelopes built from stored JSON text, date-added headers."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from mamori.intel.taxii.repository import STIX_MEDIA_TYPE, Page

__all__ = ["TaxiiResponse", "envelope_response", "manifest_response", "taxii_json", "versions_response"]

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"


class TaxiiResponse(Response):
    """A response with the ``application/taxii+json;version=2.1`` media type."""

    media_type = TAXII_MEDIA_TYPE


def taxii_json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> TaxiiResponse:
    """A TAXII response holding ``content`` as JSON.

    Parameters
    ----------
    content : Any
        JSON-serialisable resource.
    status_code : int, default=200
        HTTP status.
    headers : dict or None, default=None
        Extra headers.

    Returns
    -------
    TaxiiResponse
    """
    return TaxiiResponse(json.dumps(content, ensure_ascii=False, separators=(",", ":")), status_code, headers)


def _stated_version(row: tuple[int, str, str, str, str]) -> str:
    """The version as the object states it (``modified``/``created``), else the stored one."""
    obj = json.loads(row[4])
    return str(obj.get("modified") or obj.get("created") or row[2])


def _paging(page: Page) -> tuple[str, dict[str, str]]:
    head = '{"more":true,"next":' + json.dumps(page.next) + "," if page.more else '{"more":false,'
    headers = {}
    if page.rows:
        headers = {"X-TAXII-Date-Added-First": page.rows[0][3], "X-TAXII-Date-Added-Last": page.rows[-1][3]}
    return head, headers


def envelope_response(page: Page) -> TaxiiResponse:
    """The envelope of a page of objects (stored JSON spliced in without re-parsing).

    Parameters
    ----------
    page : Page
        Rows to send.

    Returns
    -------
    TaxiiResponse
    """
    head, headers = _paging(page)
    if not page.rows:
        return TaxiiResponse("{}")
    return TaxiiResponse(head + '"objects":[' + ",".join(r[4] for r in page.rows) + "]}", headers=headers)


def manifest_response(page: Page) -> TaxiiResponse:
    """The manifest resource of a page of objects.

    Parameters
    ----------
    page : Page
        Rows to describe.

    Returns
    -------
    TaxiiResponse
    """
    head, headers = _paging(page)
    if not page.rows:
        return TaxiiResponse("{}")
    items = [{"id": r[1], "date_added": r[3], "version": _stated_version(r), "media_type": STIX_MEDIA_TYPE}
             for r in page.rows]
    return TaxiiResponse(head + '"objects":' + json.dumps(items, separators=(",", ":")) + "}", headers=headers)


def versions_response(page: Page) -> TaxiiResponse:
    """The versions resource of one object.

    Parameters
    ----------
    page : Page
        Rows (versions of one object).

    Returns
    -------
    TaxiiResponse
    """
    head, headers = _paging(page)
    return TaxiiResponse(head + '"versions":' + json.dumps([_stated_version(r) for r in page.rows]) + "}",
                         headers=headers)
