from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mamori.cli import app
from mamori.errors import ConfigError

runner = CliRunner()


def test_simulate_quick_writes_every_bank(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--quick",
            "--banks",
            "3",
            "--days",
            "1",
            "--seed",
            "4",
            "--out",
            str(tmp_path),
            "--format",
            "envoy",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    for bank in ("bank-01", "bank-02", "bank-03"):
        for name in ("gateway.envoy.log", "app-events.jsonl", "truth.csv", "profile.json"):
            assert (tmp_path / bank / name).stat().st_size > 0
    manifest = json.loads((tmp_path / "consortium.json").read_text())
    assert manifest["config"]["seed"] == 4 and manifest["format"] == "envoy"
    assert json.loads((tmp_path / "campaigns.json").read_text())


def test_simulate_rejects_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--quick", "--out", str(tmp_path), "--format", "syslog"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "syslog" in str(result.exception)


def test_simulate_rejects_bad_start_date(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--quick", "--out", str(tmp_path), "--start", "April"])
    assert isinstance(result.exception, ConfigError)
