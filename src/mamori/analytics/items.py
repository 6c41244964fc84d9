"""What a member sketches: the items of its own events, per kind, with their time and login outcome."""

from __future__ import annotations

import polars as pl

from mamori.errors import SchemaError

__all__ = ["ITEM_SCHEMA", "extract_items"]

#: Columns of :func:`extract_items` output.
ITEM_SCHEMA: dict[str, pl.DataType] = {"time_us": pl.Int64(), "kind": pl.String(), "value": pl.String(),
                                       "failed": pl.Boolean()}

_NEEDED = ("@timestamp", "source.ip", "source.as.number", "user_agent.original", "tls.client.ja3", "user.name",
           "session.id", "event.action", "event.outcome", "banking.payee.id", "user.id", "device.id")


def extract_items(events: pl.DataFrame, risky_hours: float = 24.0) -> pl.DataFrame:
    """Turn one member's canonical events into sketch items.

    Login events give ``ip``, ``net24`` (IPv4 /24), ``asn``, ``user_agent`` and ``ja3`` items (``failed`` tells the
    outcome) and, for failed logins, ``username`` items. Payees added (``payee_add``) in a session after a
    risky login give ``payee`` items. A login is risky when the session had a failed login, the address failed a
    login at this member within ``risky_hours`` before, or the successful login came without a device id or from
    an address or device the user had not used at this member before (within the events given).

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events (:data:`mamori.events.EVENT_SCHEMA`) of one member.
    risky_hours : float, default=24.0
        Look-back for "this address failed a login here before".

    Returns
    -------
    polars.DataFrame
        Columns of :data:`ITEM_SCHEMA`, sorted by time.

    Raises
    ------
    SchemaError
        When a needed column is missing.
    """
    missing = [c for c in _NEEDED if c not in events.columns]
    if missing:
        raise SchemaError(f"extract_items: events lack columns {missing}; pass canonical events (mamori.events)")
    ev = events.select(
        pl.col("@timestamp").dt.epoch("us").alias("time_us"),
        *[pl.col(c) for c in _NEEDED[1:]],
    )
    logins = ev.filter((pl.col("event.action") == "login") & pl.col("event.outcome").is_in(["success", "failure"]))
    logins = logins.with_columns((pl.col("event.outcome") == "failure").alias("failed"))
    parts = [
        logins.select("time_us", pl.lit("ip").alias("kind"), pl.col("source.ip").alias("value"), "failed"),
        logins.filter(pl.col("source.ip").str.contains(r"^\d+\.\d+\.\d+\.\d+$")).select(
            "time_us", pl.lit("net24").alias("kind"),
            (pl.col("source.ip").str.replace(r"\.\d+$", "") + ".0/24").alias("value"), "failed"),
        logins.select("time_us", pl.lit("asn").alias("kind"), pl.col("source.as.number").cast(pl.String).alias("value"),
                      "failed"),
        logins.select("time_us", pl.lit("user_agent").alias("kind"), pl.col("user_agent.original").alias("value"),
                      "failed"),
        logins.select("time_us", pl.lit("ja3").alias("kind"), pl.col("tls.client.ja3").alias("value"), "failed"),
        logins.filter(pl.col("failed")).select("time_us", pl.lit("username").alias("kind"),
                                                pl.col("user.name").alias("value"), "failed"),
    ]
    fails = logins.filter(pl.col("failed")).select(pl.col("source.ip"), pl.col("time_us").alias("fail_us")).sort(
        "fail_us")
    failed_sessions = logins.filter(pl.col("failed") & pl.col("session.id").is_not_null())["session.id"].unique()
    ok = logins.filter(~pl.col("failed") & pl.col("session.id").is_not_null() & pl.col("user.id").is_not_null()).sort(
        "time_us")
    new_context = ok.filter(
        pl.col("device.id").is_null()
        | (pl.int_range(pl.len()).over("user.id", "source.ip") == 0)
        | (pl.int_range(pl.len()).over("user.id", "device.id") == 0)
    )["session.id"].unique()
    payees = ev.filter((pl.col("event.action") == "payee_add") & pl.col("banking.payee.id").is_not_null()).sort(
        "time_us")
    if payees.height:
        payees = payees.join_asof(fails, left_on="time_us", right_on="fail_us", by="source.ip", strategy="backward",
                                check_sortedness=False)
        risky = pl.col("session.id").is_in(failed_sessions.implode()) | pl.col("session.id").is_in(
            new_context.implode()) | (
            pl.col("fail_us").is_not_null() & (pl.col("time_us") - pl.col("fail_us") <= int(risky_hours * 3.6e9)))
        parts.append(payees.filter(risky).select("time_us", pl.lit("payee").alias("kind"),
                                                  pl.col("banking.payee.id").alias("value"),
                                                  pl.lit(True).alias("failed")))
    out = pl.concat([p.cast(ITEM_SCHEMA) for p in parts])
    return out.filter(pl.col("value").is_not_null() & (pl.col("value") != "")).sort("time_us")
