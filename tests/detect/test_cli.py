"""``mamori score`` (batch, --follow, --emit-stix, --train-demo) from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import mamori.cli.cmd_score as cmd_score
from mamori.cli.app import app
from mamori.detect import ScoringModel
from mamori.errors import SchemaError
from mamori.events import render_lines
from mamori.intel import validate_object


@pytest.fixture
def log_and_model(nginx_model: ScoringModel, sim_events: pl.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    http = sim_events.filter(pl.col("http.request.method").is_not_null()).head(4000)
    log = tmp_path / "access.log"
    log.write_text("\n".join(render_lines(http, "nginx").to_list()) + "\n")
    return log, nginx_model.save(tmp_path / "model.npz")


def test_score_batch_writes_alerts_and_sightings(log_and_model: tuple[Path, Path], tmp_path: Path) -> None:
    log, model = log_and_model
    alerts, stix = tmp_path / "alerts.jsonl", tmp_path / "sightings.json"
    result = CliRunner().invoke(app, ["score", str(log), "--model", str(model), "--format", "nginx", "--alerts",
                                      str(alerts), "--emit-stix", str(stix), "--member", "bank-a"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert lines and {"score", "threshold", "top_features", "entity", "family", "indicators"} <= set(lines[0])
    objects = json.loads(stix.read_text())["objects"]
    assert any(o["type"] == "sighting" for o in objects)
    assert all(validate_object(o) == [] for o in objects)


def test_score_follow_with_idle_timeout(log_and_model: tuple[Path, Path], tmp_path: Path) -> None:
    log, model = log_and_model
    result = CliRunner().invoke(app, ["score", str(log), "--follow", "--model", str(model), "--format", "nginx",
                                      "--alerts", str(tmp_path / "a.jsonl"), "--state-dir", str(tmp_path / "st"),
                                      "--idle-timeout", "0", "--no-explain"])
    assert result.exit_code == 0, result.output
    assert "scored 4,000 events" in result.output
    assert json.loads((tmp_path / "st" / "follow.json").read_text())["checkpoint"]["events"] == 4000


def test_score_errors_are_mamori_errors(tmp_path: Path) -> None:
    # mamori.cli.app.main prints MamoriError and exits 2; the runner calls the app directly and sees the error
    result = CliRunner().invoke(app, ["score", str(tmp_path / "x.log"), "--model", str(tmp_path / "none.npz")])
    assert isinstance(result.exception, SchemaError)
    assert "cannot read" in str(result.exception)


def test_train_demo(monkeypatch: pytest.MonkeyPatch, nginx_model: ScoringModel, tmp_path: Path) -> None:
    monkeypatch.setattr(cmd_score, "train_simulated_model", lambda **kwargs: nginx_model)
    result = CliRunner().invoke(app, ["score", "--train-demo", str(tmp_path / "m.npz"), "--format", "nginx"])
    assert result.exit_code == 0, result.output
    assert ScoringModel.load(tmp_path / "m.npz").sha256 == nginx_model.sha256


def test_a_truncated_log_among_others_is_scored_up_to_the_break(log_and_model: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    # one cut .gz in the folder lost every file's alerts: the reader's error ended the run before the gathered
    # events of the good file were scored
    import gzip

    log, model = log_and_model
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.log").write_bytes(log.read_bytes())
    packed = gzip.compress(log.read_bytes())
    (folder / "b.log.gz").write_bytes(packed[: len(packed) // 2])
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(app, ["score", str(folder), "--model", str(model), "--format", "nginx", "--alerts",
                                      str(alerts), "--no-explain"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "cannot read 'b.log.gz' after" in said and "1 of 2 file(s) not read to the end" in said
    alone = tmp_path / "alone.jsonl"
    assert CliRunner().invoke(app, ["score", str(log), "--model", str(model), "--format", "nginx", "--alerts",
                                    str(alone), "--no-explain"]).exit_code == 0
    assert len(alerts.read_text().splitlines()) >= len(alone.read_text().splitlines()) > 0


def test_score_path_raises_when_no_file_could_be_read(nginx_model: ScoringModel, tmp_path: Path) -> None:
    from mamori.detect import Scorer, ScoringConfig, score_path

    (tmp_path / "junk.log").write_bytes(b"\x00\x01 not a log\n")
    with pytest.raises(SchemaError, match="cannot recognise 'junk.log'"):
        score_path(tmp_path, Scorer(nginx_model, ScoringConfig()))
