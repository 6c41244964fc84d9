"""The one exception hierarchy of mamori.

::

    MamoriError
    ├── ConfigError(ValueError)        a setting or option is invalid
    ├── SchemaError(ValueError)        an input frame or file does not match its schema
    │   └── TruncatedInputError        a compressed file ends or breaks before its end of stream
    ├── NotFittedError(AttributeError) an estimator was used before ``fit``
    ├── FederationError                a federated run could not complete
    ├── PrivacyBudgetError             the privacy budget would be exceeded
    ├── IntelError                     STIX parse/validation, TAXII
    └── StoreError                     the database could not be read or written

Messages name the input and the place, what was expected, what was found and what to do.
They never carry customer data (names, account numbers): name the column and the row instead.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FederationError",
    "IntelError",
    "MamoriError",
    "NotFittedError",
    "PrivacyBudgetError",
    "SchemaError",
    "StoreError",
    "TruncatedInputError",
]


class MamoriError(Exception):
    """Base class of every error mamori raises on purpose."""


class ConfigError(MamoriError, ValueError):
    """A setting, option or configuration file is invalid."""


class SchemaError(MamoriError, ValueError):
    """An input frame or file does not match the schema it must follow."""


class TruncatedInputError(SchemaError):
    """A compressed input file breaks off (truncated upload, corrupt block) after ``offset`` readable bytes.

    Raised after the lines before the damage were handed over, so a reader that keeps going (``mamori ingest``)
    keeps them.
    """

    def __init__(self, message: str, *, source: str, offset: int) -> None:
        super().__init__(message)
        self.source = source
        self.offset = offset


class NotFittedError(MamoriError, AttributeError):
    """An estimator was used before it was fitted."""


class FederationError(MamoriError):
    """A federated run could not complete."""


class PrivacyBudgetError(FederationError):
    """Going on would spend more privacy budget than was allowed."""


class IntelError(MamoriError):
    """A STIX object or TAXII exchange is invalid."""


class StoreError(MamoriError):
    """The database could not be read or written."""
