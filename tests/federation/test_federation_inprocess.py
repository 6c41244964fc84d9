"""The in-process runtime: messages really go through Flower's serialization, and are counted."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from mamori.federation.inprocess import transfer_message


def test_transfer_counts_the_serialized_arrays_and_returns_an_independent_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a 1 MiB model, in a server task (Flower needs one to create messages)
    for key, value in (("_task_id", 1), ("_run_id", 5), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, key, value)
    arrays = [np.arange(256 * 1024, dtype=np.float32).reshape(512, 512), np.ones(64, dtype=np.float32)]
    content = RecordDict({"arrays": ArrayRecord(arrays), "config": ConfigRecord({"server-round": 1})})
    message = Message(content=content, dst_node_id=1001, message_type="train", group_id="1")
    message.metadata.__dict__["_message_id"] = "abc"

    # Execute
    copy, num_bytes = transfer_message(message)

    # Assert
    payload = sum(a.nbytes for a in arrays)
    assert payload < num_bytes < payload + 4096  # arrays plus a small header/metadata overhead
    received = copy.content.array_records["arrays"].to_numpy_ndarrays()
    for sent, got in zip(arrays, received, strict=True):
        np.testing.assert_array_equal(sent, got)
        assert not np.shares_memory(sent, got)
    assert copy.metadata.message_id == "abc"
    assert copy.metadata.dst_node_id == 1001
    assert copy.content.config_records["config"]["server-round"] == 1
