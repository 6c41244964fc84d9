"""Batch alerts deduplicate from the hits' columns: the same alerts as from the hits as dict rows."""

from __future__ import annotations

import polars as pl
import pytest

from mamori.detect import MemoryAlertSink, Scorer, ScoringConfig, ScoringModel


@pytest.mark.parametrize("dedup_by", [("source.ip",), ("user.name", "source.ip"), ("device.id",)])
def test_frame_and_dict_rows_give_the_same_alerts(tiny_model: ScoringModel, sim_events: pl.DataFrame,
                                                  dedup_by: tuple[str, ...]) -> None:
    # Prepare: one frame scored as a DataFrame (hits read as columns) and as dict rows (the incremental path
    # reads dicts; the event-tail path builds a frame from them), with entity fields that are often null
    events = sim_events.sort("@timestamp", maintain_order=True).head(3000)
    rows = events.drop([c for c in events.columns if c.startswith("labels.")]).to_dicts()
    config = ScoringConfig(max_state_events=10**6, dedup_window="1h", dedup_by=dedup_by, incremental=True)
    frame_sink, rows_sink = MemoryAlertSink(), MemoryAlertSink()

    # Execute
    Scorer(tiny_model, config.model_copy(update={"incremental": False}), sinks=[frame_sink]).score(events)
    Scorer(tiny_model, config, sinks=[rows_sink]).score_rows(rows)

    # Assert: the same alerts (ids, entities, counts, requests) in the same order
    def key(a: object) -> tuple[object, ...]:
        return (a.id, a.entity, a.count, a.request, a.timestamp)  # type: ignore[attr-defined]

    assert [key(a) for a in frame_sink.alerts] == [key(a) for a in rows_sink.alerts] != []
