"""The in-process federation's run id: random, but never changing how many bytes a message takes."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, Message, RecordDict

from mamori.federation.inprocess import new_run_id, server_process_state, transfer_message


def _message_bytes(run_id: int) -> int:
    with server_process_state(run_id, seed=0):
        message = Message(RecordDict({"arrays": ArrayRecord([np.zeros(3, np.float32)])}), 1001, "train", group_id="1")
        message.metadata.__dict__["_message_id"] = "a" * 32
        return transfer_message(message)[1]


def test_run_ids_keep_the_reported_traffic_independent_of_the_draw() -> None:
    # A run id below 2**56 is one varint byte shorter: a bench run's byte counts changed with the draw (1 in 128).
    assert _message_bytes(2**55) != _message_bytes(2**62)
    ids = [new_run_id() for _ in range(2000)]
    assert all(2**62 <= i < 2**63 for i in ids)
    assert len(set(ids)) == len(ids)
    assert {_message_bytes(i) for i in (2**62, 2**63 - 1, *ids[:5])} == {_message_bytes(2**62)}
