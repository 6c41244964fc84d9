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


def test_flowers_older_secaggplus_workflow_runs_unchanged_on_the_in_process_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The seam for secure aggregation: Flower's DefaultWorkflow(SecAggPlusWorkflow) and a NumPyClient behind
    secaggplus_mod run over InProcessGrid as they would over a SuperLink. (mamori's SecAgg+ mode is not built yet.)"""
    from flwr.client import NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.serverapp import ServerApp

    from mamori.federation.inprocess import InProcessGrid

    class Member(NumPyClient):
        def __init__(self, offset: float) -> None:
            self.offset = offset

        def fit(self, parameters, config):  # type: ignore[no-untyped-def]
            return [p + self.offset for p in parameters], 10, {}

    # Prepare: 4 members adding 1, 2, 3, 4 to a zero model; the server only ever sees masked vectors
    for key, value in (("_task_id", 1), ("_run_id", 9), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, key, value)
    client_app = ClientApp(
        client_fn=lambda context: Member(float(context.node_config["partition-id"]) + 1).to_client(),
        mods=[secaggplus_mod],
    )
    grid = InProcessGrid(client_app, [1001, 1002, 1003, 1004], run_id=9, default_timeout=30)
    strategy = FedAvg(
        min_fit_clients=4,
        min_available_clients=4,
        fraction_evaluate=0.0,
        initial_parameters=ndarrays_to_parameters([np.zeros(3, dtype=np.float32)]),
    )
    server_app = ServerApp()
    final: list[np.ndarray] = []

    @server_app.main()
    def main(grid, context):  # type: ignore[no-untyped-def]
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=strategy)
        DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2, timeout=30))(
            grid, legacy
        )
        final.extend(legacy.state.array_records["parameters"].to_numpy_ndarrays())

    # Execute
    from flwr.app import Context as FlwrContext

    try:
        server_app(grid, FlwrContext(run_id=9, node_id=1, node_config={}, state=RecordDict(), run_config={}))
    finally:
        grid.close()

    # Assert: every SecAgg+ stage went through the grid and nobody failed
    deliveries = grid.drain_deliveries()
    assert deliveries and all(d.status == "ok" for d in deliveries)
    assert len(deliveries) >= 4 * 4  # setup, share keys, collect masked vectors, unmask: one message per member each
    np.testing.assert_allclose(final[0], np.full(3, 2.5), atol=1e-3)  # the unmasked mean of 1, 2, 3, 4
