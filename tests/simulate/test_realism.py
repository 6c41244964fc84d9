"""The realism claims of docs/simulator.md, checked with numbers."""

from __future__ import annotations

import polars as pl

from mamori.simulate import Consortium

JST = "Asia/Tokyo"


def _benign(week: Consortium) -> pl.DataFrame:
    return week.all_events().filter(~pl.col("labels.is_attack"))


def test_hourly_volume_is_lowest_between_03_and_06_jst(week: Consortium) -> None:
    hourly = (
        _benign(week).group_by(pl.col("@timestamp").dt.convert_time_zone(JST).dt.hour().alias("hour")).len().sort("len")
    )
    assert hourly["hour"][0] in (3, 4, 5)
    by_hour = dict(hourly.rows())
    assert by_hour[9] > 5 * by_hour[hourly["hour"][0]]
    assert max(by_hour[18], by_hour[19]) > 5 * by_hour[hourly["hour"][0]]


def test_all_traffic_is_also_quietest_at_night(week: Consortium) -> None:
    hourly = week.all_events().group_by(pl.col("@timestamp").dt.convert_time_zone(JST).dt.hour().alias("h")).len()
    assert hourly.sort("len")["h"][0] in (2, 3, 4, 5)


def test_per_customer_activity_is_heavy_tailed(week: Consortium) -> None:
    # customer ids carry the bank, so the consortium's customers can be pooled (>1,500 active here)
    per_customer = (
        _benign(week).filter(pl.col("user.id").is_not_null()).group_by("user.id").len().sort("len", descending=True)
    )
    assert per_customer.height > 1_500
    top = per_customer.head(per_customer.height // 10)["len"].sum()
    assert top / per_customer["len"].sum() >= 0.40


def test_payday_is_busier_than_the_day_before(week: Consortium) -> None:
    # 2025-04-25 is a Friday payday; compare transfers with Tuesday 22nd
    frame = _benign(week).filter(pl.col("event.action") == "transfer")
    day = frame.select(pl.col("@timestamp").dt.convert_time_zone(JST).dt.day().alias("d"))["d"]
    assert (day == 25).sum() > 1.5 * (day == 22).sum()


def test_mobile_app_clients_load_no_static_assets(week: Consortium) -> None:
    frame = _benign(week)
    static = frame.filter(pl.col("url.path").str.starts_with("/static/"))
    assert static.height > 0
    assert not static["user_agent.original"].str.contains("Scale/").any()


def test_honest_failures_exist(week: Consortium) -> None:
    frame = _benign(week)
    failed_logins = frame.filter((pl.col("event.action") == "login") & (pl.col("event.outcome") == "failure"))
    logins = frame.filter(pl.col("event.action") == "login")
    assert 0.01 < failed_logins.height / logins.height < 0.15
    otp_fail = frame.filter((pl.col("event.action") == "otp_verify") & (pl.col("event.outcome") == "failure"))
    assert otp_fail.height > 0


def test_sessions_follow_login_otp_then_banking(week: Consortium) -> None:
    frame = _benign(week).filter(pl.col("session.id").is_not_null())
    first = frame.group_by("session.id", maintain_order=True).agg(pl.col("event.action").first())
    share = (first["event.action"] == "login").mean()
    assert share is not None and share > 0.9  # the rest are aggregator polls with a standing token
    transfers = frame.filter(pl.col("event.action") == "transfer")
    assert transfers["banking.amount"].null_count() == 0
    assert transfers["banking.payee.id"].null_count() == 0
