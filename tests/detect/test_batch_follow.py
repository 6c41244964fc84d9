"""Batch scoring of files and following a live log (rotation, truncation, restart without re-alerting)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mamori.detect import LogFollower, MemoryAlertSink, Scorer, ScoringConfig, ScoringModel, score_path
from mamori.errors import SchemaError
from mamori.events import read_events, render_lines

CONFIG = ScoringConfig(max_state_events=10**6, dedup_window="10m", top_k=0)


@pytest.fixture(scope="module")
def lines(sim_events: pl.DataFrame) -> list[str]:
    http = sim_events.filter(pl.col("http.request.method").is_not_null()).head(6000)
    return render_lines(http, "nginx").to_list()


def _write(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def _baseline(model: ScoringModel, path: Path) -> tuple[int, list[str]]:
    sink = MemoryAlertSink()
    events = read_events(path, "nginx").frame
    Scorer(model, CONFIG, sinks=[sink]).score(events, explain_alerts=False)
    return events.height, [a.id for a in sink.alerts]


def test_score_path_file_and_directory(nginx_model: ScoringModel, lines: list[str], tmp_path: Path) -> None:
    # Prepare: the same lines as one file, and split over two files of a directory
    _write(tmp_path / "all.log", lines, "w")
    d = tmp_path / "logs"
    d.mkdir()
    _write(d / "a.log", lines[:2500], "w")
    _write(d / "b.log", lines[2500:] + ["this is not an nginx line"], "w")
    n, expected = _baseline(nginx_model, tmp_path / "all.log")

    # Execute
    sink = MemoryAlertSink()
    summary = score_path(d, Scorer(nginx_model, CONFIG, sinks=[sink]), fmt="nginx", batch_lines=1000,
                         explain_alerts=False)

    # Assert: state carried across chunks and files gives the same alerts as one pass
    assert summary.events == n == len(lines) and summary.quarantined == 1 and len(summary.files) == 2
    assert [a.id for a in sink.alerts] == expected and summary.alerts == len(expected) > 0
    with pytest.raises(SchemaError, match="does not exist"):
        score_path(tmp_path / "nope.log", Scorer(nginx_model))


def test_follow_survives_rotation_truncation_and_partial_lines(nginx_model: ScoringModel, lines: list[str],
                                                                tmp_path: Path) -> None:
    # Prepare
    live = tmp_path / "access.log"
    _write(tmp_path / "all.log", lines, "w")
    n, expected = _baseline(nginx_model, tmp_path / "all.log")
    sink = MemoryAlertSink()
    follower = LogFollower(live, Scorer(nginx_model, CONFIG, sinks=[sink]), fmt="nginx", explain_alerts=False)

    # Execute: nothing yet; then lines with a half-written last line; then the rest of it
    assert follower.poll() == 0
    _write(live, lines[:2000])
    with live.open("a") as fh:
        fh.write(lines[2000][:20])
    assert follower.poll() == 2000
    with live.open("a") as fh:
        fh.write(lines[2000][20:] + "\n")
    _write(live, lines[2001:3000])
    assert follower.poll() == 1000
    # logrotate: rename, the writer still appends to the old file, then a new file appears
    os.rename(live, tmp_path / "access.log.1")
    _write(tmp_path / "access.log.1", lines[3000:3500])
    _write(live, lines[3500:5000])
    assert follower.poll() == 2000
    assert follower.rotations == 1
    # copytruncate: the file is emptied in place and written again
    with live.open("r+") as fh:
        fh.truncate(0)
    _write(live, lines[5000:])
    assert follower.poll() == len(lines) - 5000
    follower.close()

    # Assert: every line once, same alerts as one pass
    assert follower.truncations == 1
    assert follower.checkpoint is not None and follower.checkpoint.events == n
    assert [a.id for a in sink.alerts] == expected


def test_follow_restart_resumes_without_realerting_or_skipping(nginx_model: ScoringModel, lines: list[str],
                                                               tmp_path: Path) -> None:
    # Prepare
    live = tmp_path / "access.log"
    _write(tmp_path / "all.log", lines, "w")
    n, expected = _baseline(nginx_model, tmp_path / "all.log")
    state = tmp_path / "state"
    first, second = MemoryAlertSink(), MemoryAlertSink()

    # Execute: score part of the log, "crash" (no orderly shutdown), restart from the state directory
    _write(live, lines[:3300])
    f1 = LogFollower(live, Scorer(nginx_model, CONFIG, sinks=[first]), fmt="nginx", state_dir=state,
                     state_every=0, explain_alerts=False)
    f1.poll()
    f1.close()
    _write(live, lines[3300:])
    f2 = LogFollower(live, Scorer(nginx_model, CONFIG, sinks=[second]), fmt="nginx", state_dir=state,
                     state_every=0, explain_alerts=False)
    scored = f2.run(idle_timeout=0.0)

    # Assert
    assert scored == n - 3300
    ids = [a.id for a in first.alerts] + [a.id for a in second.alerts]
    assert ids == expected
    assert len(ids) == len(set(ids))


def test_follow_refuses_unfollowable_formats(nginx_model: ScoringModel, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot be followed"):
        LogFollower(tmp_path / "x", Scorer(nginx_model), fmt="csic")
    assert np.isfinite(nginx_model.threshold)
