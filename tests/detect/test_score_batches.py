"""Scorer.score_batches (two stages in flight) gives exactly what score() gives batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest

from mamori.detect import MemoryAlertSink, Scorer, ScoringConfig, ScoringModel
from mamori.errors import SchemaError


def _chunks(events: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [events[i : i + size] for i in range(0, events.height, size)]


@pytest.mark.parametrize("incremental", [False, True])
def test_pipelined_batches_equal_one_by_one(tiny_model: ScoringModel, sim_events: pl.DataFrame,
                                            incremental: bool) -> None:
    # Prepare: time-ordered events in uneven chunks, one of them empty
    events = sim_events.sort("@timestamp", maintain_order=True).head(4000)
    chunks = _chunks(events, 700)
    chunks.insert(2, events.clear())
    config = ScoringConfig(max_state_events=1500, dedup_window="1h", incremental=incremental)
    one_sink, pipe_sink = MemoryAlertSink(), MemoryAlertSink()
    one, pipe = Scorer(tiny_model, config, sinks=[one_sink]), Scorer(tiny_model, config, sinks=[pipe_sink])

    # Execute
    expected = [one.score(c) for c in chunks]
    got = list(pipe.score_batches(iter(chunks)))

    # Assert: the same scores bit for bit, hits, alerts in the same order, state and counters
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a.scores, b.scores) and a.hits == b.hits and a.alert_rows == b.alert_rows
    assert [a.to_dict() for a in pipe_sink.alerts] == [a.to_dict() for a in one_sink.alerts] != []
    assert pipe.stats() == one.stats()


def test_a_bad_batch_still_alerts_the_batch_before(tiny_model: ScoringModel, sim_events: pl.DataFrame) -> None:
    # Prepare: a good chunk with alerts, then one with a null timestamp
    events = sim_events.sort("@timestamp", maintain_order=True).head(3000)
    reference = MemoryAlertSink()
    Scorer(tiny_model, ScoringConfig(dedup_window="1h"), sinks=[reference]).score(events)
    bad = events.head(5).with_columns(pl.lit(None, dtype=events.schema["@timestamp"]).alias("@timestamp"))
    sink = MemoryAlertSink()
    scorer = Scorer(tiny_model, ScoringConfig(dedup_window="1h"), sinks=[sink])

    def batches() -> Iterator[pl.DataFrame]:
        yield events
        yield bad

    # Execute / Assert
    with pytest.raises(SchemaError, match="@timestamp"):
        list(scorer.score_batches(batches()))
    assert [a.id for a in sink.alerts] == [a.id for a in reference.alerts] != []
