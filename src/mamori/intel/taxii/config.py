"""Settings of the TAXII 2.1 server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TaxiiConfig"]


class TaxiiConfig(BaseModel):
    """How the TAXII server behaves.

    Parameters
    ----------
    title : str, default="mamori TAXII server"
        Discovery title.
    description : str, default=...
        Discovery description.
    contact : str or None, default=None
        Discovery contact.
    api_root : str, default="mamori"
        Name of the single API root (URL ``/<api_root>/``).
    max_content_length : int, default=10485760
        Largest request body accepted, in bytes (advertised in the API root; larger bodies get 413).
    max_page_size : int, default=1000
        Largest ``limit`` honoured; bigger requests get this many objects.
    default_page_size : int, default=100
        Page size when the client gives no ``limit``.
    validation : {"full", "library"}, default="full"
        ``"full"`` checks every incoming object with the ``stix2`` library *and* the OASIS
        ``stix2-validator`` (so every served object passes it; valid objects take a fast path with the
        validator's own verdict); ``"library"`` only with ``stix2`` (about 1.3x faster ingest; patterns,
        required properties and timestamps are still checked).
    default_tlp : str, default="amber"
        TLP 2.0 level assumed for objects without a TLP marking.
    default_rate_limit : int, default=600
        Requests per minute for members added without an explicit limit (0 = unlimited).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = "mamori TAXII server"
    description: str = "Shared threat intelligence of the mamori consortium (STIX 2.1 over TAXII 2.1)."
    contact: str | None = None
    api_root: str = Field(default="mamori", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    max_content_length: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    default_page_size: int = Field(default=100, ge=1)
    validation: Literal["full", "library"] = "full"
    default_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"
    default_rate_limit: int = Field(default=600, ge=0)
