"""What a member's node sends: weights and scalar metrics only - no event row, no raw identifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from mamori.deploy.flowerapp import client_app, load_member_matrices, new_model
from mamori_testing import flower_task_identity

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def member_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mamori.simulate import SimulationConfig, iter_bank_events

    out = tmp_path_factory.mktemp("member") / "events.parquet"
    _, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=1, scale=0.01, seed=5))))
    events.write_parquet(out)
    return out


@pytest.fixture(autouse=True)
def task_identity() -> object:
    """Flower's process-wide task identity (what a SuperNode's ClientApp process has)."""
    with flower_task_identity(0) as identity:
        yield identity


def _wire_bytes(message: Message) -> bytes:
    objects = get_all_nested_objects(message)
    return b"".join(obj.deflate() for obj in objects.values())


def _identifiers(path: Path) -> set[str]:
    """Every distinct string value of the events (IPs, user names, URLs, agents, ids ...)."""
    events = pl.read_parquet(path)
    values: set[str] = set()
    for name, dtype in events.schema.items():
        if dtype == pl.String and not name.startswith("labels."):
            values.update(v for v in events.get_column(name).drop_nulls().unique().to_list() if len(v) >= 5)
    return values


def _send(kind: str, parquet: Path, model_dir: Path) -> tuple[Message, list[np.ndarray]]:
    X_tr, _, _, _ = load_member_matrices(parquet)  # noqa: N806
    weights = new_model(X_tr.shape[1], (16,), 1).get_weights()
    config = ConfigRecord({"server-round": 1, "local-epochs": 1})
    content = RecordDict({"arrays": ArrayRecord(weights), "config": config})
    message = Message(content, dst_node_id=7, message_type=kind)
    message.metadata.__dict__["_message_id"] = "m1"
    context = Context(run_id=1, node_id=7, state=RecordDict(), run_config={}, node_config={
        "data-path": str(parquet), "node-name": "bank-x", "hidden": "16", "model-dir": str(model_dir)})
    return client_app(message=message, context=context), weights


@pytest.mark.parametrize("kind", ["train", "evaluate"])
def test_replies_hold_only_weights_and_scalar_metrics(kind: str, member_parquet: Path, tmp_path: Path) -> None:
    reply, weights = _send(kind, member_parquet, tmp_path / "model")
    assert not reply.has_error(), reply.error if reply.has_error() else None
    content = reply.content
    assert not content.config_records
    assert set(content.metric_records) == {"metrics"}
    assert all(isinstance(v, (int, float)) for v in content.metric_records["metrics"].values())
    if kind == "train":
        assert set(content.array_records) == {"arrays"}
        sent = content.array_records["arrays"].to_numpy_ndarrays()
        assert [a.shape for a in sent] == [w.shape for w in weights]  # the model's shapes, nothing else
    else:
        assert not content.array_records
        pulled = np.load(tmp_path / "model" / "global.npz")  # the global model reached the scoring side
        assert int(pulled["server_round"]) == 1

    wire = _wire_bytes(reply)
    identifiers = _identifiers(member_parquet)
    assert len(identifiers) > 50
    leaked = [v for v in identifiers if v.encode() in wire]
    assert leaked == []
    assert b"bank-x" not in wire and str(member_parquet).encode() not in wire

    # no feature row travels either: no 16+-byte run of any row's float32 bytes is in the reply
    X_tr, _, _, _ = load_member_matrices(member_parquet)  # noqa: N806
    rows = X_tr[np.flatnonzero(np.count_nonzero(X_tr, axis=1) >= 8)[:200]]
    for row in rows:
        nz = row[row != 0]
        assert nz[:8].astype(np.float32).tobytes() not in wire


def test_secure_aggregation_replies_hold_no_identifier(tmp_path: Path) -> None:
    """Every SecAgg+ stage reply (keys, shares, masked vector, unmask shares) and the evaluation reply."""
    from flwr.common.constant import SUPERLINK_NODE_ID

    from mamori.deploy.flowerapp import secure_client_app, server_app
    from mamori.federation.inprocess import InProcessGrid
    from mamori.simulate import SimulationConfig, iter_bank_events

    paths = []
    for profile, events in iter_bank_events(SimulationConfig(banks=2, days=1, scale=0.01, seed=9)):
        paths.append(tmp_path / f"{profile.bank_id}.parquet")
        events.write_parquet(paths[-1])
    grid = InProcessGrid(secure_client_app, [21, 22], run_id=1, default_timeout=60)
    for i, node_id in enumerate((21, 22)):
        grid._contexts[node_id].node_config.update(
            {"data-path": str(paths[i]), "node-name": f"bank-secret-{i}", "model-dir": str(tmp_path / f"m{i}")})
    run_config = {"num-rounds": 1, "store-url": f"sqlite:///{tmp_path / 'c.db'}", "hidden": "8",
                  "min-train-nodes": 2, "min-available-nodes": 2, "round-timeout": 60.0, "secure-aggregation": True}
    try:
        server_app(grid, Context(run_id=1, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(),
                                 run_config=run_config))
        deliveries = grid.drain_deliveries()
    finally:
        grid.close()
    replies = [d.reply for d in deliveries if d.reply is not None]
    # 4 SecAgg+ stages of the stats round (consortium standardisation), 4 of training, evaluate
    assert len(replies) == 2 * 9 and all(d.status == "ok" for d in deliveries)
    identifiers = _identifiers(paths[0]) | _identifiers(paths[1])
    for reply in replies:
        wire = _wire_bytes(reply)
        assert [v for v in identifiers if v.encode() in wire] == []
        assert b"bank-secret" not in wire and b".parquet" not in wire
        assert all(isinstance(v, (int, float, bytes, str, list)) for r in reply.content.config_records.values()
                   for v in r.values())


def test_a_member_data_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    # a node whose ingested events were cut in a copy raised polars' ComputeError, naming no file
    from mamori.errors import SchemaError

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "events.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(SchemaError, match=r"load_member_matrices: cannot read '.*events\.parquet'"):
        load_member_matrices(folder)
