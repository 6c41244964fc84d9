"""``mamori assess`` end to end on a tiny simulated consortium."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import mamori.cli.cmd_assess  # noqa: F401  (registers the command)
from mamori.cli.app import app
from mamori.detect import train_simulated_model
from mamori.errors import ConfigError
from mamori.simulate import SimulationConfig, iter_bank_events


def test_assess_cli_writes_json_and_html(tmp_path: Path) -> None:
    model = train_simulated_model(banks=1, days=1, scale=0.02, epochs=1, log_format=None, seed=3)
    model_path = model.save(tmp_path / "model.npz")
    _profile, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=1, scale=0.02, seed=5))))
    events.write_parquet(tmp_path / "events.parquet")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "assess", "--model", str(model_path), "--data", str(tmp_path / "events.parquet"), "--out", str(out),
        "--n-evasion", "10", "--n-hopskipjump", "2", "--no-pdf",
    ])
    assert result.exit_code == 0, result.output
    assert "assessment.pdf not written (--no-pdf)" in result.output
    saved = json.loads((out / "assessment.json").read_text())
    assert saved["evasion"]["n_attacked"] == 10
    assert saved["system_card"]["model"]["sha256"] == model.sha256
    assert (out / "assessment.html").stat().st_size > 10_000
    assert not (out / "assessment.pdf").exists()


def test_assess_cli_rejects_bad_data(tmp_path: Path) -> None:
    model = train_simulated_model(banks=1, days=1, scale=0.01, epochs=1, log_format=None, seed=3)
    model_path = model.save(tmp_path / "model.npz")
    (tmp_path / "x.txt").write_text("nothing")
    result = CliRunner().invoke(app, ["assess", "--model", str(model_path), "--data", str(tmp_path / "x.txt"),
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError)  # mamori.cli.app.main prints it and exits 2
    assert "Parquet" in str(result.exception)
    result = CliRunner().invoke(app, ["assess", "--model", str(model_path), "--data", "sim:zero",
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError)
    assert "sim:BANKS,DAYS,SCALE" in str(result.exception)
