"""The canonical event table: one row per API request or authentication event.

Column names follow the Elastic Common Schema (ECS) where ECS has a name; the few banking fields ECS lacks
live under ``banking.*``. Ground truth lives under ``labels.*``: readers and the simulator fill it, and
**detectors never read it** (``features`` drops every ``labels.*`` column before it builds a matrix).

Every reader, writer and the simulator produce frames with exactly :data:`EVENT_SCHEMA`, in that column
order; :func:`conform` brings any frame to it.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from mamori.errors import SchemaError

__all__ = [
    "EVENT_SCHEMA",
    "LABEL_COLUMNS",
    "FEATURE_SOURCE_COLUMNS",
    "AUTH_ACTIONS",
    "conform",
    "empty_events",
]

TIMESTAMP = pl.Datetime("us", "UTC")

#: The canonical schema, column name -> polars dtype. Every column is nullable.
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "@timestamp": TIMESTAMP,
    "organization.id": pl.String(),  # the member bank the event was seen at
    "source.ip": pl.String(),
    "source.port": pl.Int32(),
    "source.as.number": pl.Int64(),
    "source.as.organization.name": pl.String(),
    "source.geo.country_iso_code": pl.String(),
    "url.domain": pl.String(),
    "url.path": pl.String(),
    "url.query": pl.String(),
    "http.request.method": pl.String(),
    "http.version": pl.String(),
    "http.request.id": pl.String(),
    "http.request.referrer": pl.String(),
    "http.request.body.content": pl.String(),
    "http.request.bytes": pl.Int64(),
    "http.response.status_code": pl.Int32(),
    "http.response.body.bytes": pl.Int64(),
    "event.duration": pl.Int64(),  # nanoseconds, as in ECS
    "user_agent.original": pl.String(),
    "tls.client.ja3": pl.String(),
    "user.name": pl.String(),  # the username presented at login (may not exist)
    "user.id": pl.String(),  # the customer the request acted for, once authenticated
    "session.id": pl.String(),
    "device.id": pl.String(),
    "event.action": pl.String(),  # one of AUTH_ACTIONS for authentication events, else null
    "event.outcome": pl.String(),  # success | failure | unknown
    "banking.amount": pl.Float64(),  # transfer or trade amount, JPY
    "banking.payee.id": pl.String(),
    "banking.instrument": pl.String(),  # ticker of a trade
    "labels.is_attack": pl.Boolean(),
    "labels.attack_family": pl.String(),
    "labels.attack_id": pl.String(),
    "labels.campaign_id": pl.String(),
}

#: Ground-truth columns. Detectors never read these.
LABEL_COLUMNS: tuple[str, ...] = tuple(c for c in EVENT_SCHEMA if c.startswith("labels."))

#: Columns a detector may read.
FEATURE_SOURCE_COLUMNS: tuple[str, ...] = tuple(c for c in EVENT_SCHEMA if not c.startswith("labels."))

#: The values ``event.action`` takes for authentication and banking events.
AUTH_ACTIONS: tuple[str, ...] = (
    "login",
    "otp_issue",
    "otp_verify",
    "password_reset",
    "device_register",
    "contact_change",
    "payee_add",
    "transfer",
    "trade",
    "signup",
    "logout",
)


def empty_events() -> pl.DataFrame:
    """Return an empty frame with the canonical schema.

    Returns
    -------
    polars.DataFrame
        Zero rows, columns and dtypes of :data:`EVENT_SCHEMA`.
    """
    return pl.DataFrame(schema=EVENT_SCHEMA)


def conform(frame: pl.DataFrame, *, source: str = "frame", strict: bool = False) -> pl.DataFrame:
    """Bring ``frame`` to the canonical schema: add missing columns as null, cast, order.

    Parameters
    ----------
    frame : polars.DataFrame
        Any subset of the canonical columns.
    source : str, default="frame"
        Names the input in error messages.
    strict : bool, default=False
        When true, columns that are not in :data:`EVENT_SCHEMA` are an error; otherwise they are dropped.

    Returns
    -------
    polars.DataFrame
        The same rows with exactly the columns of :data:`EVENT_SCHEMA`, in order.

    Raises
    ------
    SchemaError
        If a column cannot be cast to its canonical dtype, or (``strict``) a column is unknown.
    """
    unknown = [c for c in frame.columns if c not in EVENT_SCHEMA]
    if unknown and strict:
        raise SchemaError(
            f"{source}: columns {unknown} are not in the canonical event schema; "
            "rename them to ECS names (see mamori.events.EVENT_SCHEMA) or drop them."
        )
    exprs: list[pl.Expr] = []
    for name, dtype in EVENT_SCHEMA.items():
        if name in frame.columns:
            exprs.append(_cast_column(frame, name, dtype, source))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"{source}: cannot conform to the canonical event schema: {exc}") from exc


def _cast_column(frame: pl.DataFrame, name: str, dtype: pl.DataType, source: str) -> pl.Expr:
    """Cast one column strictly, raising a SchemaError that names it."""
    current = frame.schema[name]
    if current == dtype:
        return pl.col(name)
    if isinstance(dtype, pl.Datetime) and isinstance(current, pl.Datetime):
        col = pl.col(name)
        if current.time_zone is None:  # type: ignore[attr-defined]
            col = col.dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias(name)
    try:
        frame.select(pl.col(name).cast(dtype, strict=True))
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"{source}: column '{name}' has dtype {current}, expected {dtype}, and some values cannot be "
            "converted; fix the mapping or the input."
        ) from exc
    return pl.col(name).cast(dtype, strict=True)


def require_columns(frame: pl.DataFrame, columns: Mapping[str, object] | tuple[str, ...], source: str) -> None:
    """Raise SchemaError naming ``source`` if any of ``columns`` is missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing columns {missing}; expected the canonical event schema.")
